/**
 * Negotiate (SPNEGO/Kerberos, RFC 4559) for the main process: the part of LSA that accepts a
 * client's Kerberos ticket with the machine's service key. The credential service calls
 * `NegotiateAcceptor.accept` for each `{kind:'negotiate'}` request a worker forwards; workers
 * never see the keytab (root-only, read here through libgssapi_krb5).
 *
 * - GSSAPI comes from the optional npm module `kerberos` (MIT krb5), loaded on first use: without
 *   it every request is answered 'unavailable' with what to install.
 * - The keytab is KRB5_KTNAME's or /etc/krb5.keytab (libkrb5's default). Any key in it may accept
 *   a ticket (GSS_C_NO_CREDENTIAL), so one keytab serves every host name of every site, as the
 *   machine account's key does for IIS.
 * - A context that needs another leg (continueNegotiate) is kept by a random id for a short time
 *   and a bounded count; Kerberos itself completes in one leg.
 * - Principal → Linux account: `alice@REALM` → `alice` for the local realms (by default the
 *   realm of the service key that accepted the ticket; WHARF_KERBEROS_REALMS lists others, or
 *   `*`), else the whole principal is the account name (SSSD's fully qualified names). The
 *   account's uid and groups come from NSS. IIS shows the user as `DOMAIN\alice` (AUTH_USER,
 *   cs-username): the realm's first label stands for the NetBIOS domain name.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import type { CredentialRequest, CredentialResult, Identity } from '../ipc/credential-messages.js';
import { accountExpiryProblem } from './account-expiry.js';
import { lookupAccount } from './system-accounts.js';

export type NegotiateRequest = Extract<CredentialRequest, { kind: 'negotiate' }>;

/** The part of the `kerberos` module's API used here (typed locally: the module is optional). */
interface GssServer {
  readonly username: string;
  readonly response: string;
  readonly targetName: string;
  readonly contextComplete: boolean;
  step(challenge: string): Promise<string>;
}
interface KerberosModule {
  initializeServer(service: string): Promise<GssServer>;
}

/** Environment variable listing realms whose principals map to local accounts by their first part. */
export const KERBEROS_REALMS_ENV = 'WHARF_KERBEROS_REALMS';

/** A SPNEGO token larger than this is refused unread (a ticket with a big PAC is ~12 KiB; HTTP.sys's 16 KiB header limit is below it). */
export const MAX_TOKEN_LENGTH = 64 * 1024;

export interface NegotiateOptions {
  /** Realms whose principals are local accounts without their realm; '*' = every realm; default: the accepting key's realm. */
  readonly localRealms?: readonly string[] | '*';
  /** Unfinished contexts kept at once (default 256); the oldest is dropped beyond it. */
  readonly maxContexts?: number;
  /** How long an unfinished context waits for the client's next leg (default 60 s). */
  readonly contextTimeoutMs?: number;
  /** The account behind a user name (default: NSS through `id`). */
  readonly lookupAccount?: (name: string) => Promise<AccountInfo | undefined>;
  /** Why a Linux account cannot log on now (account-expiry.ts); default: its shadow entry's aging. */
  readonly accountExpiry?: (name: string) => Promise<string | undefined>;
  /** Clock for context expiry (tests). */
  readonly now?: () => number;
}

/** A Linux account as NSS knows it. */
export interface AccountInfo {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly { readonly name: string; readonly gid: number }[];
}

/** WHARF_KERBEROS_REALMS: 'A.COM,B.COM' or '*'; undefined when unset or empty (the default rule). */
export function localRealmsFromEnv(value: string | undefined): readonly string[] | '*' | undefined {
  const v = (value ?? '').trim();
  if (v === '') return undefined;
  if (v === '*') return '*';
  return v.split(',').map((r) => r.trim().toUpperCase()).filter((r) => r !== '');
}

/** The keytab libkrb5 will read: KRB5_KTNAME without its FILE:/WRFILE: prefix, else the default. */
export function keytabPath(env: NodeJS.ProcessEnv = process.env): string {
  const name = env['KRB5_KTNAME'] ?? '';
  if (name === '') return '/etc/krb5.keytab';
  return name.replace(/^(WR)?FILE:/, '');
}

/** `alice@EXAMPLE.COM` → the Linux account name and the name IIS shows (`EXAMPLE\alice`). */
export function mapPrincipal(principal: string, localRealms: readonly string[] | '*'): { account: string; shown: string } {
  const at = principal.lastIndexOf('@');
  const user = at === -1 ? principal : principal.slice(0, at);
  const realm = at === -1 ? '' : principal.slice(at + 1);
  const local = realm === '' || localRealms === '*' || localRealms.includes(realm.toUpperCase());
  const domain = realm.split('.')[0]!.toUpperCase();
  return { account: local ? user : principal, shown: domain === '' ? user : `${domain}\\${user}` };
}

const INSTALL_HINT = 'install the Kerberos headers and rebuild the optional module: apt-get install libkrb5-dev, then npm rebuild kerberos';

let kerberosModule: Promise<KerberosModule | string> | undefined;

/** The `kerberos` module, or why it cannot be loaded (loaded once, on the first Negotiate request). */
function loadKerberos(): Promise<KerberosModule | string> {
  kerberosModule ??= import('kerberos' as string).then(
    (m: { default?: KerberosModule } & KerberosModule) => m.default ?? m,
    (err: Error) => `the npm module kerberos cannot be loaded (${err.message}): ${INSTALL_HINT}`,
  );
  return kerberosModule;
}

interface PendingContext {
  readonly server: GssServer;
  readonly expires: number;
}

function failure(reason: 'bad-credentials' | 'unknown-user' | 'unavailable', message: string): CredentialResult {
  return { ok: false, reason, message };
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const CONTEXT_ID = /^[0-9a-f]{32}$/;

export class NegotiateAcceptor {
  readonly #keytab: string;
  readonly #localRealms: readonly string[] | '*' | undefined;
  readonly #maxContexts: number;
  readonly #timeoutMs: number;
  readonly #lookup: (name: string) => Promise<AccountInfo | undefined>;
  readonly #expiry: (name: string) => Promise<string | undefined>;
  readonly #now: () => number;
  /** Unfinished contexts in creation order (so expired ones are at the front). */
  readonly #contexts = new Map<string, PendingContext>();

  constructor(options: NegotiateOptions = {}) {
    this.#keytab = keytabPath();
    this.#localRealms = options.localRealms ?? localRealmsFromEnv(process.env[KERBEROS_REALMS_ENV]);
    this.#maxContexts = options.maxContexts ?? 256;
    this.#timeoutMs = options.contextTimeoutMs ?? 60_000;
    this.#lookup = options.lookupAccount ?? ((name) => lookupAccount(name).catch(() => undefined));
    this.#expiry = options.accountExpiry ?? ((name) => accountExpiryProblem(name));
    this.#now = options.now ?? Date.now;
  }

  /** Unfinished contexts held now. */
  get pendingContexts(): number {
    return this.#contexts.size;
  }

  /** One leg of a Negotiate exchange: the credential service's `negotiate` option. */
  readonly accept = async (req: NegotiateRequest): Promise<CredentialResult> => {
    // Everything a worker sends is untrusted: bound and check it before GSSAPI parses it.
    if (typeof req.token !== 'string' || req.token.length > MAX_TOKEN_LENGTH || !BASE64.test(req.token)) {
      return failure('bad-credentials', `malformed Negotiate token from ${String(req.clientAddress).slice(0, 64)}`);
    }
    const k = await loadKerberos();
    if (typeof k === 'string') return failure('unavailable', k);
    try {
      accessSync(this.#keytab, constants.R_OK);
    } catch (err) {
      return failure('unavailable', `the keytab ${this.#keytab} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): set KRB5_KTNAME to a keytab holding the HTTP/<host name> service key, readable by Wharf's main process`);
    }
    this.#sweep();
    let server: GssServer;
    const pending = typeof req.context === 'string' && CONTEXT_ID.test(req.context) ? this.#contexts.get(req.context) : undefined;
    if (pending !== undefined) {
      this.#contexts.delete(req.context);
      server = pending.server;
    } else {
      try {
        server = await k.initializeServer('');
      } catch (err) {
        return failure('unavailable', `GSSAPI could not start an acceptor: ${(err as Error).message}`);
      }
    }
    try {
      await server.step(req.token);
    } catch (err) {
      return failure('bad-credentials', `Negotiate token rejected: ${(err as Error).message}`);
    }
    if (!server.contextComplete) {
      const id = randomBytes(16).toString('hex');
      if (this.#contexts.size >= this.#maxContexts) this.#contexts.delete(this.#contexts.keys().next().value!);
      this.#contexts.set(id, { server, expires: this.#now() + this.#timeoutMs });
      return { ok: false, reason: 'bad-credentials', message: 'Negotiate needs another leg', continueNegotiate: { token: server.response, context: id } };
    }
    const principal = server.username;
    const serviceRealm = server.targetName.slice(server.targetName.lastIndexOf('@') + 1).toUpperCase();
    const { account, shown } = mapPrincipal(principal, this.#localRealms ?? [serviceRealm]);
    const info = await this.#lookup(account);
    if (info === undefined) return failure('unknown-user', `Kerberos principal ${principal} has no Linux account ${account}`);
    // A valid ticket does not make an expired Linux account usable (pam_unix's account rules).
    let problem: string | undefined;
    try {
      problem = await this.#expiry(account);
    } catch (err) {
      return failure('unavailable', (err as Error).message);
    }
    if (problem !== undefined) return failure('bad-credentials', `Kerberos principal ${principal}: ${problem}`);
    const identity: Identity = { name: shown, provider: 'system', uid: info.uid, gid: info.gid, groups: info.groups };
    return server.response === '' ? { ok: true, identity } : { ok: true, identity, token: server.response };
  };

  /** Drop contexts whose client never came back. */
  #sweep(): void {
    const now = this.#now();
    for (const [id, c] of this.#contexts) {
      if (c.expires > now) break;
      this.#contexts.delete(id);
    }
  }
}
