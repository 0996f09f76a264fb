/** The shapes the listener and the CLI share with src/tls/ (re-exported by index.ts). */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { WharfError } from '../errors.js';

/** A certificate ready to serve. */
export interface CertificateMaterial {
  /** The private key. */
  readonly key: KeyObject;
  /**
   * The same key as PEM (PKCS#8): Node 20's tls.createSecureContext takes `key` as PEM or DER
   * only, not as a KeyObject.
   */
  readonly keyPem: string;
  /** PEM: the leaf first, then its intermediates. */
  readonly chain: string;
  /** The leaf certificate. */
  readonly leaf: X509Certificate;
  /** SHA-1 of the leaf, 40 upper-case hex digits (as Windows shows a thumbprint). */
  readonly thumbprint: string;
  /** The file it came from (for error messages and logs). */
  readonly source: string;
}

/** The netsh parameters of one SSL table entry (`wharf sslcert add …`). */
export interface SslBindingEntry {
  /** `ipport` (an IP address and port, 0.0.0.0 / [::] for every address) or `hostnameport` (SNI). */
  readonly kind: 'ipport' | 'hostnameport';
  /** The entry's key as netsh shows it: `0.0.0.0:443`, `[::]:443`, `10.0.0.1:443`, `www.example.com:443`. */
  readonly key: string;
  /** IP address (ipport, normalised: IPv6 without brackets, lower case) or host name (lower case). */
  readonly host: string;
  readonly port: number;
  /** Thumbprint of the certificate (upper case). */
  readonly certhash: string;
  /** Store the certificate is in (`My` unless given). */
  readonly certstorename: string;
  /** Whether certstorename= was given: without it HTTP.sys uses MY and netsh shows "(null)". */
  readonly certstorenameGiven: boolean;
  /** `{…}` GUID of the owning application (IIS's is {4dc3e181-e14b-4a21-b022-59fc669b0914}). */
  readonly appid: string;
  /**
   * The other netsh parameters, as given (`clientcertnegotiation: 'enable'`, `revocationfreshnesstime: '0'` …);
   * absent ones keep netsh's defaults. The listener may honour the ones that mean something on Linux
   * (clientcertnegotiation, disablehttp2, disabletls13, disablelegacytls, reject).
   */
  readonly options: Readonly<Record<string, string>>;
}

export type CertificateLookup =
  | { readonly ok: true; readonly cert: CertificateMaterial; readonly binding?: SslBindingEntry }
  | { readonly ok: false; readonly error: WharfError; readonly binding?: SslBindingEntry };

/** The main process's logger (server.ts's consoleLogger has this shape). */
export interface TlsLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
