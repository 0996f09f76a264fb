/**
 * What the authentication modules share: the `WWW-Authenticate` challenges a 401 carries and the
 * logon failure every scheme answers the same way.
 *
 * IIS's authentication modules each add their own challenge in SEND_RESPONSE when the response is
 * a 401, whoever set it (IIS Web Core's 401.2, URL authorization, a 401.3, an application's own
 * 401): one header per enabled scheme. `addChallenge` keeps them in IIS's order (Negotiate and
 * NTLM, then Digest, then Basic) whatever the order of `<modules>`, so WindowsAuthenticationModule
 * calls it the same way.
 */
import type { CredentialResult, HttpContext, HttpResponse } from '../../worker/module-api.js';

/** Rank of a scheme in the challenge list; schemes IIS does not order go last. */
const SCHEME_ORDER: Readonly<Record<string, number>> = { negotiate: 0, ntlm: 1, digest: 2, basic: 3 };

function rankOf(challenge: string): number {
  const space = challenge.indexOf(' ');
  return SCHEME_ORDER[(space === -1 ? challenge : challenge.slice(0, space)).toLowerCase()] ?? 9;
}

/** Add one `WWW-Authenticate` value, placed after those of the same or an earlier scheme. */
export function addChallenge(res: HttpResponse, challenge: string): void {
  const existing = res.getHeader('WWW-Authenticate');
  const list = existing === undefined ? [] : typeof existing === 'string' ? [existing] : [...existing];
  const rank = rankOf(challenge);
  let at = list.length;
  while (at > 0 && rankOf(list[at - 1]!) > rank) at--;
  list.splice(at, 0, challenge);
  res.setHeader('WWW-Authenticate', list.length === 1 ? list[0]! : list);
}

/** A quoted-string (RFC 9110 §5.6.4) for a realm: `"` and `\` escaped, control characters dropped. */
export function quoted(value: string): string {
  return `"${value.replace(/[\0-\x1f\x7f]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

/** The realm a challenge names when the section has none: the host the client asked for, as IIS does. */
export function defaultRealm(ctx: HttpContext): string {
  const host = ctx.request.headers['host'] ?? ctx.request.localAddress;
  return host.replace(/:\d+$/, '');
}

/**
 * A credential check that did not log the user on: 401.1 for bad or unknown credentials and a
 * throttled client (the client must not learn which), 500 when the provider could not be asked.
 * The reason goes to the server log, never to the client.
 */
export function logonFailed(ctx: HttpContext, scheme: string, user: string, result: Extract<CredentialResult, { ok: false }>): void {
  if (result.reason === 'unavailable') {
    ctx.log('error', `${scheme} logon of ${logName(user)} could not be checked: ${result.message}`);
    ctx.setStatus(500, 0, { hresult: 0x8009030c, description: `The ${scheme} credentials could not be checked: the credential service is unavailable.` });
  } else {
    ctx.log('warn', `${scheme} logon of ${logName(user)} from ${ctx.request.remoteAddress} failed (${result.reason}): ${result.message}`);
    // cs-username names whoever tried, as IIS logs it on a 401.1.
    ctx.user = user;
    ctx.setStatus(401, 1, { hresult: 0x8009030c, description: 'Logon failed: the credentials sent are not valid.' });
  }
  ctx.finish();
}

/** A malformed Authorization header: 401.1 (IIS treats it as a failed logon), the reason logged. */
export function badHeader(ctx: HttpContext, scheme: string, why: string): void {
  ctx.log('warn', `${scheme} Authorization header from ${ctx.request.remoteAddress} refused: ${why}`);
  ctx.setStatus(401, 1, { hresult: 0x8009030c, description: 'Logon failed: the credentials sent are not valid.' });
  ctx.finish();
}

/** A client-supplied user name for a log line: bounded, without control characters. */
export function logName(user: string): string {
  const clean = user.replace(/[\0-\x1f\x7f]/g, '?');
  return JSON.stringify(clean.length > 64 ? `${clean.slice(0, 64)}…` : clean);
}

/** Whether the request carries credentials for `scheme` ('basic', 'digest'): the header's value after it, else undefined. */
export function credentialsFor(ctx: HttpContext, scheme: string): string | undefined {
  const h = ctx.request.headers['authorization'];
  if (h === undefined || h.length <= scheme.length || h.charCodeAt(scheme.length) !== 0x20) return undefined;
  if (h.slice(0, scheme.length).toLowerCase() !== scheme) return undefined;
  return h.slice(scheme.length + 1).trim();
}
