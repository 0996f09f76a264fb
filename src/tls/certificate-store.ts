/**
 * The machine's certificate stores (Windows: Cert:\LocalMachine\My, WebHosting …), as folders of
 * files under the system drive (layout in tls-paths.ts). A certificate is known by its thumbprint;
 * importing the same certificate again replaces it, as Windows does.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash, createPrivateKey, type X509Certificate } from 'node:crypto';
import { dirname, join } from 'node:path';
import { TlsError } from '../errors.js';
import { chainPem, certificatesFromPem, materialOf, thumbprintOf, type CertificateBundle } from './certificate-file.js';
import { ensureDirectory, removeFile, writeFileAtomic } from './secure-file.js';
import { tlsPaths } from './tls-paths.js';
import type { CertificateMaterial } from './tls-types.js';

export const DEFAULT_STORE = 'My';

/**
 * Stores of certificates without keys that say whom to trust (Windows' "Trusted Root
 * Certification Authorities" and "Intermediate Certification Authorities"): `wharf cert import`
 * takes a certificate alone into them, and client certificates are verified against them.
 */
export const TRUST_STORES: readonly string[] = ['Root', 'CA'];

/** Whether a store name (any case) is one of TRUST_STORES. */
export function isTrustStore(name: string): boolean {
  return TRUST_STORES.some((s) => s.toLowerCase() === name.toLowerCase());
}

/** The local machine's stores, spelled as Windows spells them; any other name is a custom store. */
const KNOWN_STORES = ['My', 'WebHosting', 'Root', 'CA', 'TrustedPeople', 'TrustedPublisher', 'AuthRoot', 'Disallowed', 'Trust', 'REQUEST'];

/**
 * A store name as given (`MY`, `my`, `webhosting` …) → its folder name. Windows' store names are
 * case-insensitive; the known ones keep Windows' spelling, others must be letters, digits, `_`, `-`.
 * Undefined when the name cannot be a folder.
 */
export function canonicalStoreName(name: string): string | undefined {
  const known = KNOWN_STORES.find((s) => s.toLowerCase() === name.toLowerCase());
  if (known !== undefined) return known;
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(name) ? name : undefined;
}

export interface StoredCertificate {
  readonly store: string;
  readonly thumbprint: string;
  readonly leaf: X509Certificate;
  readonly chain: readonly X509Certificate[];
  readonly hasPrivateKey: boolean;
  readonly friendlyName: string;
  readonly importedFrom: string | undefined;
  readonly importedAt: string | undefined;
  readonly files: { readonly certificate: string; readonly key: string; readonly metadata: string };
}

/** A store file that cannot be read back (damaged, renamed by hand): listed, never served. */
export interface BrokenStoreEntry {
  readonly store: string;
  readonly file: string;
  readonly problem: string;
}

interface Metadata {
  readonly friendlyName?: string;
  readonly importedFrom?: string;
  readonly importedAt?: string;
}

export class CertificateStore {
  readonly root: string;

  constructor(systemDrive: string) {
    this.root = tlsPaths(systemDrive).stores;
  }

  /** The folder of a store (canonical name). */
  folder(store: string): string {
    return join(this.root, this.#resolve(store));
  }

  /** The folder name for `store`: an existing folder that matches case-insensitively wins. */
  #resolve(store: string): string {
    const canonical = canonicalStoreName(store);
    if (canonical === undefined) throw new TlsError('TLS_SSLCERT_PARAMETER', `"${store}" is not a certificate store name (letters, digits, _ and -; e.g. My, WebHosting)`);
    try {
      const existing = readdirSync(this.root).find((n) => n.toLowerCase() === canonical.toLowerCase());
      if (existing !== undefined) return existing;
    } catch {
      // no stores yet
    }
    return canonical;
  }

  /** Names of the stores that have a folder. */
  stores(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch {
      return [];
    }
  }

  #files(store: string, thumbprint: string): StoredCertificate['files'] {
    const dir = this.folder(store);
    return { certificate: join(dir, `${thumbprint}.crt`), key: join(dir, `${thumbprint}.key`), metadata: join(dir, `${thumbprint}.json`) };
  }

  /**
   * Adds a certificate with its key and chain. The key is written first, so a reader that sees
   * the .crt always finds its .key. Returns the thumbprint and whether it replaced one.
   */
  import(bundle: CertificateBundle, options: { store?: string; importedFrom?: string; friendlyName?: string } = {}): { thumbprint: string; store: string; replaced: boolean } {
    const store = this.#resolve(options.store ?? DEFAULT_STORE);
    const thumbprint = thumbprintOf(bundle.leaf);
    this.#ensureStoreFolder(store);
    const files = this.#files(store, thumbprint);
    const replaced = existsSync(files.certificate);
    const keyPem = bundle.key.export({ format: 'pem', type: 'pkcs8' }) as string;
    writeFileAtomic(files.key, keyPem, 0o600);
    const friendlyName = options.friendlyName ?? bundle.friendlyName;
    const metadata: Metadata = {
      ...(friendlyName !== undefined ? { friendlyName } : {}),
      ...(options.importedFrom !== undefined ? { importedFrom: options.importedFrom } : {}),
      importedAt: new Date().toISOString(),
    };
    writeFileAtomic(files.metadata, JSON.stringify(metadata, null, 2) + '\n', 0o644);
    writeFileAtomic(files.certificate, chainPem(bundle.chain), 0o644);
    return { thumbprint, store, replaced };
  }

  /**
   * Adds a certificate without a key (a CA certificate into Root or CA). Importing one that is
   * already there replaces it, and a key left from an earlier import of the same certificate stays.
   */
  importCertificate(cert: X509Certificate, options: { store: string; importedFrom?: string; friendlyName?: string }): { thumbprint: string; store: string; replaced: boolean } {
    const store = this.#resolve(options.store);
    const thumbprint = thumbprintOf(cert);
    this.#ensureStoreFolder(store);
    const files = this.#files(store, thumbprint);
    const replaced = existsSync(files.certificate);
    const metadata: Metadata = {
      ...(options.friendlyName !== undefined ? { friendlyName: options.friendlyName } : {}),
      ...(options.importedFrom !== undefined ? { importedFrom: options.importedFrom } : {}),
      importedAt: new Date().toISOString(),
    };
    writeFileAtomic(files.metadata, JSON.stringify(metadata, null, 2) + '\n', 0o644);
    writeFileAtomic(files.certificate, chainPem([cert]), 0o644);
    return { thumbprint, store, replaced };
  }

  /**
   * Adds a certificate revocation list (DER) to a trust store as `<SHA-1 of the DER>.crl`, PEM: the
   * server checks client certificates against the lists whose issuer is in Root or CA.
   */
  importRevocationList(der: Buffer, options: { store: string }): { file: string; store: string; replaced: boolean } {
    const store = this.#resolve(options.store);
    this.#ensureStoreFolder(store);
    const file = join(this.root, store, `${createHash('sha1').update(der).digest('hex').toUpperCase()}.crl`);
    const replaced = existsSync(file);
    const body = der.toString('base64').replace(/.{1,64}/g, '$&\n');
    writeFileAtomic(file, `-----BEGIN X509 CRL-----\n${body}-----END X509 CRL-----\n`, 0o644);
    return { file, store, replaced };
  }

  /** The store's folder under the certificates root, created 0700 (the root too) when missing. */
  #ensureStoreFolder(store: string): void {
    ensureDirectory(dirname(this.root), 0o755);
    ensureDirectory(this.root, 0o700);
    ensureDirectory(join(this.root, store), 0o700);
  }

  /** Reads one stored certificate (without its key); undefined when it is not in the store. */
  get(store: string, thumbprint: string): StoredCertificate | undefined {
    const s = this.#resolve(store);
    const files = this.#files(s, thumbprint);
    let text: string;
    try {
      text = readFileSync(files.certificate, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TlsError('TLS_FILE_READ', `cannot read ${files.certificate}: ${(err as Error).message}`, { cause: err });
    }
    return this.#parse(s, thumbprint, text, files);
  }

  #parse(store: string, thumbprint: string, text: string, files: StoredCertificate['files']): StoredCertificate {
    let chain: X509Certificate[];
    try {
      chain = certificatesFromPem(text);
    } catch (err) {
      throw new TlsError('TLS_FORMAT', `${files.certificate}: not a PEM certificate chain (${(err as Error).message})`, { cause: err });
    }
    const leaf = chain[0];
    if (leaf === undefined) throw new TlsError('TLS_FORMAT', `${files.certificate}: no CERTIFICATE block`);
    if (thumbprintOf(leaf) !== thumbprint) {
      throw new TlsError('TLS_FORMAT', `${files.certificate}: holds the certificate ${thumbprintOf(leaf)}, not ${thumbprint} (files in the store are named by thumbprint)`);
    }
    let metadata: Metadata = {};
    try {
      metadata = JSON.parse(readFileSync(files.metadata, 'utf8')) as Metadata;
    } catch {
      // optional
    }
    let hasPrivateKey = false;
    try {
      hasPrivateKey = statSync(files.key).isFile();
    } catch {
      // none
    }
    return {
      store,
      thumbprint,
      leaf,
      chain,
      hasPrivateKey,
      friendlyName: typeof metadata.friendlyName === 'string' ? metadata.friendlyName : '',
      importedFrom: metadata.importedFrom,
      importedAt: metadata.importedAt,
      files,
    };
  }

  /** Every certificate of a store, by NotAfter; files that cannot be read come back in `broken`. */
  list(store: string): { certificates: StoredCertificate[]; broken: BrokenStoreEntry[] } {
    const s = this.#resolve(store);
    const dir = join(this.root, s);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { certificates: [], broken: [] };
      throw new TlsError('TLS_FILE_READ', `cannot read the store folder ${dir}: ${(err as Error).message}`, { cause: err });
    }
    const certificates: StoredCertificate[] = [];
    const broken: BrokenStoreEntry[] = [];
    for (const name of names.sort()) {
      const m = /^([0-9A-F]{40})\.crt$/.exec(name);
      if (m === null) continue;
      const thumbprint = m[1]!;
      const files = this.#files(s, thumbprint);
      try {
        certificates.push(this.#parse(s, thumbprint, readFileSync(files.certificate, 'utf8'), files));
      } catch (err) {
        broken.push({ store: s, file: files.certificate, problem: (err as Error).message });
      }
    }
    certificates.sort((a, b) => Date.parse(a.leaf.validTo) - Date.parse(b.leaf.validTo) || a.thumbprint.localeCompare(b.thumbprint));
    return { certificates, broken };
  }

  /** The certificate with its key, ready to serve. Throws TlsError naming the store and the file. */
  material(store: string, thumbprint: string): CertificateMaterial {
    const s = this.#resolve(store);
    const stored = this.get(s, thumbprint);
    const files = this.#files(s, thumbprint);
    if (stored === undefined) {
      throw new TlsError('TLS_CERT_NOT_FOUND', `certificate ${thumbprint} is not in store ${s} (${files.certificate} does not exist; import it with wharf cert import)`);
    }
    let keyText: string;
    try {
      keyText = readFileSync(files.key, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new TlsError('TLS_NO_KEY', `certificate ${thumbprint} in store ${s} has no private key (${files.key} does not exist)`, { cause: err });
      throw new TlsError('TLS_FILE_READ', `cannot read the private key ${files.key}: ${e.code === 'EACCES' ? 'permission denied (keys are readable by root only)' : e.message}`, { cause: err });
    }
    let key;
    try {
      key = createPrivateKey(keyText);
    } catch (err) {
      throw new TlsError('TLS_FORMAT', `${files.key}: not a private key (${(err as Error).message})`, { cause: err });
    }
    if (!stored.leaf.checkPrivateKey(key)) {
      throw new TlsError('TLS_KEY_MISMATCH', `${files.key} does not belong to the certificate ${thumbprint} in ${files.certificate}`);
    }
    return materialOf({ key, leaf: stored.leaf, chain: stored.chain }, files.certificate);
  }

  /** Removes a certificate (its .crt first: a reader never finds a certificate without its key). */
  delete(store: string, thumbprint: string): boolean {
    const s = this.#resolve(store);
    const files = this.#files(s, thumbprint);
    let existed = true;
    try {
      statSync(files.certificate);
    } catch {
      existed = false;
    }
    removeFile(files.certificate);
    removeFile(files.key);
    removeFile(files.metadata);
    return existed;
  }
}
