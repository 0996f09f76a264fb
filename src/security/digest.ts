/**
 * HTTP Digest (RFC 7616) as the main process checks it: the worker issued the nonce and passes
 * the client's fields; this recomputes `response` from the user's password (kept encrypted in
 * Wharf's user store, as IIS keeps it with "store password using reversible encryption") and
 * compares in constant time. qop "auth" only: "auth-int" (a hash of the body) is refused with a
 * clear reason, and so is the RFC 2069 form without qop, which RFC 7616 no longer allows.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CredentialRequest, DigestAlgorithm } from '../ipc/credential-messages.js';

/** The client's Digest fields as the worker forwards them (the contract's 'digest' request). */
export type DigestFields = Omit<Extract<CredentialRequest, { kind: 'digest' }>, 'kind' | 'clientAddress'>;

function h(algorithm: DigestAlgorithm, text: string): string {
  return createHash(algorithm.startsWith('SHA-256') ? 'sha256' : 'md5')
    .update(text, 'utf8')
    .digest('hex');
}

/** The `response` a client that knows `password` sends (RFC 7616 §3.4.1, qop=auth). */
export function digestResponse(f: Omit<DigestFields, 'response'>, password: string): string {
  let ha1 = h(f.algorithm, `${f.user}:${f.realm}:${password}`);
  if (f.algorithm.endsWith('-sess')) ha1 = h(f.algorithm, `${ha1}:${f.nonce}:${f.cnonce}`);
  const ha2 = h(f.algorithm, `${f.method}:${f.uri}`);
  return h(f.algorithm, `${ha1}:${f.nonce}:${f.nc}:${f.cnonce}:${f.qop}:${ha2}`);
}

/** Why the fields cannot be checked at all, or undefined when they can. */
export function digestProblem(f: DigestFields): string | undefined {
  if (f.qop === 'auth-int') return 'qop=auth-int is not supported (Wharf offers qop="auth")';
  if (f.qop !== 'auth') return `qop "${f.qop}" is not "auth" (RFC 7616 requires qop)`;
  if (!/^[0-9a-fA-F]{8}$/.test(f.nc)) return 'nc is not 8 hex digits';
  if (f.cnonce === '') return 'cnonce is empty';
  return undefined;
}

/** Whether `f.response` is what `password` gives; the comparison takes the same time either way. */
export function digestMatches(f: DigestFields, password: string): boolean {
  const expected = Buffer.from(digestResponse(f, password), 'latin1');
  const got = Buffer.from(f.response.toLowerCase(), 'latin1');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
