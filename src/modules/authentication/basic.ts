/**
 * BasicAuthenticationModule (IIS authbas.dll): system.webServer/security/authentication/
 * basicAuthentication. `Authorization: Basic base64(user:password)` (RFC 7617) is checked by the
 * main process (src/ipc/credential-messages.ts): the worker never sees a password hash.
 *
 * Which users: IIS logs Basic users on to Windows accounts (local or domain), never IIS Manager
 * users. Wharf's rule: the domain decides. `WHARF\alice` (or defaultLogonDomain="WHARF") names
 * one of Wharf's own users (`wharf user add`); any other name is a Linux account through PAM
 * first, then Wharf's users, so a site can use Wharf's users without Linux accounts for them.
 * `DOMAIN\user` sends the domain along; `user@domain` is passed whole (SSSD and winbind name
 * domain users so). `realm` and `logonMethod` are accepted (PAM has no logon types).
 *
 * A 401 gets `WWW-Authenticate: Basic realm="<realm or host>"` (SendResponse), a failed logon
 * 401.1 with the name tried in cs-username, a malformed header 401.1 too. AUTH_PASSWORD holds the
 * password for the request, as IIS exposes it to Basic requests.
 */
import type { CredentialProvider } from '../../ipc/credential-messages.js';
import type { CredentialClient, CredentialResult, HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { addChallenge, badHeader, credentialsFor, defaultRealm, logonFailed, quoted } from './challenge.js';

export const BASIC_SECTION = 'system.webServer/security/authentication/basicAuthentication';

/** The domain that names Wharf's own users. */
export const WHARF_DOMAIN = 'WHARF';

/** ctx.items key of the password, for AUTH_PASSWORD. */
export const AUTH_PASSWORD_ITEM = 'BasicAuthenticationModule:password';

/**
 * The longest base64 credentials accepted: a 256-byte user name and a 1024-byte password (the
 * credential service's bounds), encoded, with room for a domain.
 */
const MAX_CREDENTIALS_CHARS = 2048;

export interface BasicCredentials {
  /** The name as the client sent it (AUTH_USER, cs-username). */
  readonly sent: string;
  readonly user: string;
  readonly domain: string;
  readonly password: string;
}

/** Decode the token after `Basic `, or say why it is not valid. */
export function parseBasic(token: string, defaultDomain: string): BasicCredentials | string {
  if (token.length > MAX_CREDENTIALS_CHARS) return `credentials of ${token.length} characters (at most ${MAX_CREDENTIALS_CHARS})`;
  // Strict base64 (RFC 4648 §4, padded as RFC 7617 sends it): Buffer.from would skip junk.
  if (token.length === 0 || token.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) return 'the credentials are not base64';
  const text = Buffer.from(token, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon === -1) return 'the credentials have no ":" between user name and password';
  const sent = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (sent === '' || /[\0-\x1f\x7f]/.test(sent)) return 'the user name is empty or holds control characters';
  const slash = sent.indexOf('\\');
  if (slash !== -1) {
    const domain = sent.slice(0, slash);
    const user = sent.slice(slash + 1);
    if (domain === '' || user === '' || user.includes('\\')) return 'the user name is not DOMAIN\\user';
    return { sent, user, domain, password };
  }
  return { sent, user: sent, domain: sent.includes('@') ? '' : defaultDomain, password };
}

/** Where a user of `domain` is looked up (the rule in the header comment). */
export function providersFor(domain: string): readonly CredentialProvider[] {
  return domain.toUpperCase() === WHARF_DOMAIN ? ['wharf'] : ['system', 'wharf'];
}

let credentials: CredentialClient | undefined;

function authenticate(ctx: HttpContext): void | Promise<void> {
  if (ctx.isChildRequest || ctx.user !== '') return;
  const token = credentialsFor(ctx, 'basic');
  if (token === undefined) return;
  const section = ctx.config.section(BASIC_SECTION);
  if (!section.bool('enabled')) return;
  const parsed = parseBasic(token, section.str('defaultLogonDomain'));
  if (typeof parsed === 'string') return badHeader(ctx, 'Basic', parsed);
  if (credentials === undefined) return;
  const request = {
    kind: 'password',
    providers: providersFor(parsed.domain),
    user: parsed.user,
    password: parsed.password,
    domain: parsed.domain.toUpperCase() === WHARF_DOMAIN ? '' : parsed.domain,
    clientAddress: ctx.request.remoteAddress,
  } as const;
  const apply = (r: CredentialResult): void => {
    if (!r.ok) return logonFailed(ctx, 'Basic', parsed.sent, r);
    ctx.user = parsed.sent;
    ctx.identity = r.identity;
    ctx.authType = 'Basic';
    ctx.items.set(AUTH_PASSWORD_ITEM, parsed.password);
  };
  // A logon verified recently is answered here, synchronously: the usual keep-alive request.
  const known = credentials.cached(request);
  if (known !== undefined) return apply(known);
  return credentials.check(request).then(apply);
}

function challenge(ctx: HttpContext): void {
  if (ctx.response.statusCode !== 401) return;
  const section = ctx.config.section(BASIC_SECTION);
  if (!section.bool('enabled')) return;
  const realm = section.str('realm');
  addChallenge(ctx.response, `Basic realm=${quoted(realm === '' ? defaultRealm(ctx) : realm)}`);
}

export const BasicAuthenticationModule: ModuleDefinition = {
  name: 'BasicAuthenticationModule',
  attach: (worker) => {
    credentials = worker.credentials;
  },
  notifications: { AuthenticateRequest: authenticate, SendResponse: challenge },
};
