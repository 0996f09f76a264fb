/**
 * What the listener asks for certificates: the SSL bindings table (ipport, hostnameport), the
 * Central Certificate Store, the development certificate. Everything is read ahead into memory so
 * that a lookup is a Map access (an SNI callback must not touch the disk), and read again when a
 * file changes: fs.watch on the folders involved, and a periodic stat of every file as a backstop
 * (watches miss changes on some file systems, and in folders created later). Listeners registered
 * with onChange() are called, debounced, after a reload that changed an answer.
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { webcrypto, type X509Certificate } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { rootCertificates } from 'node:tls';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { TlsError, type WharfError } from '../errors.js';
import { materialOf, parseCertificateData, validityOf } from './certificate-file.js';
import { CertificateStore, TRUST_STORES } from './certificate-store.js';
import { CentralStoreConfig, centralStoreFileNames, isCentralStoreHost, type CentralStoreSettings } from './central-store.js';
import { developmentCertificate } from './development-certificate.js';
import { SslBindingTable } from './ssl-bindings.js';
import { tlsPaths } from './tls-paths.js';
import type { CertificateLookup, CertificateMaterial, SslBindingEntry, TlsLogger } from './tls-types.js';

export interface CertificateSourceOptions {
  readonly systemDrive: string;
  readonly logger: TlsLogger;
  /** How often every file is stat'ed as a backstop to fs.watch (default 2000 ms). */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change event before reloading (default 100 ms): a copy of many files is one reload. */
  readonly debounceMs?: number;
}

interface RevocationList {
  /** The issuer's name as @peculiar/x509 prints it (compared with a certificate's issuer printed the same way). */
  readonly issuer: string;
  readonly crl: import('@peculiar/x509').X509Crl;
  /** Path and stat signature (a change of either is a change of the answers). */
  readonly file: string;
}

interface CentralFile {
  readonly signature: string;
  readonly lookup: CertificateLookup;
}

interface CentralState {
  readonly settings: CentralStoreSettings;
  /** Lower-case file name → its certificate (or why it cannot be used). */
  readonly files: ReadonlyMap<string, CentralFile>;
}

/** A file's identity for change detection: inode, size, modification time. */
function fileSignature(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '-';
  }
}

/**
 * The operating system's CA bundle (what update-ca-certificates maintains: Linux's counterpart of
 * the machine's "Trusted Root Certification Authorities"), else Node's bundled Mozilla roots. Read
 * once: a change to it applies at the next start.
 */
function systemCaBundle(): string {
  for (const file of ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem']) {
    try {
      const text = readFileSync(file, 'utf8');
      if (text.includes('-----BEGIN CERTIFICATE-----')) return text;
    } catch {
      // not this distribution's path
    }
  }
  return rootCertificates.join('\n');
}

function mapKey(host: string, port: number): string {
  return `${host}|${port}`;
}

function describeLookup(l: CertificateLookup | undefined): string {
  if (l === undefined) return '';
  return l.ok ? l.cert.thumbprint : `!${l.error.code}:${l.error.message}`;
}

export class CertificateSource {
  readonly #systemDrive: string;
  readonly #log: TlsLogger;
  readonly #store: CertificateStore;
  readonly #table: SslBindingTable;
  readonly #centralConfig: CentralStoreConfig;
  readonly #pollMs: number;
  readonly #debounceMs: number;
  readonly #listeners: Array<() => void> = [];

  #entries: readonly SslBindingEntry[] = [];
  #ipport = new Map<string, CertificateLookup>();
  #hostnameport = new Map<string, CertificateLookup>();
  #central: CentralState | undefined;
  /** Revocation lists of the trust stores (isRevoked). */
  #crls: readonly RevocationList[] = [];
  /** @peculiar/x509, loaded when there is a revocation list to read. */
  #x509: typeof import('@peculiar/x509') | undefined;
  /** The system's CA bundle, then every certificate of the trust stores (Root, CA), as PEM. */
  #trusted: readonly string[] = [];
  #systemBundle: string | undefined;
  #settings: CentralStoreSettings | undefined;
  /** What every answer was after the last reload: a change of it calls the listeners. */
  #answers = '';
  /** The stat signature of every file the last reload read. */
  #filesSignature = '';
  /** Problems already logged (each once, until it goes away). */
  #reported = new Set<string>();

  #watchers = new Map<string, FSWatcher>();
  #pollTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  #closed = false;
  #development: Promise<CertificateMaterial> | undefined;

  private constructor(options: CertificateSourceOptions) {
    this.#systemDrive = options.systemDrive;
    this.#log = options.logger;
    this.#store = new CertificateStore(options.systemDrive);
    this.#table = new SslBindingTable(options.systemDrive);
    this.#centralConfig = new CentralStoreConfig(options.systemDrive);
    this.#pollMs = options.pollIntervalMs ?? 2000;
    this.#debounceMs = options.debounceMs ?? 100;
  }

  /** Reads the table, the store and the Central Certificate Store, then watches them. */
  static async open(options: CertificateSourceOptions): Promise<CertificateSource> {
    const source = new CertificateSource(options);
    await source.reload();
    source.#pollTimer = setInterval(() => source.#poll(), source.#pollMs);
    source.#pollTimer.unref();
    return source;
  }

  /** netsh ipport entry for ip:port: the exact address first, then the wildcard of its family, then the other wildcard. */
  forIpPort(ip: string, port: number): CertificateLookup | undefined {
    let addr = ip;
    if (addr.startsWith('::ffff:') && isIPv4(addr.slice(7))) addr = addr.slice(7);
    else if (addr.startsWith('[')) addr = addr.slice(1, -1);
    const v4 = isIPv4(addr);
    return (
      this.#ipport.get(mapKey(v4 ? addr : addr.toLowerCase(), port)) ??
      this.#ipport.get(mapKey(v4 ? '0.0.0.0' : '::', port)) ??
      this.#ipport.get(mapKey(v4 ? '::' : '0.0.0.0', port))
    );
  }

  /** netsh hostnameport entry (SNI, sslFlags 1): the exact name, then a `*.parent` entry. */
  forHostnamePort(host: string, port: number): CertificateLookup | undefined {
    const h = host.toLowerCase().replace(/\.$/, '');
    const exact = this.#hostnameport.get(mapKey(h, port));
    if (exact !== undefined) return exact;
    const dot = h.indexOf('.');
    return dot > 0 ? this.#hostnameport.get(mapKey(`*${h.slice(dot)}`, port)) : undefined;
  }

  /** Central Certificate Store (sslFlags 2): host.pfx, else _.parent.pfx; undefined when the store is disabled. */
  forCentralStore(host: string): CertificateLookup | undefined {
    const central = this.#central;
    if (central === undefined) return undefined;
    const dir = central.settings.physicalPath;
    if (!isCentralStoreHost(host)) {
      return { ok: false, error: new TlsError('TLS_CCS_NO_FILE', `Central Certificate Store ${dir}: "${host}" is not a host name (a certificate file is looked up by the name the client sent)`) };
    }
    const names = centralStoreFileNames(host);
    for (const name of names) {
      const file = central.files.get(name);
      if (file !== undefined) return file.lookup;
    }
    return {
      ok: false,
      error: new TlsError('TLS_CCS_NO_FILE', `Central Certificate Store: no certificate for ${host.toLowerCase()} (looked for ${names.map((n) => join(dir, n)).join(' and ')})`),
    };
  }

  /** The development certificate ("Wharf Development Certificate", CN=localhost), made on first use and reused. */
  developmentCertificate(): Promise<CertificateMaterial> {
    const current = this.#development;
    if (current !== undefined) {
      // Reused while it has more than 30 days left; past that the next call makes a new one.
      return current.then(
        (m) => (Date.parse(m.leaf.validTo) - Date.now() > 30 * 86_400_000 ? m : this.#makeDevelopment()),
        () => this.#makeDevelopment(),
      );
    }
    return this.#makeDevelopment();
  }

  #makeDevelopment(): Promise<CertificateMaterial> {
    const inUse = (thumbprint: string): boolean => this.#entries.some((e) => e.certhash === thumbprint);
    this.#development = developmentCertificate(this.#store, { logger: this.#log, inUse });
    return this.#development;
  }

  /**
   * Whom client certificates may come from, as PEM: the system's CA bundle, then the certificates
   * of the trust stores (Root, CA); the same array until they change.
   */
  trustedCertificates(): readonly string[] {
    return this.#trusted;
  }

  /**
   * Whether a client certificate (DER) is listed as revoked by a revocation list of its issuer:
   * a `.crl` file in the Root or CA store, signed by a certificate of those stores.
   */
  isRevoked(der: Buffer): boolean {
    const x509 = this.#x509;
    if (this.#crls.length === 0 || x509 === undefined) return false;
    let cert: import('@peculiar/x509').X509Certificate;
    try {
      cert = new x509.X509Certificate(der as Buffer<ArrayBuffer>);
    } catch {
      return false; // OpenSSL has judged it already; nothing to look up
    }
    for (const l of this.#crls) if (l.issuer === cert.issuer && l.crl.findRevoked(cert.serialNumber) !== null) return true;
    return false;
  }

  /** Called (debounced) whenever a lookup above may answer differently. */
  onChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  /** The SSL bindings table as last read. */
  bindings(): readonly SslBindingEntry[] {
    return this.#entries;
  }

  /** The Central Certificate Store settings as last read (undefined: never configured). */
  centralStoreSettings(): CentralStoreSettings | undefined {
    return this.#settings;
  }

  close(): void {
    this.#closed = true;
    if (this.#pollTimer !== undefined) clearInterval(this.#pollTimer);
    if (this.#debounceTimer !== undefined) clearTimeout(this.#debounceTimer);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
  }

  /** Reads everything again now (serialised: a reload asked for during one runs after it). */
  reload(): Promise<void> {
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#reloadAgain = false;
          await this.#load();
        } while (this.#reloadAgain && !this.#closed);
      } finally {
        this.#reloading = undefined;
      }
    })();
    return this.#reloading;
  }

  // ---- reading ------------------------------------------------------------------------------

  /** Logs a problem once (until it is gone and comes back). */
  #report(seen: Set<string>, level: 'warn' | 'error', message: string): void {
    seen.add(message);
    if (!this.#reported.has(message)) this.#log[level](message);
  }

  async #load(): Promise<void> {
    // The files as the previous reload knew them, before anything is read: one that changes while
    // this reload reads (a `wharf centralcert enable` a moment after an `sslcert add`) may have
    // been read before its change, so the reload runs again (#reloadAgain) rather than take the
    // new signature as seen and leave the change to the once-a-minute full reload.
    const oldEntries = this.#entries;
    const oldSettings = this.#settings;
    const before = this.#computeFilesSignature(oldEntries, oldSettings);
    const seen = new Set<string>();
    // 1. The table; a damaged file keeps the last good table in use.
    let entries = this.#entries;
    try {
      entries = this.#table.read();
    } catch (err) {
      this.#report(seen, 'error', `SSL bindings table: ${(err as Error).message}; the previous table stays in use`);
    }
    const ipport = new Map<string, CertificateLookup>();
    const hostnameport = new Map<string, CertificateLookup>();
    const now = Date.now();
    for (const entry of entries) {
      const lookup = this.#lookupEntry(entry, now, seen);
      (entry.kind === 'ipport' ? ipport : hostnameport).set(mapKey(entry.host, entry.port), lookup);
    }
    // 2. The Central Certificate Store.
    let settings = this.#settings;
    try {
      settings = this.#centralConfig.read();
    } catch (err) {
      this.#report(seen, 'error', `Central Certificate Store settings: ${(err as Error).message}; the previous settings stay in use`);
    }
    const central = settings?.enabled === true ? await this.#loadCentral(settings, now, seen) : undefined;
    // 3. The trust stores.
    this.#systemBundle ??= systemCaBundle();
    const trusted: string[] = [this.#systemBundle];
    const trustedIds: string[] = [];
    const trustedCerts: X509Certificate[] = [];
    for (const name of TRUST_STORES) {
      try {
        const { certificates, broken } = this.#store.list(name);
        for (const c of certificates) {
          trustedIds.push(c.thumbprint);
          for (const x of c.chain) trusted.push(x.toString());
          trustedCerts.push(c.leaf);
        }
        for (const b of broken) this.#report(seen, 'warn', `trust store ${name}: ${b.file}: ${b.problem}; not trusted`);
      } catch (err) {
        this.#report(seen, 'error', `trust store ${name}: ${(err as Error).message}`);
      }
    }
    // 4. Revocation lists beside them.
    const crls = await this.#loadRevocationLists(trustedCerts, now, seen);
    if (this.#closed) return;

    this.#entries = entries;
    this.#ipport = ipport;
    this.#hostnameport = hostnameport;
    this.#settings = settings;
    this.#central = central;
    if (trusted.join('') !== this.#trusted.join('')) this.#trusted = trusted;
    this.#crls = crls;
    this.#reported = seen;
    this.#filesSignature = this.#computeFilesSignature();
    if (this.#computeFilesSignature(oldEntries, oldSettings) !== before) this.#reloadAgain = true;
    this.#watchFolders();

    const answers = [
      ...[...ipport].map(([k, l]) => `i${k}=${describeLookup(l)}`),
      ...[...hostnameport].map(([k, l]) => `h${k}=${describeLookup(l)}`),
      central === undefined ? 'ccs-off' : `ccs=${central.settings.physicalPath}`,
      // ACME settings answer no lookup, but the renewal manager listens for their changes too.
      `acme=${JSON.stringify(settings?.acme ?? null)}`,
      ...[...(central?.files ?? [])].map(([k, f]) => `c${k}=${describeLookup(f.lookup)}`),
      `trusted=${trustedIds.join(',')}`,
      `crls=${crls.map((c) => c.file).join(',')}`,
    ].join('\n');
    const changed = answers !== this.#answers;
    const first = this.#answers === '';
    this.#answers = answers;
    if (changed && !first) {
      this.#log.info(`certificates reloaded: ${entries.length} SSL binding(s)${central !== undefined ? `, Central Certificate Store ${central.settings.physicalPath} with ${central.files.size} file(s)` : ''}`);
      for (const fn of this.#listeners) {
        try {
          fn();
        } catch (err) {
          this.#log.error(`a certificate change listener threw: ${(err as Error).stack ?? String(err)}`);
        }
      }
    }
  }

  #lookupEntry(entry: SslBindingEntry, now: number, seen: Set<string>): CertificateLookup {
    const name = `SSL binding ${entry.kind}=${entry.key}`;
    try {
      const cert = this.#store.material(entry.certstorename, entry.certhash);
      this.#warnValidity(name, cert, now, seen);
      return { ok: true, cert, binding: entry };
    } catch (err) {
      const e = err as WharfError;
      const error = e instanceof TlsError ? new TlsError(e.code, `${name}: ${e.message}`, { cause: e }) : new TlsError('TLS_FILE_READ', `${name}: ${String(err)}`, { cause: err });
      this.#report(seen, 'error', error.message);
      return { ok: false, error, binding: entry };
    }
  }

  /**
   * The `.crl` files (PEM or DER) of the trust stores whose signature a certificate of those stores
   * verifies. One that does not parse or verify is reported and not used; one past its nextUpdate
   * is used with a warning (Windows would call revocation "offline"; a stale list still names the
   * certificates revoked until then).
   */
  async #loadRevocationLists(issuers: readonly X509Certificate[], now: number, seen: Set<string>): Promise<RevocationList[]> {
    const files: Array<{ name: string; path: string }> = [];
    for (const name of TRUST_STORES) {
      const dir = this.#store.folder(name);
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.crl')).sort();
      } catch {
        // no such store yet
      }
      for (const n of names) files.push({ name, path: join(dir, n) });
    }
    if (files.length === 0) return [];
    const x509 = (this.#x509 ??= await import('@peculiar/x509'));
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    const out: RevocationList[] = [];
    for (const f of files) {
      try {
        const data = readFileSync(f.path);
        const crl = new x509.X509Crl(data.includes('-----BEGIN') ? data.toString('latin1') : data);
        let signedBy: X509Certificate | undefined;
        for (const ca of issuers) {
          if (new x509.X509Certificate(ca.raw).subject !== crl.issuer) continue;
          if (await crl.verify({ publicKey: new x509.X509Certificate(ca.raw) })) {
            signedBy = ca;
            break;
          }
        }
        if (signedBy === undefined) {
          this.#report(seen, 'warn', `trust store ${f.name}: ${f.path}: the revocation list of ${crl.issuer} is not signed by a certificate of the Root or CA store; not used`);
          continue;
        }
        if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now) {
          this.#report(seen, 'warn', `trust store ${f.name}: ${f.path}: the revocation list of ${crl.issuer} was due to be replaced on ${crl.nextUpdate.toISOString()}; used all the same`);
        }
        out.push({ issuer: crl.issuer, crl, file: `${f.path}@${fileSignature(f.path)}` });
      } catch (err) {
        this.#report(seen, 'warn', `trust store ${f.name}: ${f.path}: not a certificate revocation list (${(err as Error).message}); not used`);
      }
    }
    return out;
  }

  #warnValidity(name: string, cert: CertificateMaterial, now: number, seen: Set<string>): void {
    const v = validityOf(cert.leaf, now);
    if (v !== 'valid') {
      this.#report(seen, 'warn', `TLS_EXPIRED: ${name}: the certificate ${cert.thumbprint} (${cert.source}) ${v === 'expired' ? `expired on ${cert.leaf.validTo}` : `is not valid before ${cert.leaf.validFrom}`}; it is served all the same`);
    }
  }

  async #loadCentral(settings: CentralStoreSettings, now: number, seen: Set<string>): Promise<CentralState> {
    const dir = settings.physicalPath;
    const previous = this.#central?.settings.physicalPath === dir && this.#central.settings.privateKeyPassword === settings.privateKeyPassword ? this.#central.files : undefined;
    const files = new Map<string, CentralFile>();
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch (err) {
      this.#report(seen, 'error', `Central Certificate Store: cannot read the folder ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); no certificate can come from it`);
    }
    for (const name of names) {
      if (!name.toLowerCase().endsWith('.pfx')) continue;
      const key = name.toLowerCase();
      const path = join(dir, name);
      const signature = fileSignature(path);
      const before = previous?.get(key);
      if (before !== undefined && before.signature === signature) {
        files.set(key, before);
        if (!before.lookup.ok) seen.add(before.lookup.error.message);
        continue;
      }
      files.set(key, { signature, lookup: this.#readCentralFile(path, settings.privateKeyPassword, now, seen) });
      await yieldToLoop(); // PFX decryption is CPU work: let connections through between files
    }
    return { settings, files };
  }

  #readCentralFile(path: string, password: string, now: number, seen: Set<string>): CertificateLookup {
    const name = `Central Certificate Store file ${path}`;
    try {
      const bundle = parseCertificateData(readFileSync(path), path, { password });
      const cert = materialOf(bundle, path);
      this.#warnValidity(name, cert, now, seen);
      return { ok: true, cert };
    } catch (err) {
      const e = err instanceof TlsError ? err : new TlsError('TLS_FILE_READ', `${path}: ${(err as Error).message}`, { cause: err });
      const error = new TlsError(e.code, `${name}: ${e.message.startsWith(path) ? e.message.slice(path.length + 2) : e.message}`, { cause: e });
      this.#report(seen, 'error', error.message);
      return { ok: false, error };
    }
  }

  // ---- watching -----------------------------------------------------------------------------

  /** Folders whose content answers lookups. */
  #folders(): string[] {
    const paths = tlsPaths(this.#systemDrive);
    const folders = new Set<string>([paths.base, paths.http]);
    for (const e of this.#entries) folders.add(this.#store.folder(e.certstorename));
    for (const name of TRUST_STORES) folders.add(this.#store.folder(name));
    if (this.#settings?.enabled === true) folders.add(this.#settings.physicalPath);
    return [...folders];
  }

  /** Every file a reload reads, by stat: a difference means something changed. */
  #computeFilesSignature(entries: readonly SslBindingEntry[] = this.#entries, settings = this.#settings): string {
    const paths = tlsPaths(this.#systemDrive);
    const parts = [fileSignature(paths.sslTable), fileSignature(paths.centralStore)];
    for (const e of entries) {
      const dir = this.#store.folder(e.certstorename);
      parts.push(fileSignature(join(dir, `${e.certhash}.crt`)), fileSignature(join(dir, `${e.certhash}.key`)));
    }
    for (const name of TRUST_STORES) {
      const dir = this.#store.folder(name);
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith('.crt') || n.toLowerCase().endsWith('.crl')).sort();
      } catch {
        // no such store yet
      }
      for (const n of names) parts.push(`${name}/${n}=${fileSignature(join(dir, n))}`);
    }
    if (settings?.enabled === true) {
      const dir = settings.physicalPath;
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.pfx')).sort();
      } catch {
        names = ['(unreadable)'];
      }
      for (const n of names) parts.push(`${n}=${fileSignature(join(dir, n))}`);
    }
    return parts.join('\n');
  }

  #watchFolders(): void {
    if (this.#closed) return;
    const wanted = new Set(this.#folders());
    for (const [dir, w] of this.#watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      if (this.#watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => this.#changed());
        w.on('error', () => {
          // The folder went away: the poll notices what that means; watch again after the next reload.
          w.close();
          this.#watchers.delete(dir);
          this.#changed();
        });
        this.#watchers.set(dir, w);
      } catch {
        // Not there (yet): the poll sees it appear.
      }
    }
  }

  /** A watch event: reload once things are quiet. */
  #changed(): void {
    if (this.#closed) return;
    if (this.#debounceTimer !== undefined) clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      void this.reload();
    }, this.#debounceMs);
    this.#debounceTimer.unref();
  }

  #poll(): void {
    if (this.#closed || this.#reloading !== undefined) return;
    const now = Date.now();
    // Certificates expire on their own: a reload a minute re-checks validity warnings too.
    if (this.#computeFilesSignature() !== this.#filesSignature || now - this.#lastFullReload > 60_000) {
      this.#lastFullReload = now;
      void this.reload();
    }
  }

  #lastFullReload = Date.now();
}
