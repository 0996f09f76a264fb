/**
 * IIS server variables (IHttpContext::GetServerVariable) as a worker can compute them from the
 * request it was given. Modules read them through HttpContext.getServerVariable: URL Rewrite's
 * `{NAME}` inputs, iisnode's promoteServerVars. `HTTP_<NAME>` is the request header NAME with
 * '_' for '-'; a name Wharf cannot compute reads as '', as IIS returns an unset variable.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { HttpContext, TlsInfo } from './module-api.js';
import { encodeUrlPath } from '../http/url-path.js';
import { AUTH_PASSWORD_ITEM } from '../modules/authentication/basic.js';

/**
 * A distinguished name as IIS prints it in CERT_SUBJECT and HTTPS_SERVER_SUBJECT: the RDNs in the
 * certificate's order, ', ' between them, Windows' short names (S for ST, E for emailAddress).
 */
export function windowsDistinguishedName(nodeName: string): string {
  if (nodeName === '') return '';
  return nodeName
    .split('\n')
    .map((rdn) => rdn.replace(/^ST=/, 'S=').replace(/^emailAddress=/, 'E='))
    .join(', ');
}

/** The last client certificate parsed (a connection's requests repeat it): base64 DER → certificate. */
let lastClientCert: { b64: string; cert: X509Certificate | undefined } = { b64: '', cert: undefined };

function clientCert(t: TlsInfo | undefined): X509Certificate | undefined {
  if (t === undefined || t.clientCert === '') return undefined;
  if (lastClientCert.b64 !== t.clientCert) {
    let cert: X509Certificate | undefined;
    try {
      cert = new X509Certificate(Buffer.from(t.clientCert, 'base64'));
    } catch {
      cert = undefined;
    }
    lastClientCert = { b64: t.clientCert, cert };
  }
  return lastClientCert.cert;
}

/** CERT_FLAGS: bit 0 a client certificate is present, bit 1 its issuer is not trusted. */
function certFlags(t: TlsInfo | undefined): string {
  if (t === undefined || t.clientCert === '') return '0';
  return t.clientCertError === '' ? '1' : '3';
}

/** IIS's CERT_SERIALNUMBER: the serial's bytes as hex pairs separated by '-'. */
function serialNumber(c: X509Certificate | undefined): string {
  if (c === undefined) return '';
  const hex = c.serialNumber.length % 2 === 0 ? c.serialNumber : '0' + c.serialNumber;
  return hex.toLowerCase().match(/../g)!.join('-');
}

type Getter = (ctx: HttpContext) => string;

function applicationPath(ctx: HttpContext): string {
  return ctx.config.application.path;
}

function host(ctx: HttpContext): string {
  return ctx.request.headers['host'] ?? ctx.request.localAddress;
}

/** The current URL (after any rewrite) with its query string, encoded as it would be sent. */
function requestUri(ctx: HttpContext): string {
  const q = ctx.request.queryString;
  return encodeUrlPath(ctx.request.path) + (q === '' ? '' : '?' + q);
}

const VARIABLES: Readonly<Record<string, Getter>> = {
  REMOTE_ADDR: (c) => c.request.remoteAddress,
  REMOTE_HOST: (c) => c.request.remoteAddress,
  REMOTE_PORT: (c) => String(c.request.remotePort),
  LOCAL_ADDR: (c) => c.request.localAddress,
  SERVER_PORT: (c) => String(c.request.localPort),
  SERVER_PORT_SECURE: (c) => (c.request.secure ? '1' : '0'),
  SERVER_NAME: (c) => host(c).replace(/:\d+$/, ''),
  SERVER_PROTOCOL: (c) => c.request.protocol,
  SERVER_SOFTWARE: () => 'Wharf',
  HTTPS: (c) => (c.request.secure ? 'on' : 'off'),
  HTTPS_KEYSIZE: (c) => (c.request.tls === undefined ? '' : String(c.request.tls.keySize)),
  HTTPS_SECRETKEYSIZE: (c) => (c.request.tls === undefined ? '' : String(c.request.tls.secretKeySize)),
  HTTPS_SERVER_SUBJECT: (c) => windowsDistinguishedName(c.request.tls?.serverSubject ?? ''),
  HTTPS_SERVER_ISSUER: (c) => windowsDistinguishedName(c.request.tls?.serverIssuer ?? ''),
  CERT_KEYSIZE: (c) => (c.request.tls === undefined ? '' : String(c.request.tls.keySize)),
  CERT_SECRETKEYSIZE: (c) => (c.request.tls === undefined ? '' : String(c.request.tls.secretKeySize)),
  CERT_SERVER_SUBJECT: (c) => windowsDistinguishedName(c.request.tls?.serverSubject ?? ''),
  CERT_SERVER_ISSUER: (c) => windowsDistinguishedName(c.request.tls?.serverIssuer ?? ''),
  CERT_FLAGS: (c) => certFlags(c.request.tls),
  CERT_SUBJECT: (c) => windowsDistinguishedName(clientCert(c.request.tls)?.subject ?? ''),
  CERT_ISSUER: (c) => windowsDistinguishedName(clientCert(c.request.tls)?.issuer ?? ''),
  CERT_SERIALNUMBER: (c) => serialNumber(clientCert(c.request.tls)),
  // A stable id of the client certificate (IIS: unique per certificate): its SHA-256, hex.
  CERT_COOKIE: (c) => {
    const t = c.request.tls;
    return t === undefined || t.clientCert === '' ? '' : createHash('sha256').update(t.clientCert, 'base64').digest('hex');
  },
  REQUEST_METHOD: (c) => c.request.method,
  QUERY_STRING: (c) => c.request.queryString,
  URL: (c) => c.request.path,
  SCRIPT_NAME: (c) => c.scriptPath,
  // IIS's PATH_INFO is the whole URL unless the handler has allowPathInfo (reference: IIS
  // passes SCRIPT_NAME's tail only to handlers that ask).
  PATH_INFO: (c) => (c.handler?.element.bool('allowPathInfo') === true ? c.request.path.slice(c.scriptPath.length) : c.request.path),
  PATH_TRANSLATED: (c) => c.physicalPath,
  REQUEST_FILENAME: (c) => c.physicalPath,
  REQUEST_URI: requestUri,
  HTTP_URL: (c) => c.request.rawUrl,
  UNENCODED_URL: (c) => c.request.rawUrl,
  CACHE_URL: (c) => `${c.request.secure ? 'https' : 'http'}://${host(c)}${c.request.rawUrl}`,
  // AUTH_USER and REMOTE_USER: the name as the client sent it ('DOMAIN\\alice'); LOGON_USER:
  // the account it logged on to, which is anonymousAuthentication's named account for an
  // anonymous request. AUTH_PASSWORD only for Basic, as IIS.
  AUTH_USER: (c) => c.user,
  REMOTE_USER: (c) => c.user,
  LOGON_USER: (c) => (c.user !== '' ? c.user : (c.identity?.name ?? '')),
  AUTH_TYPE: (c) => c.authType,
  AUTH_PASSWORD: (c) => {
    const p = c.authType === 'Basic' ? c.items.get(AUTH_PASSWORD_ITEM) : undefined;
    return typeof p === 'string' ? p : '';
  },
  // IIS ends it with the directory separator: rules write {APPL_PHYSICAL_PATH}public\{R:1}.
  APPL_PHYSICAL_PATH: (c) => {
    const p = c.config.application.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? '';
    return p === '' || p.endsWith('/') ? p : p + '/';
  },
  APPL_MD_PATH: (c) => `/LM/W3SVC/${c.site.id}/ROOT${applicationPath(c) === '/' ? '' : applicationPath(c)}`,
  INSTANCE_ID: (c) => String(c.site.id),
  INSTANCE_NAME: (c) => c.site.name,
  APP_POOL_ID: (c) => c.appPoolName,
  APP_WARMING_UP: () => '0',
  CONTENT_LENGTH: (c) => (c.request.contentLength > 0 ? String(c.request.contentLength) : '0'),
  CONTENT_TYPE: (c) => c.request.headers['content-type'] ?? '',
};

/** The request header an `HTTP_<NAME>` variable stands for ('HTTP_X_FORWARDED_FOR' → 'x-forwarded-for'). */
export function headerOfVariable(upperName: string): string | undefined {
  return upperName.startsWith('HTTP_') && upperName.length > 5 ? upperName.slice(5).toLowerCase().replace(/_/g, '-') : undefined;
}

/** A server variable computed from the request (no overrides: HttpContext.getServerVariable adds those). */
export function computeServerVariable(ctx: HttpContext, upperName: string): string {
  const get = VARIABLES[upperName];
  if (get !== undefined) return get(ctx);
  const header = headerOfVariable(upperName);
  return header === undefined ? '' : (ctx.request.headers[header] ?? '');
}
