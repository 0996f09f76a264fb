/**
 * AnonymousAuthenticationModule (IIS authanon.dll): system.webServer/security/authentication/
 * anonymousAuthentication. A request no other scheme authenticated runs as the anonymous account:
 * `userName` empty (or IIS's IUSR, which Linux has no equivalent of) is the application pool's
 * identity, whose rights the worker already has; a named account is looked up by the main process
 * (Linux accounts, then Wharf's users) and its file rights apply (401.3), as IIS impersonates the
 * anonymous user's token. The request stays anonymous: `ctx.user` is '' and cs-username is '-'.
 *
 * When the section is disabled nothing happens here: IIS Web Core answers 401.2 after
 * AuthenticateRequest when no scheme produced a user (src/worker/pipeline.ts).
 */
import type { CredentialClient, CredentialResult, HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { logonFailed } from './challenge.js';

export const ANONYMOUS_SECTION = 'system.webServer/security/authentication/anonymousAuthentication';

/** Account names that mean "the pool identity" on Linux. */
function isPoolIdentity(userName: string): boolean {
  return userName === '' || userName.toUpperCase() === 'IUSR';
}

let credentials: CredentialClient | undefined;

function authenticate(ctx: HttpContext): void | Promise<void> {
  // A child request runs as its parent (HttpContext copies the identity); an earlier scheme won.
  if (ctx.isChildRequest || ctx.user !== '' || ctx.identity !== undefined) return;
  const section = ctx.config.section(ANONYMOUS_SECTION);
  if (!section.bool('enabled')) return;
  const userName = section.str('userName');
  if (isPoolIdentity(userName) || credentials === undefined) return;
  const request = { kind: 'account', providers: ['system', 'wharf'], user: userName } as const;
  const apply = (r: CredentialResult): void => {
    if (r.ok) ctx.identity = r.identity;
    else logonFailed(ctx, 'anonymous', '', r);
  };
  const known = credentials.cached(request);
  if (known !== undefined) return apply(known);
  return credentials.check(request).then(apply);
}

export const AnonymousAuthenticationModule: ModuleDefinition = {
  name: 'AnonymousAuthenticationModule',
  attach: (worker) => {
    credentials = worker.credentials;
  },
  notifications: { AuthenticateRequest: authenticate },
};
