/**
 * IISCertificateMappingAuthenticationModule (IIS authmap.dll):
 * system.webServer/security/authentication/iisClientCertificateMappingAuthentication. In
 * AuthenticateRequest, a client certificate the TLS handshake verified is mapped to an account
 * (mappings.ts: one-to-one, then many-to-one rules); the request runs as that account with
 * AUTH_TYPE `SSL/PCT`, as IIS reports certificate logons.
 *
 * - Only when security/access asks for client certificates (SslNegotiateCert or SslRequireCert):
 *   without them IIS never looks at a certificate, and IIS Web Core has already refused one that
 *   did not verify (403.13/.16/.17, src/worker/ssl-access.ts).
 * - The account is looked up by the main process (`{kind:'account'}`: Linux accounts, then
 *   Wharf's users); a mapping's `password` is not checked: the handshake proved the client holds
 *   the certificate's key, and IIS's encrypted passwords cannot be read on Linux. A `DOMAIN\`
 *   before the user name is dropped (Linux accounts have no logon domain).
 * - No mapping: nothing happens here (anonymous authentication or the core's 401.2 decides). A
 *   many-to-one Deny mapping: 403.12 ("mapper denied access"). A mapped account that does not
 *   exist: 401.1.
 */
import type { CredentialClient, HttpContext, ModuleDefinition, WorkerServices } from '../../worker/module-api.js';
import { ACCESS_SSL_FLAG } from '../../worker/ssl-access.js';
import { compileMappings, mapCertificate } from './mappings.js';

export const IIS_CERTIFICATE_MAPPING_SECTION = 'system.webServer/security/authentication/iisClientCertificateMappingAuthentication';

const WANTS_CERTIFICATE = ACCESS_SSL_FLAG.SslNegotiateCert | ACCESS_SSL_FLAG.SslRequireCert;

let credentials: CredentialClient | undefined;

/** `DOMAIN\user` → `user`. */
function accountName(userName: string): string {
  return userName.slice(userName.lastIndexOf('\\') + 1).trim();
}

async function logOn(ctx: HttpContext, userName: string, mapping: string): Promise<void> {
  const user = accountName(userName);
  const service = credentials;
  const r =
    service === undefined
      ? ({ ok: false, reason: 'unavailable', message: 'IISCertificateMappingAuthenticationModule was not attached to its worker' } as const)
      : user === ''
        ? ({ ok: false, reason: 'unknown-user', message: 'no userName' } as const)
        : await service.check({ kind: 'account', providers: ['system', 'wharf'], user });
  if (r.ok) {
    ctx.user = r.identity.name;
    ctx.identity = r.identity;
    ctx.authType = 'SSL/PCT';
    return;
  }
  if (r.reason === 'unavailable') {
    ctx.log('error', `client certificate mapping "${mapping}": the account ${user} cannot be looked up: ${r.message}`);
    ctx.setStatus(500, 0, { description: 'The account a client certificate maps to cannot be looked up; the server log says why.' });
  } else {
    // unknown-user: no such account; otherwise it exists but may not log on (expired: account-expiry.ts).
    const why = r.reason === 'unknown-user' ? 'does not exist' : 'cannot log on';
    ctx.log('warn', `client certificate mapping "${mapping}" names the account "${userName}", which ${why} (${r.message})`);
    ctx.setStatus(401, 1, { description: `Logon failed: the account the client certificate maps to ${why}.` });
  }
  ctx.finish();
}

export const IisCertificateMappingModule: ModuleDefinition = {
  name: 'IISCertificateMappingAuthenticationModule',
  attach(worker: WorkerServices) {
    credentials = worker.credentials;
  },
  notifications: {
    AuthenticateRequest(ctx) {
      if (ctx.user !== '') return;
      const tls = ctx.request.tls;
      if (tls === undefined || tls.clientCert === '' || tls.clientCertError !== '') return;
      const m = compileMappings(ctx.config.section(IIS_CERTIFICATE_MAPPING_SECTION));
      if (!m.enabled) return;
      if ((ctx.config.section('system.webServer/security/access').num('sslFlags') & WANTS_CERTIFICATE) === 0) return;
      const hit = mapCertificate(m, tls.clientCert);
      if (hit.kind === 'none') return;
      if (hit.kind === 'denied') {
        ctx.setStatus(403, 12, { description: `The client certificate matches the many-to-one mapping "${hit.mapping}", which denies access.` });
        ctx.finish();
        return;
      }
      return logOn(ctx, hit.userName, hit.mapping);
    },
  },
};
