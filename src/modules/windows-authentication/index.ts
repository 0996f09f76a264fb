/**
 * WindowsAuthenticationModule (IIS authsspi.dll): system.webServer/security/authentication/
 * windowsAuthentication with the Negotiate provider (SPNEGO with Kerberos, RFC 4559).
 *
 * - AuthenticateRequest: a request carrying `Authorization: Negotiate <token>` has its token checked
 *   by the main process (src/security/negotiate.ts, through WorkerServices.credentials: the worker
 *   never sees the keytab). Accepted: the request runs as that user (AUTH_TYPE `Negotiate`,
 *   AUTH_USER `REALM\user`). Rejected: 401.1. Another leg needed (SPNEGO's mechanism
 *   negotiation): 401.1 with the server's token, and the next request of the same connection
 *   continues that context.
 * - SendResponse: every 401 (whoever set it, as IIS) offers `WWW-Authenticate: Negotiate`; an
 *   accepted request's response carries the server's last token (mutual authentication, RFC 4559 §5).
 *
 * NTLM has no Linux acceptor: an NTLM provider entry is reported at start-up (schema.ts) and not
 * offered. Each request is authenticated on its own (authPersistNonNTLM=false; the listener keeps no
 * per-connection logon), which is also what authPersistSingleRequest asks for.
 */
import type { ConfigElement } from '../../config/types.js';
import type { CredentialClient, HttpContext, ModuleDefinition, WorkerServices } from '../../worker/module-api.js';
// One `WWW-Authenticate` line per scheme, in IIS's order whatever the order of <modules>.
import { addChallenge } from '../authentication/challenge.js';

export const WINDOWS_AUTHENTICATION_SECTION = 'system.webServer/security/authentication/windowsAuthentication';

/** ctx.items key: the server token to send back (mutual authentication or the next leg). */
const SERVER_TOKEN = 'WindowsAuthenticationModule.token';

/** Connections waiting for their next SPNEGO leg, at most this many per worker (oldest dropped). */
const MAX_PENDING_LEGS = 1024;

interface WindowsAuthSettings {
  readonly enabled: boolean;
  /** A Negotiate provider is listed (`Negotiate`, `Negotiate:Kerberos`), or none is (Wharf's default). */
  readonly negotiate: boolean;
}

const compiled = new WeakMap<ConfigElement, WindowsAuthSettings>();

function settingsFor(ctx: HttpContext): WindowsAuthSettings {
  const section = ctx.config.section(WINDOWS_AUTHENTICATION_SECTION);
  let s = compiled.get(section);
  if (s === undefined) {
    const providers = section.child('providers').items.map((p) => p.str('value').trim().toLowerCase());
    s = { enabled: section.bool('enabled'), negotiate: providers.length === 0 || providers.some((p) => p === 'negotiate' || p === 'negotiate:kerberos') };
    compiled.set(section, s);
  }
  return s;
}

let credentials: CredentialClient | undefined;

/** SPNEGO context ids by connection (client address and port, local port) between legs. */
const pendingLegs = new Map<string, string>();

function connectionKey(ctx: HttpContext): string {
  const r = ctx.request;
  return `${r.remoteAddress}|${r.remotePort}|${r.localPort}`;
}

/** The token of `Authorization: Negotiate <token>`, or undefined for another scheme or none. */
export function negotiateToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^Negotiate[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(authorization);
  return m === null ? undefined : m[1];
}

async function authenticate(ctx: HttpContext, token: string): Promise<void> {
  const key = connectionKey(ctx);
  const context = pendingLegs.get(key) ?? '';
  pendingLegs.delete(key);
  const service = credentials;
  const r =
    service === undefined
      ? ({ ok: false, reason: 'unavailable', message: 'WindowsAuthenticationModule was not attached to its worker' } as const)
      : await service.check({ kind: 'negotiate', token, context, clientAddress: ctx.request.remoteAddress });
  if (r.ok) {
    ctx.user = r.identity.name;
    ctx.identity = r.identity;
    ctx.authType = 'Negotiate';
    if (r.token !== undefined && r.token !== '') ctx.items.set(SERVER_TOKEN, r.token);
    return;
  }
  if (r.continueNegotiate !== undefined) {
    if (pendingLegs.size >= MAX_PENDING_LEGS) pendingLegs.delete(pendingLegs.keys().next().value!);
    pendingLegs.set(key, r.continueNegotiate.context);
    ctx.items.set(SERVER_TOKEN, r.continueNegotiate.token);
    ctx.setStatus(401, 1, { description: 'The Negotiate exchange needs another leg.' });
    ctx.finish();
    return;
  }
  if (r.reason === 'unavailable') {
    ctx.log('error', `Negotiate cannot be checked: ${r.message}`);
    ctx.setStatus(500, 0, { description: 'Windows authentication (Negotiate) is not available on this server; the server log says why.' });
  } else {
    // A valid ticket whose principal has no Linux account is the administrator's to fix: say so.
    if (r.reason === 'unknown-user') ctx.log('warn', r.message);
    ctx.setStatus(401, 1, { description: 'Logon failed: the Negotiate (Kerberos) credentials were not accepted.' });
  }
  ctx.finish();
}

export const WindowsAuthenticationModule: ModuleDefinition = {
  name: 'WindowsAuthenticationModule',
  attach(worker: WorkerServices) {
    credentials = worker.credentials;
  },
  notifications: {
    AuthenticateRequest(ctx) {
      if (ctx.user !== '') return; // an earlier scheme (or the parent request) authenticated it
      const s = settingsFor(ctx);
      if (!s.enabled || !s.negotiate) return;
      const token = negotiateToken(ctx.request.headers['authorization']);
      if (token === undefined) return;
      // An authenticated response is never the listener's to hand to someone else.
      ctx.response.kernelCache.disable();
      return authenticate(ctx, token);
    },
    SendResponse(ctx) {
      const token = ctx.items.get(SERVER_TOKEN) as string | undefined;
      if (ctx.response.statusCode === 401) {
        const s = settingsFor(ctx);
        if (s.enabled && s.negotiate) addChallenge(ctx.response, token === undefined ? 'Negotiate' : `Negotiate ${token}`);
      } else if (token !== undefined) {
        // RFC 4559 §5: the final (mutual authentication) token rides on the successful response.
        addChallenge(ctx.response, `Negotiate ${token}`);
      }
    },
  },
};
