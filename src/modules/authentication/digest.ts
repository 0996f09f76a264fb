/**
 * DigestAuthenticationModule (IIS authmd5.dll): system.webServer/security/authentication/
 * digestAuthentication, as RFC 7616 has it. A 401 carries two challenges, SHA-256 first, then
 * MD5 for older clients, with qop="auth" and a nonce this worker issued (digest-nonce.ts). The
 * worker checks what it can alone — the header's syntax, the realm, the nonce (stale=true once
 * expired), `nc` against replays, `uri` against the request target (400 otherwise, RFC 7616
 * §3.4.6) — and the main process recomputes `response` from the password of Wharf's user (IIS
 * checks Digest against accounts whose password it can read back; Linux accounts keep only a
 * one-way hash, so Digest is for Wharf's users).
 */
import type { DigestAlgorithm } from '../../ipc/credential-messages.js';
import type { CredentialClient, HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { addChallenge, badHeader, credentialsFor, defaultRealm, logonFailed, logName, quoted } from './challenge.js';
import { DigestNonces } from './digest-nonce.js';

export const DIGEST_SECTION = 'system.webServer/security/authentication/digestAuthentication';

/** The longest Digest credentials read (a long `uri` included; HTTP.sys caps the URL first). */
const MAX_DIGEST_HEADER = 8192;

/** ctx.items key: the nonce was stale, so the challenge says stale=true. */
const STALE_ITEM = 'DigestAuthenticationModule:stale';

const ALGORITHMS: ReadonlySet<string> = new Set<DigestAlgorithm>(['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess']);

/** auth-params (RFC 9110 §11.2): `name=token` or `name="quoted string"`, comma separated; undefined when malformed. */
export function parseAuthParams(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const re = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s",]*))\s*(?:,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null || m[0] === '') return undefined;
    const name = m[1]!.toLowerCase();
    if (out.has(name)) return undefined;
    out.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!);
    at = re.lastIndex;
  }
  return out;
}

export interface DigestCredentials {
  readonly username: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  readonly algorithm: DigestAlgorithm;
  readonly qop: string;
  readonly nc: string;
  readonly cnonce: string;
}

/** The fields of `Authorization: Digest …`, or why they cannot be used. */
export function parseDigest(token: string): DigestCredentials | string {
  if (token.length > MAX_DIGEST_HEADER) return `credentials of ${token.length} characters (at most ${MAX_DIGEST_HEADER})`;
  const p = parseAuthParams(token);
  if (p === undefined) return 'the credentials are not a list of name=value parameters';
  if (p.has('username*') || p.get('userhash') === 'true') return 'username* and userhash are not supported';
  const algorithm = p.get('algorithm') ?? 'MD5';
  if (!ALGORITHMS.has(algorithm)) return `algorithm ${JSON.stringify(algorithm.slice(0, 32))} is not offered`;
  const fields = ['username', 'realm', 'nonce', 'uri', 'response', 'qop', 'nc', 'cnonce'] as const;
  for (const f of fields) if (!p.has(f)) return `the ${f} parameter is missing`;
  const get = (f: (typeof fields)[number]): string => p.get(f)!;
  if (get('qop') !== 'auth') return `qop ${JSON.stringify(get('qop').slice(0, 32))} is not "auth"`;
  if (!/^[0-9a-f]{32}$|^[0-9a-f]{64}$/i.test(get('response'))) return 'response is not a hex digest';
  return {
    username: get('username'),
    realm: get('realm'),
    nonce: get('nonce'),
    uri: get('uri'),
    response: get('response'),
    algorithm: algorithm as DigestAlgorithm,
    qop: 'auth',
    nc: get('nc'),
    cnonce: get('cnonce'),
  };
}

let credentials: CredentialClient | undefined;
let nonces = new DigestNonces();

/** Tests give the module a clock (nonce expiry) and a fresh memory of nonces. */
export function resetDigestNonces(options: ConstructorParameters<typeof DigestNonces>[0] = {}): void {
  nonces = new DigestNonces(options);
}

function realmOf(ctx: HttpContext): string {
  const realm = ctx.config.section(DIGEST_SECTION).str('realm');
  return realm === '' ? defaultRealm(ctx) : realm;
}

function authenticate(ctx: HttpContext): void | Promise<void> {
  if (ctx.isChildRequest || ctx.user !== '') return;
  const token = credentialsFor(ctx, 'digest');
  if (token === undefined) return;
  if (!ctx.config.section(DIGEST_SECTION).bool('enabled')) return;
  const d = parseDigest(token);
  if (typeof d === 'string') return badHeader(ctx, 'Digest', d);
  if (d.realm !== realmOf(ctx)) return badHeader(ctx, 'Digest', `realm ${logName(d.realm)} is not this site's`);
  const req = ctx.request;
  // The uri the client hashed must be the target it asked for, else a captured header could be
  // used for another URL (RFC 7616 §3.4.6).
  if (d.uri !== req.rawUrl) {
    ctx.log('warn', `Digest uri ${logName(d.uri)} from ${req.remoteAddress} is not the request target`);
    ctx.setStatus(400, 0, { description: 'The uri of the Digest credentials is not the URL requested.' });
    ctx.finish();
    return;
  }
  const verdict = nonces.use(d.nonce, d.nc);
  if (verdict !== 'ok') {
    if (verdict === 'stale') {
      // The user's credentials may be right: a new nonce, and the client retries on its own.
      ctx.items.set(STALE_ITEM, true);
      ctx.setStatus(401, 1, { description: 'The Digest nonce has expired; the client should retry with the new one.' });
      ctx.finish();
      return;
    }
    return badHeader(ctx, 'Digest', verdict === 'replay' ? `nc ${d.nc} was already used with this nonce (a replay)` : 'the nonce was not issued by this worker');
  }
  if (credentials === undefined) return;
  const check = {
    kind: 'digest',
    user: d.username,
    realm: d.realm,
    algorithm: d.algorithm,
    method: req.method,
    uri: d.uri,
    nonce: d.nonce,
    nc: d.nc,
    cnonce: d.cnonce,
    qop: d.qop,
    response: d.response,
    clientAddress: req.remoteAddress,
  } as const;
  return credentials.check(check).then((r) => {
    if (!r.ok) return logonFailed(ctx, 'Digest', d.username, r);
    ctx.user = d.username;
    ctx.identity = r.identity;
    ctx.authType = 'Digest';
  });
}

function challenge(ctx: HttpContext): void {
  if (ctx.response.statusCode !== 401) return;
  if (!ctx.config.section(DIGEST_SECTION).bool('enabled')) return;
  const realm = quoted(realmOf(ctx));
  const stale = ctx.items.get(STALE_ITEM) === true ? ', stale=true' : '';
  // One nonce for both: the client picks one algorithm (RFC 7616 §3.7: the preferred one first).
  const nonce = nonces.issue();
  addChallenge(ctx.response, `Digest realm=${realm}, qop="auth", algorithm=SHA-256, nonce="${nonce}"${stale}`);
  addChallenge(ctx.response, `Digest realm=${realm}, qop="auth", algorithm=MD5, nonce="${nonce}"${stale}`);
}

export const DigestAuthenticationModule: ModuleDefinition = {
  name: 'DigestAuthenticationModule',
  attach: (worker) => {
    credentials = worker.credentials;
  },
  notifications: { AuthenticateRequest: authenticate, SendResponse: challenge },
};
