/**
 * IIS's authentication modules (AUTHENTICATE_REQUEST): anonymous, Basic and Digest. Each one
 * reads its own section under system.webServer/security/authentication, sets `ctx.user`,
 * `ctx.identity` and `ctx.authType` when its credentials log the user on, and adds its challenge
 * to every 401 (challenge.ts). IIS Web Core's 401.2, when no scheme produced a user and anonymous
 * access is off, is in src/worker/pipeline.ts.
 */
export { AnonymousAuthenticationModule, ANONYMOUS_SECTION } from './anonymous.js';
export { BasicAuthenticationModule, AUTH_PASSWORD_ITEM } from './basic.js';
export { DigestAuthenticationModule } from './digest.js';
export { addChallenge } from './challenge.js';
