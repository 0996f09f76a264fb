/**
 * IIS's Central Certificate Store: a folder of `<host>.pfx` files that all open with one password.
 * A binding with sslFlags 2 (plus 1, SNI) takes the certificate for the host name the client asked
 * for from `<host>.pfx`, else, for a wildcard certificate, from `_.<parent domain>.pfx` (IIS's rule:
 * the exact file first). Windows keeps the settings in the registry with the password encrypted by
 * DPAPI; Wharf keeps them in `<systemDrive>/wharf/centralcert.json`, readable by root only.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { TlsError } from '../errors.js';
import { ensureDirectory, withFileLock, writeFileAtomic } from './secure-file.js';
import { tlsPaths } from './tls-paths.js';

/** ACME settings (`wharf centralcert acme`): a running server fills the store itself (acme.ts). */
export interface AcmeSettings {
  /** The CA's ACME directory URL. */
  readonly directory: string;
  /** Contact address for the account. */
  readonly email: string;
  /** The administrator accepted the CA's terms of service (--accept-tos). */
  readonly acceptedTos: boolean;
  /** PEM file of the CA certificate(s) the directory's https is signed by, for a private CA (--directory-ca). */
  readonly directoryCa?: string | undefined;
  /**
   * The local port the CA's HTTP-01 requests (to port 80) arrive on (--http-port; default 80;
   * another behind a port forward, or a test CA such as Pebble). A host with an http binding on
   * it is validated by HTTP-01, else by TLS-ALPN-01.
   */
  readonly httpPort?: number | undefined;
  /** The local port the CA's TLS-ALPN-01 connections (to port 443) arrive on (--tls-port; default 443). */
  readonly tlsPort?: number | undefined;
}

export interface CentralStoreSettings {
  readonly enabled: boolean;
  /** Absolute path of the folder of .pfx files. */
  readonly physicalPath: string;
  /** The "Certificate Private Key Password" every .pfx opens with ('' for none). */
  readonly privateKeyPassword: string;
  readonly acme?: AcmeSettings | undefined;
}

/** The file names (lower case) that may hold `host`'s certificate, in IIS's order. */
export function centralStoreFileNames(host: string): string[] {
  const h = host.toLowerCase().replace(/\.$/, '');
  const names = [`${h}.pfx`];
  const dot = h.indexOf('.');
  // _.example.com.pfx holds *.example.com, which covers one label: www.example.com, not example.com.
  if (dot > 0 && h.indexOf('.', dot + 1) > 0) names.push(`_.${h.slice(dot + 1)}.pfx`);
  return names;
}

/** A host name a client may send in SNI and that can name a file (no path separators, no IP). */
export function isCentralStoreHost(host: string): boolean {
  return host.length <= 253 && /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i.test(host) && !/^[\d.]+$/.test(host);
}

/** A TCP port number (1-65535). */
export function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function valid(v: unknown): v is CentralStoreSettings {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  const acme = s['acme'] as Record<string, unknown> | undefined;
  return (
    typeof s['enabled'] === 'boolean' &&
    typeof s['physicalPath'] === 'string' &&
    isAbsolute(s['physicalPath']) &&
    typeof s['privateKeyPassword'] === 'string' &&
    (acme === undefined ||
      (typeof acme === 'object' &&
        acme !== null &&
        typeof acme['directory'] === 'string' &&
        typeof acme['email'] === 'string' &&
        typeof acme['acceptedTos'] === 'boolean' &&
        (acme['directoryCa'] === undefined || typeof acme['directoryCa'] === 'string') &&
        (acme['httpPort'] === undefined || isPort(acme['httpPort'])) &&
        (acme['tlsPort'] === undefined || isPort(acme['tlsPort']))))
  );
}

/** The settings file. */
export class CentralStoreConfig {
  readonly file: string;
  readonly #base: string;

  constructor(systemDrive: string) {
    const paths = tlsPaths(systemDrive);
    this.file = paths.centralStore;
    this.#base = paths.base;
  }

  /** Undefined when the store was never configured. */
  read(): CentralStoreSettings | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return undefined;
      throw new TlsError('TLS_FILE_READ', `cannot read the Central Certificate Store settings ${this.file}: ${e.code === 'EACCES' ? 'permission denied (readable by root only)' : e.message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new TlsError('TLS_TABLE_INVALID', `${this.file}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    if (!valid(data)) throw new TlsError('TLS_TABLE_INVALID', `${this.file}: expected {"enabled": true|false, "physicalPath": "/absolute/folder", "privateKeyPassword": "..."}`);
    return data;
  }

  /** Changes the settings under a lock; `edit` gets the current ones (undefined: never configured). */
  async update(edit: (current: CentralStoreSettings | undefined) => CentralStoreSettings): Promise<CentralStoreSettings> {
    ensureDirectory(this.#base, 0o755);
    return withFileLock(this.file, () => {
      let current: CentralStoreSettings | undefined;
      try {
        current = this.read();
      } catch (err) {
        if (!(err instanceof TlsError && err.code === 'TLS_TABLE_INVALID')) throw err;
        current = undefined; // a damaged file is replaced by the new settings
      }
      const next = edit(current);
      writeFileAtomic(this.file, JSON.stringify(next, null, 2) + '\n', 0o600);
      return next;
    });
  }
}

/** `--path DIR` → an absolute folder that exists (TLS_CCS_PATH otherwise). */
export function checkCentralStorePath(dir: string): string {
  const abs = resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch (err) {
    throw new TlsError('TLS_CCS_PATH', `the Central Certificate Store folder ${abs} does not exist (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  if (!isDir) throw new TlsError('TLS_CCS_PATH', `${abs} is not a folder`);
  return abs;
}
