/**
 * Automatic certificates (Caddy's best feature, beyond IIS): the renewal manager the main process
 * runs once `wharf centralcert acme` has been configured. For every host name the integrator says
 * is wanted (https bindings with a host name and sslFlags 2: setWantedHosts), whose Central
 * Certificate Store file is missing, unreadable, or in its renewal window, it orders a certificate
 * from the ACME directory with acme-client, answers the CA's challenge through the listener, and
 * writes `<store>/<host>.pfx` with the store's password. Serving never waits for it: a valid file
 * is served at once, renewal happens beside it.
 *
 * Challenges: HTTP-01 (RFC 8555 §8.3; httpChallenge, answered on the host's http binding before any
 * pool) when the host has an http binding on the port the CA's port-80 requests arrive on (80, or
 * `--http-port`), else TLS-ALPN-01 (RFC 8737; alpnChallenge, a self-signed certificate with the
 * acmeIdentifier extension the listener presents to a ClientHello that offers only `acme-tls/1`
 * for that name, on the https binding the CA's port-443 connections arrive on). The other type is
 * kept as the second choice, in case the CA does not offer the first.
 *
 * Failures back off exponentially per host (1 min doubling to 24 h by default), and the backoff is
 * written to disk *before* each attempt, so neither a failure nor a crash in the middle of one
 * lets a restart loop ask the CA again early (the rate-limit exhaustion certbot and Caddy users
 * meet). Every step is logged.
 */
import { generateKeyPairSync, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { TlsError } from '../errors.js';
import { certificatesFromPem } from './certificate-file.js';
import type { CertificateSource } from './certificate-source.js';
import { isCentralStoreHost, type CentralStoreSettings } from './central-store.js';
import { writePkcs12 } from './pkcs12.js';
import { ensureDirectory, writeFileAtomic } from './secure-file.js';
import { tlsPaths } from './tls-paths.js';
import type { TlsLogger } from './tls-types.js';

const DAY_MS = 86_400_000;

export interface AcmeManagerOptions {
  readonly systemDrive: string;
  readonly logger: TlsLogger;
  /** Where the Central Certificate Store's settings and files are read (and reloaded after a write). */
  readonly source: CertificateSource;
  /** The clock (tests move it). */
  readonly now?: () => number;
  /** First backoff after a failure (default 60 s); doubles per failure. */
  readonly backoffBaseMs?: number;
  /** Longest backoff (default 24 h). */
  readonly backoffMaxMs?: number;
  /** Longest sleep between two looks at the hosts (default 1 h). */
  readonly checkIntervalMs?: number;
}

/** Per host, what the last attempts did (persisted in <systemDrive>/wharf/acme/state.json). */
export interface AcmeHostState {
  /** Failed (or interrupted) attempts in a row. */
  readonly failures: number;
  /** No attempt before this time (ms since the epoch). */
  readonly nextAttemptAt: number;
  readonly lastError?: string | undefined;
  readonly lastAttemptAt?: number | undefined;
}

interface StateFile {
  readonly version: 1;
  readonly hosts: Record<string, AcmeHostState>;
}

interface AccountFile {
  readonly version: 1;
  /** By directory URL. */
  readonly accounts: Record<string, { readonly email: string; readonly keyPem: string; readonly url?: string | undefined }>;
}

/** A wanted host and the bindings that answer it (which challenge the CA can reach). */
export interface AcmeWantedHost {
  readonly host: string;
  /** Ports of the http bindings whose host name is this one, a wildcard covering it, or empty. */
  readonly httpPorts: readonly number[];
  /** Ports of the https bindings that answer it. */
  readonly httpsPorts: readonly number[];
}

/** What the listener presents for TLS-ALPN-01 (RFC 8737 §3): PEM key and self-signed certificate. */
export interface AlpnChallengeCertificate {
  readonly keyPem: string;
  readonly certPem: string;
}

/** The ALPN protocol name of TLS-ALPN-01 (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = 'acme-tls/1';

type ChallengeType = 'http-01' | 'tls-alpn-01';

function normalHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** When a certificate is renewed: a third of its lifetime before it ends, and at least 30 days before for long ones. */
export function renewalTime(leaf: X509Certificate): number {
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  return to - Math.min(30 * DAY_MS, (to - from) / 3);
}

type AcmeModule = typeof import('acme-client');

export class AcmeManager {
  readonly #o: Required<Omit<AcmeManagerOptions, 'source' | 'logger' | 'systemDrive'>>;
  readonly #log: TlsLogger;
  readonly #source: CertificateSource;
  readonly #stateFile: string;
  readonly #accountFile: string;
  readonly #folder: string;
  /** Host → the bindings that answer it (undefined: not known, HTTP-01 first). */
  #wanted = new Map<string, AcmeWantedHost | undefined>();
  #wantedKey = '';
  #state: Record<string, AcmeHostState> = {};
  /** `host\0token` → key authorization, while a challenge is pending. */
  readonly #challenges = new Map<string, string>();
  /** Host → the TLS-ALPN-01 certificate, while a challenge is pending. */
  readonly #alpn = new Map<string, AlpnChallengeCertificate>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #acme: AcmeModule | undefined;
  #agentCa: string | undefined;
  /** Messages logged once per settings problem. */
  #said = new Set<string>();

  private constructor(options: AcmeManagerOptions) {
    this.#o = {
      now: options.now ?? Date.now,
      backoffBaseMs: options.backoffBaseMs ?? 60_000,
      backoffMaxMs: options.backoffMaxMs ?? DAY_MS,
      checkIntervalMs: options.checkIntervalMs ?? 3_600_000,
    };
    this.#log = options.logger;
    this.#source = options.source;
    const base = tlsPaths(options.systemDrive).base;
    this.#folder = join(base, 'acme');
    this.#stateFile = join(this.#folder, 'state.json');
    this.#accountFile = join(this.#folder, 'account.json');
    try {
      const data = JSON.parse(readFileSync(this.#stateFile, 'utf8')) as Partial<StateFile>;
      if (data.version === 1 && typeof data.hosts === 'object' && data.hosts !== null) this.#state = { ...data.hosts };
    } catch {
      // no state yet (or damaged: start over, which at worst costs one early attempt per host)
    }
  }

  /** Starts the manager; it looks at the wanted hosts now and whenever the store or the settings change. */
  static start(options: AcmeManagerOptions): AcmeManager {
    const m = new AcmeManager(options);
    options.source.onChange(() => m.#kick());
    m.#kick();
    return m;
  }

  /**
   * The host names of https bindings with sslFlags 2 (the integrator calls this on every
   * configuration change), with the ports of the bindings that answer them when known (a bare
   * name: HTTP-01 is tried first).
   */
  setWantedHosts(hosts: ReadonlyArray<string | AcmeWantedHost>): void {
    const next = new Map<string, AcmeWantedHost | undefined>();
    for (const h of hosts) {
      const name = normalHost(typeof h === 'string' ? h : h.host);
      if (!isCentralStoreHost(name)) continue;
      const had = next.get(name);
      if (typeof h === 'string') {
        if (!next.has(name)) next.set(name, undefined);
        continue;
      }
      next.set(name, {
        host: name,
        httpPorts: [...new Set([...(had?.httpPorts ?? []), ...h.httpPorts])].sort((a, b) => a - b),
        httpsPorts: [...new Set([...(had?.httpsPorts ?? []), ...h.httpsPorts])].sort((a, b) => a - b),
      });
    }
    const sorted = new Map([...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const key = JSON.stringify([...sorted]);
    if (key === this.#wantedKey) return;
    this.#wantedKey = key;
    this.#wanted = sorted;
    this.#kick();
  }

  /** The key authorization to answer `GET /.well-known/acme-challenge/<token>` on `host` with (RFC 8555 §8.3), or undefined. */
  httpChallenge(host: string, token: string): string | undefined {
    return this.#challenges.get(`${normalHost(host).replace(/:\d+$/, '')}\0${token}`);
  }

  /**
   * TLS-ALPN-01 (RFC 8737): while a challenge for `host` is pending, the key and self-signed
   * certificate (acmeIdentifier extension) to present to a ClientHello whose SNI is `host` and
   * whose ALPN list offers `acme-tls/1`, selecting `acme-tls/1`; undefined otherwise.
   */
  alpnChallenge(host: string): AlpnChallengeCertificate | undefined {
    return this.#alpn.get(normalHost(host));
  }

  /** Whether a TLS-ALPN-01 challenge is pending for any host. */
  get alpnPending(): boolean {
    return this.#alpn.size !== 0;
  }

  /** What the manager knows per host (for status output and tests). */
  hostState(host: string): AcmeHostState | undefined {
    return this.#state[host.toLowerCase()];
  }

  /** Looks at every wanted host now; resolves when the pass (and any it asked for) is over. */
  check(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#pass();
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  #kick(): void {
    if (this.#closed) return;
    void this.check().catch((err: unknown) => this.#log.error(`ACME: ${(err as Error).stack ?? String(err)}`));
  }

  #once(message: string): void {
    if (this.#said.has(message)) return;
    this.#said.add(message);
    this.#log.warn(message);
  }

  async #pass(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const settings = this.#source.centralStoreSettings();
    if (this.#wanted.size === 0 || settings?.acme === undefined) return;
    if (!settings.enabled) {
      this.#once(`ACME: the Central Certificate Store is disabled; no certificate is ordered for ${[...this.#wanted.keys()].join(', ')} (wharf centralcert enable)`);
      return;
    }
    if (!settings.acme.acceptedTos) {
      this.#once('ACME: the terms of service were not accepted (wharf centralcert acme … --accept-tos); no certificate is ordered');
      return;
    }
    let next = this.#o.now() + this.#o.checkIntervalMs;
    for (const host of [...this.#wanted.keys()]) {
      if (this.#closed) return;
      const now = this.#o.now();
      const lookup = this.#source.forCentralStore(host);
      if (lookup?.ok === true) {
        const renewAt = renewalTime(lookup.cert.leaf);
        if (now < renewAt) {
          next = Math.min(next, renewAt);
          continue;
        }
      }
      const state = this.#state[host];
      if (state !== undefined && now < state.nextAttemptAt) {
        if (!this.#said.has(`wait ${host} ${state.nextAttemptAt}`)) {
          this.#said.add(`wait ${host} ${state.nextAttemptAt}`);
          this.#log.info(`ACME: ${host}: waiting until ${new Date(state.nextAttemptAt).toISOString()} before the next attempt (${state.failures} failed in a row; last: ${state.lastError ?? 'interrupted'})`);
        }
        next = Math.min(next, state.nextAttemptAt);
        continue;
      }
      const why = lookup === undefined ? 'no Central Certificate Store' : lookup.ok ? `the certificate ${lookup.cert.thumbprint} expires on ${lookup.cert.leaf.validTo}` : lookup.error.message;
      await this.#attempt(host, settings, why);
      next = Math.min(next, this.#state[host]?.nextAttemptAt ?? next);
    }
    this.#schedule(next);
  }

  #schedule(at: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const delay = Math.max(100, Math.min(at - this.#o.now(), 2_147_483_647));
    this.#timer = setTimeout(() => this.#kick(), delay);
    this.#timer.unref();
  }

  #saveState(): void {
    ensureDirectory(this.#folder, 0o700);
    const file: StateFile = { version: 1, hosts: this.#state };
    writeFileAtomic(this.#stateFile, JSON.stringify(file, null, 2) + '\n', 0o600);
  }

  #backoff(failures: number): number {
    return Math.min(this.#o.backoffMaxMs, this.#o.backoffBaseMs * 2 ** Math.max(0, failures - 1));
  }

  async #attempt(host: string, settings: CentralStoreSettings, why: string): Promise<void> {
    const acmeSettings = settings.acme!;
    const now = this.#o.now();
    const failures = (this.#state[host]?.failures ?? 0) + 1;
    // Written before the attempt: a crash or a restart during it still counts as a failure.
    this.#state[host] = { failures, nextAttemptAt: now + this.#backoff(failures), lastAttemptAt: now, lastError: 'interrupted' };
    this.#saveState();
    this.#log.info(`ACME: ${host}: ordering a certificate from ${acmeSettings.directory} (${why})`);
    try {
      const file = await this.#order(host, settings);
      delete this.#state[host];
      this.#saveState();
      this.#said.clear();
      await this.#source.reload();
      this.#log.info(`ACME: ${host}: certificate written to ${file}`);
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      this.#state[host] = { ...this.#state[host]!, lastError: message };
      this.#saveState();
      const failure = new TlsError('TLS_ACME_ORDER', `the order failed (attempt ${failures} in a row): ${message}; next attempt not before ${new Date(this.#state[host]!.nextAttemptAt).toISOString()}`, { cause: err });
      this.#log.error(`ACME: ${host}: ${failure.code}: ${failure.message}`);
    }
  }

  async #client(settings: CentralStoreSettings): Promise<{ acme: AcmeModule; client: InstanceType<AcmeModule['Client']>; save: () => void }> {
    const a = settings.acme!;
    this.#acme ??= (await import('acme-client')).default as unknown as AcmeModule;
    const acme = this.#acme;
    // A private CA's directory (step-ca, Pebble) is reached over https signed by its own root.
    if (a.directoryCa !== this.#agentCa) {
      this.#agentCa = a.directoryCa;
      acme.axios.defaults.httpsAgent = a.directoryCa === undefined ? undefined : new Agent({ ca: [...rootCertificates, readFileSync(a.directoryCa, 'utf8')] });
    }
    let accounts: AccountFile = { version: 1, accounts: {} };
    try {
      accounts = JSON.parse(readFileSync(this.#accountFile, 'utf8')) as AccountFile;
    } catch {
      // first order
    }
    let account = accounts.accounts[a.directory];
    if (account === undefined || account.email !== a.email) {
      const keyPem = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      account = { email: a.email, keyPem };
      this.#log.info(`ACME: new account key for ${a.directory} (${a.email})`);
    }
    const client = new acme.Client({
      directoryUrl: a.directory,
      accountKey: account.keyPem,
      ...(account.url !== undefined ? { accountUrl: account.url } : {}),
      // Polling of orders and challenges: from half a second, at most ten times.
      backoffAttempts: 10,
      backoffMin: 500,
      backoffMax: 10_000,
    });
    const known = account;
    const save = (): void => {
      let url: string | undefined;
      try {
        url = client.getAccountUrl();
      } catch {
        return; // no account made
      }
      if (url === known.url) return;
      ensureDirectory(this.#folder, 0o700);
      const file: AccountFile = { version: 1, accounts: { ...accounts.accounts, [a.directory]: { ...known, url } } };
      writeFileAtomic(this.#accountFile, JSON.stringify(file, null, 2) + '\n', 0o600);
      this.#log.info(`ACME: account ${url}`);
    };
    return { acme, client, save };
  }

  /**
   * Which challenge first: HTTP-01 when an http binding answers the host on the port the CA's
   * HTTP-01 requests arrive on, TLS-ALPN-01 when only an https binding is on the TLS-ALPN-01 port.
   */
  #challengeOrder(host: string, settings: CentralStoreSettings): ChallengeType[] {
    const a = settings.acme!;
    const httpPort = a.httpPort ?? 80;
    const tlsPort = a.tlsPort ?? 443;
    const w = this.#wanted.get(host);
    if (w === undefined || w.httpPorts.includes(httpPort)) return ['http-01', 'tls-alpn-01'];
    if (w.httpsPorts.includes(tlsPort)) return ['tls-alpn-01', 'http-01'];
    this.#once(
      `ACME: ${host}: no http binding on port ${httpPort} and no https binding on port ${tlsPort} answer this name, so the CA's validation can only reach Wharf through a forward; ` +
        `trying http-01 (add an http binding for ${host} on port ${httpPort}, or set the ports the CA's connections arrive on with wharf centralcert acme --http-port/--tls-port)`,
    );
    return ['http-01', 'tls-alpn-01'];
  }

  async #order(host: string, settings: CentralStoreSettings): Promise<string> {
    const a = settings.acme!;
    const { acme, client, save } = await this.#client(settings);
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const [, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, key.export({ format: 'pem', type: 'pkcs8' }) as string);
    const pending: string[] = [];
    const pendingAlpn: string[] = [];
    const priority = this.#challengeOrder(host, settings);
    let pem: string;
    try {
      pem = await client.auto({
        csr,
        email: a.email,
        termsOfServiceAgreed: a.acceptedTos,
        challengePriority: priority,
        // The CA checks; a self-check from here would need the public DNS and route, which a server behind NAT lacks.
        skipChallengeVerification: true,
        challengeCreateFn: async (authz, challenge, keyAuthorization) => {
          const name = normalHost(authz.identifier.value);
          if (challenge.type === 'http-01') {
            const k = `${name}\0${challenge.token}`;
            this.#challenges.set(k, keyAuthorization);
            pending.push(k);
            this.#log.info(`ACME: ${host}: answering the http-01 challenge at http://${name}/.well-known/acme-challenge/${challenge.token} (the CA connects to port 80; here ${a.httpPort ?? 80})`);
            return;
          }
          // acme-client's types list http-01 and dns-01 only; it hands over tls-alpn-01 as well.
          const type: string = challenge.type;
          if (type === 'tls-alpn-01') {
            const alpnKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
            const [, certPem] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
            this.#alpn.set(name, { keyPem: alpnKey, certPem: certPem.toString() });
            pendingAlpn.push(name);
            this.#log.info(`ACME: ${host}: answering the tls-alpn-01 challenge for ${name} with ALPN ${ACME_TLS_ALPN} (the CA connects to port 443; here ${a.tlsPort ?? 443})`);
            return;
          }
          throw new Error(`challenge ${type} offered; Wharf answers http-01 and tls-alpn-01`);
        },
        challengeRemoveFn: async (authz, challenge) => {
          const name = normalHost(authz.identifier.value);
          if (challenge.type === 'http-01') this.#challenges.delete(`${name}\0${challenge.token}`);
          else if ((challenge.type as string) === 'tls-alpn-01') this.#alpn.delete(name);
        },
      });
    } finally {
      save();
      for (const k of pending) this.#challenges.delete(k);
      for (const k of pendingAlpn) this.#alpn.delete(k);
    }
    const chain = certificatesFromPem(pem);
    const leaf = chain[0];
    if (leaf === undefined) throw new TlsError('TLS_FORMAT', `the CA sent no certificate for ${host}`);
    if (!leaf.checkPrivateKey(createPrivateKey(key.export({ format: 'pem', type: 'pkcs8' }) as string))) {
      throw new TlsError('TLS_KEY_MISMATCH', `the CA's certificate for ${host} is not for the key that was sent`);
    }
    const file = join(settings.physicalPath, `${host}.pfx`);
    writeFileAtomic(file, writePkcs12({ key, certificates: chain.map((c) => c.raw), password: settings.privateKeyPassword, friendlyName: `${host} (ACME)` }), 0o600);
    this.#log.info(`ACME: ${host}: issued by ${leaf.issuer.replace(/\n/g, ', ')}, valid until ${leaf.validTo}, serial ${leaf.serialNumber}`);
    return file;
  }
}
