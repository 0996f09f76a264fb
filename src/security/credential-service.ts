/**
 * The credential service of the main process (the role LSA plays for IIS): workers ask it over
 * their control channel (src/was/credential-broker.ts) and it answers with an identity or a
 * failure. Workers never import this folder: password hashes, the machine key and PAM stay here.
 *
 * By kind: 'password' tries its providers in order (Linux accounts through PAM, Wharf's users
 * through their argon2id hash; the first that knows the user decides); 'digest' recomputes the
 * response from a Wharf user's password (digest.ts); 'negotiate' goes to the injected Kerberos
 * acceptor; 'account' names an account without a password (anonymousAuthentication's userName, a
 * certificate mapping's user). A Linux account must also be valid today (not expired, its password
 * not expired: account-expiry.ts), checked like the password only when no cached logon answers.
 *
 * What bounds the work a client can cause: the failure limit per address (failure-limit.ts) is
 * asked first; a verified logon is cached (logon-cache.ts); PAM conversations and argon2
 * verifications, which occupy libuv's thread pool (a failed PAM logon for seconds), run at most
 * MAX_SLOW_CHECKS at once with at most MAX_WAITING_CHECKS queued (beyond: 'throttled' at once),
 * so the main process's file and DNS work always has pool threads left.
 */
import { isIP } from 'node:net';
import type { CredentialProvider, CredentialRequest, CredentialResult, Identity } from '../ipc/credential-messages.js';
import { accountExpiryProblem } from './account-expiry.js';
import { digestMatches, digestProblem } from './digest.js';
import { FailureLimit } from './failure-limit.js';
import { LogonCache } from './logon-cache.js';
import { loadPam, lookupAccount, pamAuthenticate, pamService } from './system-accounts.js';
import { UserDirectory, verifyPassword, hashPassword } from './user-store.js';

export const MAX_SLOW_CHECKS = 2;
export const MAX_WAITING_CHECKS = 256;

type Failure = CredentialResult & { ok: false };

export interface CredentialServiceOptions {
  readonly systemDrive: string;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Kerberos (src/security/negotiate.ts); absent: Negotiate answers 'unavailable'. */
  readonly negotiate?: (request: CredentialRequest & { kind: 'negotiate' }) => Promise<CredentialResult>;
  /** Wharf's users changed: workers drop their cached logons (ActivationService.credentialsChanged). */
  readonly usersChanged?: () => void;
  /** The PAM service; default: pamService() (`wharf` when /etc/pam.d/wharf exists, else `login`). */
  readonly pamService?: string;
  readonly now?: () => number;
}

/** A user name or reason as one bounded log line. */
function logText(s: string): string {
  return JSON.stringify(s.length > 128 ? `${s.slice(0, 128)}…` : s);
}

export class CredentialService {
  readonly #o: CredentialServiceOptions;
  readonly #cache: LogonCache;
  readonly #limit: FailureLimit;
  readonly #users: UserDirectory;
  readonly #pamService: string;
  #slow = 0;
  readonly #waiting: (() => void)[] = [];
  #pamReported = false;
  /** Verified against for unknown Wharf users, so their answer takes as long as a wrong password. */
  #decoy: Promise<string> | undefined;

  constructor(options: CredentialServiceOptions) {
    this.#o = options;
    this.#cache = new LogonCache(options.now !== undefined ? { now: options.now } : {});
    this.#limit = new FailureLimit(options.now !== undefined ? { now: options.now } : {});
    this.#pamService = options.pamService ?? pamService();
    this.#users = new UserDirectory(
      options.systemDrive,
      () => {
        this.#cache.forget('wharf');
        options.log('info', "Wharf's users changed: re-read, cached logons of Wharf users dropped");
        options.usersChanged?.();
      },
      (m) => options.log('warn', m),
    );
  }

  /** Poll the user store for changes (the server does; unit tests need no timer). */
  watch(): void {
    this.#users.watch();
  }

  close(): void {
    this.#users.close();
  }

  get pamServiceName(): string {
    return this.#pamService;
  }

  async check(r: CredentialRequest): Promise<CredentialResult> {
    switch (r.kind) {
      case 'password':
        return this.#limited(r.clientAddress, r.user, () => this.#password(r));
      case 'digest':
        return this.#limited(r.clientAddress, r.user, () => this.#digest(r));
      case 'negotiate':
        if (this.#o.negotiate === undefined) return { ok: false, reason: 'unavailable', message: 'Negotiate (Kerberos) is not available on this server' };
        return this.#limited(r.clientAddress, '(negotiate)', () => this.#o.negotiate!(r));
      case 'account':
        return this.#account(r.providers, r.user);
    }
  }

  /** The failure limit around one logon: asked first, told of each failure, and the failure logged. */
  async #limited(address: string, user: string, run: () => Promise<CredentialResult>): Promise<CredentialResult> {
    const before = this.#throttled(address, '');
    if (before !== undefined) return before;
    const result = await run();
    if (!result.ok && (result.reason === 'bad-credentials' || result.reason === 'unknown-user') && result.continueNegotiate === undefined) {
      this.#limit.failed(address);
      this.#o.log('warn', `SEC_LOGON_FAILED: logon of user ${logText(user)} from ${isIP(address) !== 0 ? address : logText(address)} failed: ${result.reason} (${result.message})`);
      // The failure that reaches the limit already answers 'throttled', so the worker throttles
      // the address before its next logon could hit the worker's own cache.
      return this.#throttled(address, `${result.message}; `) ?? result;
    }
    return result;
  }

  /** The 'throttled' answer while `address` is over its limit (logged once per period), else undefined. */
  #throttled(address: string, prefix: string): Failure | undefined {
    const t = this.#limit.throttled(address);
    if (!t.throttled) return undefined;
    const shown = isIP(address) !== 0 ? address : logText(address);
    if (t.firstTime) this.#o.log('warn', `SEC_THROTTLED: client ${shown} failed to log on too often; its logons are refused without checking for a while`);
    return { ok: false, reason: 'throttled', message: `${prefix}client ${shown} failed to log on too often` };
  }

  async #password(r: CredentialRequest & { kind: 'password' }): Promise<CredentialResult> {
    const key = this.#cache.key(['password', r.providers.join(','), r.domain, r.user, r.password]);
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    let last: Failure = { ok: false, reason: 'unknown-user', message: 'no provider knows the user' };
    for (let i = 0; i < r.providers.length; i++) {
      const provider = r.providers[i]!;
      const more = i + 1 < r.providers.length;
      const result = provider === 'system' ? await this.#systemPassword(r, more) : await this.#wharfPassword(r);
      if (result.ok) {
        this.#cache.set(key, result);
        return result;
      }
      last = result;
      if (result.reason !== 'unknown-user') return result;
    }
    return last;
  }

  /**
   * PAM first, for every name (an unknown user costs as long as a wrong password); when it
   * fails and another provider follows, NSS says whether the account exists at all.
   */
  async #systemPassword(r: CredentialRequest & { kind: 'password' }, more: boolean): Promise<CredentialResult> {
    const pam = loadPam();
    if (typeof pam === 'string') {
      if (!this.#pamReported) this.#o.log('error', `SEC_PAM: ${pam}`);
      this.#pamReported = true;
      // Without PAM no Linux password can be checked; a name NSS does not know may still be a Wharf user's.
      if (more && (await lookupAccount(r.user)) === undefined) return { ok: false, reason: 'unknown-user', message: 'no Linux account of that name' };
      return { ok: false, reason: 'unavailable', message: pam };
    }
    const outcome = await this.#slowly(() => pamAuthenticate(pam, this.#pamService, r.user, r.password, r.clientAddress));
    if (outcome === undefined) return { ok: false, reason: 'throttled', message: 'too many logons are waiting for PAM' };
    if (!outcome.ok) {
      const exists = more ? (await lookupAccount(r.user)) !== undefined : true;
      return { ok: false, reason: exists ? 'bad-credentials' : 'unknown-user', message: outcome.message };
    }
    const identity = await lookupAccount(r.user);
    if (identity === undefined) return { ok: false, reason: 'unavailable', message: `PAM accepted ${r.user}, but NSS knows no such account (id ${r.user})` };
    return this.#validToday(identity);
  }

  /** A Linux account's logon, refused (401.1, the log says why) when the account or its password expired. */
  async #validToday(identity: Identity): Promise<CredentialResult> {
    let problem: string | undefined;
    try {
      problem = await accountExpiryProblem(identity.name, (this.#o.now ?? Date.now)());
    } catch (err) {
      return { ok: false, reason: 'unavailable', message: (err as Error).message };
    }
    return problem === undefined ? { ok: true, identity } : { ok: false, reason: 'bad-credentials', message: problem };
  }

  async #wharfPassword(r: CredentialRequest & { kind: 'password' }): Promise<CredentialResult> {
    const user = this.#users.find(r.user);
    const verified = await this.#slowly(async () => {
      if (user !== undefined) return verifyPassword(user.hash, r.password);
      this.#decoy ??= hashPassword('decoy password for unknown users');
      await verifyPassword(await this.#decoy, r.password);
      return false;
    });
    if (verified === undefined) return { ok: false, reason: 'throttled', message: 'too many logons are waiting to be checked' };
    if (user === undefined) return { ok: false, reason: 'unknown-user', message: 'no Wharf user has that name' };
    if (!verified) return { ok: false, reason: 'bad-credentials', message: 'wrong password' };
    return { ok: true, identity: wharfIdentity(user.name) };
  }

  async #digest(r: CredentialRequest & { kind: 'digest' }): Promise<CredentialResult> {
    const problem = digestProblem(r);
    if (problem !== undefined) return { ok: false, reason: 'bad-credentials', message: problem };
    const user = this.#users.find(r.user);
    if (user === undefined) return { ok: false, reason: 'unknown-user', message: 'no Wharf user has that name (Digest checks Wharf users only)' };
    const password = this.#users.password(user);
    if (password === undefined) {
      const message = `SEC_USER_STORE: the stored password of Wharf user ${logText(user.name)} does not decrypt with the machine key; add the user again`;
      this.#o.log('error', message);
      return { ok: false, reason: 'unavailable', message };
    }
    if (!digestMatches(r, password)) return { ok: false, reason: 'bad-credentials', message: `the ${r.algorithm} response does not match` };
    return { ok: true, identity: wharfIdentity(user.name) };
  }

  async #account(providers: readonly CredentialProvider[], name: string): Promise<CredentialResult> {
    const key = this.#cache.key(['account', providers.join(','), name]);
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    for (const provider of providers) {
      let result: CredentialResult | undefined;
      if (provider === 'wharf') {
        const u = this.#users.find(name);
        result = u === undefined ? undefined : { ok: true, identity: wharfIdentity(u.name) };
      } else {
        let identity: Identity | undefined;
        try {
          identity = await lookupAccount(name);
        } catch (err) {
          return { ok: false, reason: 'unavailable', message: (err as Error).message };
        }
        // An expired account the administrator named is refused too: it decides, not a Wharf user of the same name.
        result = identity === undefined ? undefined : await this.#validToday(identity);
      }
      if (result !== undefined) {
        if (result.ok) this.#cache.set(key, result);
        return result;
      }
    }
    return { ok: false, reason: 'unknown-user', message: `no account ${logText(name)} (${providers.join(', ')})` };
  }

  /** Run `fn` when a thread-pool slot is free; undefined at once when too many already wait. */
  async #slowly<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.#slow >= MAX_SLOW_CHECKS) {
      if (this.#waiting.length >= MAX_WAITING_CHECKS) return undefined;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#slow++;
    }
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter, or is given back.
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#slow--;
    }
  }
}

/** A Wharf user has no Linux account: uid and gid -1, no groups (file rights are the pool's). */
function wharfIdentity(name: string): Identity {
  return { name, provider: 'wharf', uid: -1, gid: -1, groups: [] };
}

