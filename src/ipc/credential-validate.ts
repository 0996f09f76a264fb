/**
 * The checks a CredentialRequest passes before the main process acts on it (the worker runs the
 * pool's code: any field may be hostile), and the decoding of the CredentialResult a worker gets
 * back. Every string is bounded in bytes, kinds and providers come from their closed sets, and a
 * malformed request is reported with what was wrong, never thrown.
 */
import type { CredentialProvider, CredentialRequest, CredentialResult, DigestAlgorithm } from './credential-messages.js';

/** A user name (Linux allows 32 bytes; LDAP and Kerberos names are longer). */
export const MAX_CREDENTIAL_USER = 256;
/** A password as a client may send it; PAM's module takes fewer bytes (credential-service.ts refuses longer). */
export const MAX_CREDENTIAL_PASSWORD = 1024;
/** A Negotiate token, base64 (a Kerberos ticket with a large PAC stays well below). */
export const MAX_CREDENTIAL_TOKEN = 64 * 1024;
/** A Digest `uri`: a request target (HTTP.sys refuses longer URLs far earlier). */
export const MAX_DIGEST_URI = 16 * 1024;
/** Other short fields: a domain, a realm, a nonce, a cnonce, a negotiate context id. */
export const MAX_CREDENTIAL_FIELD = 256;
/** A client address (IPv6 with a zone id fits). */
export const MAX_CLIENT_ADDRESS = 64;
/** The whole JSON payload: anything larger is refused before it is parsed. */
export const MAX_CREDENTIAL_PAYLOAD = MAX_CREDENTIAL_TOKEN + 32 * 1024;

const PROVIDERS: ReadonlySet<string> = new Set<CredentialProvider>(['system', 'wharf']);
const ALGORITHMS: ReadonlySet<string> = new Set<DigestAlgorithm>(['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess']);
const CONTROL = /[\x00-\x1f\x7f]/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Invalid extends Error {}

/** `v[key]` as a string of at most `max` UTF-8 bytes; `name` says it may not hold control characters. */
function text(v: Record<string, unknown>, key: string, max: number, name = false): string {
  const s = v[key];
  if (typeof s !== 'string') throw new Invalid(`${key} is not a string`);
  // Length first: a cheap bound before Buffer.byteLength walks the string.
  if (s.length > max || Buffer.byteLength(s, 'utf8') > max) throw new Invalid(`${key} is longer than ${max} bytes`);
  if (name && CONTROL.test(s)) throw new Invalid(`${key} holds control characters`);
  return s;
}

function providers(v: Record<string, unknown>): CredentialProvider[] {
  const p = v['providers'];
  if (!Array.isArray(p) || p.length === 0 || p.length > PROVIDERS.size) throw new Invalid('providers is not a list of 1 or 2 providers');
  const out: CredentialProvider[] = [];
  for (const x of p) {
    if (typeof x !== 'string' || !PROVIDERS.has(x)) throw new Invalid(`unknown provider ${JSON.stringify(x).slice(0, 40)}`);
    if (out.includes(x as CredentialProvider)) throw new Invalid(`provider ${x} twice`);
    out.push(x as CredentialProvider);
  }
  return out;
}

/** A checked request, or what was wrong with it. */
export function parseCredentialRequest(payload: Buffer): CredentialRequest | { readonly problem: string } {
  if (payload.length > MAX_CREDENTIAL_PAYLOAD) return { problem: `a credential request of ${payload.length} bytes` };
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    return { problem: 'a credential request that is not JSON' };
  }
  if (!isRecord(v)) return { problem: 'a credential request that is not an object' };
  try {
    switch (v['kind']) {
      case 'password':
        return {
          kind: 'password',
          providers: providers(v),
          user: text(v, 'user', MAX_CREDENTIAL_USER, true),
          password: text(v, 'password', MAX_CREDENTIAL_PASSWORD),
          domain: text(v, 'domain', MAX_CREDENTIAL_FIELD, true),
          clientAddress: text(v, 'clientAddress', MAX_CLIENT_ADDRESS, true),
        };
      case 'digest': {
        const algorithm = v['algorithm'];
        if (typeof algorithm !== 'string' || !ALGORITHMS.has(algorithm)) throw new Invalid('algorithm is not MD5, MD5-sess, SHA-256 or SHA-256-sess');
        return {
          kind: 'digest',
          user: text(v, 'user', MAX_CREDENTIAL_USER, true),
          realm: text(v, 'realm', MAX_CREDENTIAL_FIELD, true),
          algorithm: algorithm as DigestAlgorithm,
          method: text(v, 'method', 32, true),
          uri: text(v, 'uri', MAX_DIGEST_URI, true),
          nonce: text(v, 'nonce', MAX_CREDENTIAL_FIELD, true),
          nc: text(v, 'nc', 8, true),
          cnonce: text(v, 'cnonce', MAX_CREDENTIAL_FIELD, true),
          qop: text(v, 'qop', 16, true),
          response: text(v, 'response', 128, true),
          clientAddress: text(v, 'clientAddress', MAX_CLIENT_ADDRESS, true),
        };
      }
      case 'negotiate':
        return {
          kind: 'negotiate',
          token: text(v, 'token', MAX_CREDENTIAL_TOKEN, true),
          context: text(v, 'context', MAX_CREDENTIAL_FIELD, true),
          clientAddress: text(v, 'clientAddress', MAX_CLIENT_ADDRESS, true),
        };
      case 'account':
        return { kind: 'account', providers: providers(v), user: text(v, 'user', MAX_CREDENTIAL_USER, true) };
      default:
        return { problem: `a credential request of unknown kind ${JSON.stringify(v['kind'])?.slice(0, 40) ?? 'undefined'}` };
    }
  } catch (err) {
    if (err instanceof Invalid) return { problem: `a ${String(v['kind'])} credential request whose ${err.message}` };
    throw err;
  }
}

/**
 * A result as the worker reads it. The main process is trusted; this only makes sure a damaged
 * frame cannot pass for a success.
 */
export function decodeCredentialResult(payload: Buffer): CredentialResult {
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    if (isRecord(v) && (v['ok'] === true ? isRecord(v['identity']) : v['ok'] === false && typeof v['reason'] === 'string')) return v as unknown as CredentialResult;
  } catch {
    // fall through
  }
  return { ok: false, reason: 'unavailable', message: 'the main process sent a credential result that does not decode' };
}
