/**
 * Where certificates live under the system drive (the `--system-drive` of `wharf start`). Windows
 * keeps them in the machine's certificate stores and HTTP.sys's SSL table in the registry; Wharf
 * keeps both as files, one folder per store (docs/configuration.md, "Certificates"):
 *
 *   <systemDrive>/wharf/certificates/            0700
 *     <Store>/                                   0700  (My, WebHosting, … one folder per store)
 *       <THUMBPRINT>.crt                         0644  PEM chain: the certificate, then its issuers
 *       <THUMBPRINT>.key                         0600  PEM PKCS#8 private key, unencrypted
 *       <THUMBPRINT>.json                        0644  friendly name, where it was imported from
 *   <systemDrive>/wharf/http/sslcert.json        0644  the SSL bindings table (netsh http … sslcert)
 *   <systemDrive>/wharf/centralcert.json         0600  Central Certificate Store settings (has the PFX password)
 *   <systemDrive>/wharf/acme/                    0700  ACME account keys and per-host backoff (acme.ts)
 *
 * Every file is written whole (temp file + rename), so a running server never reads half of one.
 */
import { join } from 'node:path';

export interface TlsPaths {
  /** `<systemDrive>/wharf` */
  readonly base: string;
  /** `<systemDrive>/wharf/certificates`: one folder per store. */
  readonly stores: string;
  /** `<systemDrive>/wharf/http`: HTTP.sys's configuration (the SSL table). */
  readonly http: string;
  /** The SSL bindings table. */
  readonly sslTable: string;
  /** Central Certificate Store settings. */
  readonly centralStore: string;
}

export function tlsPaths(systemDrive: string): TlsPaths {
  const base = join(systemDrive, 'wharf');
  const http = join(base, 'http');
  return {
    base,
    stores: join(base, 'certificates'),
    http,
    sslTable: join(http, 'sslcert.json'),
    centralStore: join(base, 'centralcert.json'),
  };
}
