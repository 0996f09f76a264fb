/**
 * Certificate files an administrator brings: PKCS#12 (.pfx/.p12, as Windows exports them) or PEM
 * (certificates and a key in one file, or the key in another), and DER certificates. Whatever the
 * input, the result is one key, the certificate it belongs to, and that certificate's issuers in
 * chain order, checked with node:crypto.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { TlsError } from '../errors.js';
import { readPkcs12 } from './pkcs12.js';
import type { CertificateMaterial } from './tls-types.js';

export interface CertificateBundle {
  readonly key: KeyObject;
  /** The certificate the key belongs to. */
  readonly leaf: X509Certificate;
  /** The leaf, then each issuer found in the file, in order. */
  readonly chain: readonly X509Certificate[];
  /** Certificates of the file that are not in the leaf's chain (left out). */
  readonly unrelated: readonly X509Certificate[];
  /** From the PFX (Windows' "Friendly name"). */
  readonly friendlyName: string | undefined;
}

/** The SHA-1 thumbprint Windows shows: 40 upper-case hex digits. */
export function thumbprintOf(cert: X509Certificate): string {
  return cert.fingerprint.replace(/:/g, '').toUpperCase();
}

/**
 * A thumbprint as typed or pasted: spaces and colons are dropped, and so are the invisible
 * left-to-right marks Windows' certificate dialog puts in front of a copied thumbprint (a classic
 * cause of netsh's "parameter is incorrect"). Undefined when it is not 40 hex digits.
 */
export function normalizeThumbprint(text: string): string | undefined {
  const t = text.replace(/[\s:\u200e\u200f\u202a-\u202e\ufeff]/g, '').toUpperCase();
  return /^[0-9A-F]{40}$/.test(t) ? t : undefined;
}

/** Windows' short attribute names (certutil, the certificate dialog, PowerShell's Subject). */
const WINDOWS_ATTRIBUTE: Readonly<Record<string, string>> = { ST: 'S', emailAddress: 'E' };

/**
 * A distinguished name as Windows prints it: most specific first, `, `-separated, values with
 * separators in double quotes (`CN=www.example.com, O="Contoso, Ltd", C=US`). Node gives one RDN
 * per line, in DER order, with `\`-escapes.
 */
export function windowsName(nodeName: string): string {
  const parts: string[] = [];
  for (const line of nodeName.split(/(?<!\\)\n/)) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    const attr = eq < 0 ? line : line.slice(0, eq);
    const value = eq < 0 ? '' : line.slice(eq + 1).replace(/\\(.)/g, '$1');
    const quoted = /[,+=";<>#\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
    parts.push(`${WINDOWS_ATTRIBUTE[attr] ?? attr}=${quoted}`);
  }
  return parts.reverse().join(', ');
}

/** The DNS names of the subjectAltName extension (PowerShell's DnsNameList), in order. */
export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  const out: string[] = [];
  for (const m of san.matchAll(/(?:^|, )DNS:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const v = m[1]!;
    out.push(v.startsWith('"') ? (JSON.parse(v) as string) : v);
  }
  return out;
}

/** The IP addresses of the subjectAltName extension. */
export function ipAddresses(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  return [...san.matchAll(/(?:^|, )IP Address:([^,]*)/g)].map((m) => m[1]!);
}

export type Validity = 'valid' | 'expired' | 'not-yet-valid';

export function validityOf(cert: X509Certificate, now: number = Date.now()): Validity {
  if (now > Date.parse(cert.validTo)) return 'expired';
  if (now < Date.parse(cert.validFrom)) return 'not-yet-valid';
  return 'valid';
}

/** PEM of the chain, leaf first (what a TLS server sends). */
export function chainPem(chain: readonly X509Certificate[]): string {
  return chain.map((c) => c.toString().trim() + '\n').join('');
}

/** The certificate and key of a bundle, ready to serve (`source` names the file in messages). */
export function materialOf(bundle: Pick<CertificateBundle, 'key' | 'leaf' | 'chain'>, source: string): CertificateMaterial {
  return {
    key: bundle.key,
    keyPem: bundle.key.export({ format: 'pem', type: 'pkcs8' }) as string,
    chain: chainPem(bundle.chain),
    leaf: bundle.leaf,
    thumbprint: thumbprintOf(bundle.leaf),
    source,
  };
}

/** "RSA 2048", "ECDSA P-256", "Ed25519": the key, as `cert list` shows it. */
export function keyDescription(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return `RSA ${d.modulusLength ?? '?'}`;
    case 'rsa-pss':
      return `RSA-PSS ${d.modulusLength ?? '?'}`;
    case 'ec': {
      const curve = d.namedCurve ?? '?';
      const nist: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
      return `ECDSA ${nist[curve] ?? curve}`;
    }
    case 'ed25519':
      return 'Ed25519';
    case 'ed448':
      return 'Ed448';
    default:
      return key.asymmetricKeyType ?? 'unknown';
  }
}

function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false; // a key of another type
  }
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * One key and the certificates that came with it → a bundle: the certificate the key belongs to,
 * and its issuers in order (each one checked to have signed the one before).
 */
export function assembleBundle(keys: readonly KeyObject[], certs: readonly X509Certificate[], source: string, friendlyName?: string): CertificateBundle {
  if (certs.length === 0) throw new TlsError('TLS_FORMAT', `${source}: no certificate in this file`);
  if (keys.length === 0) {
    throw new TlsError('TLS_NO_KEY', `${source}: no private key in this file (a certificate alone cannot serve https; export it with its private key, or give the key with --key)`);
  }
  let leaf: X509Certificate | undefined;
  let key: KeyObject | undefined;
  for (const k of keys) {
    // Prefer an end-entity certificate when a CA certificate shares the key (a self-signed CA bundle).
    const matching = certs.filter((c) => keyMatches(c, k));
    const pick = matching.find((c) => !c.ca) ?? matching[0];
    if (pick !== undefined) {
      leaf = pick;
      key = k;
      break;
    }
  }
  if (leaf === undefined || key === undefined) {
    const names = certs.map((c) => `${windowsName(c.subject)} (${thumbprintOf(c)})`).join('; ');
    throw new TlsError('TLS_KEY_MISMATCH', `${source}: the private key does not belong to ${certs.length === 1 ? 'the certificate' : 'any of the certificates'} in the file: ${names}`);
  }
  const chain = [leaf];
  const rest = certs.filter((c) => c !== leaf);
  for (let current = leaf; ; ) {
    if (current.checkIssued(current)) break; // self-signed: the top
    const i = rest.findIndex((c) => issuedBy(current, c));
    if (i < 0) break;
    current = rest.splice(i, 1)[0]!;
    chain.push(current);
  }
  // The same certificate twice (some exports repeat the leaf) is not "unrelated".
  const inChain = new Set(chain.map((c) => c.fingerprint256));
  const unrelated = rest.filter((c) => !inChain.has(c.fingerprint256));
  return { key, leaf, chain, unrelated, friendlyName };
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

function passwordError(err: unknown, source: string, password: string): TlsError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_MISSING_PASSPHRASE' || (password === '' && /passphrase|password/i.test(e.message))) {
    return new TlsError('TLS_PASSWORD', `${source}: the private key is encrypted; give its password with --password`, { cause: err });
  }
  if (/bad decrypt|BAD_DECRYPT|wrong password|unable to decrypt/i.test(`${e.code ?? ''} ${e.message}`)) {
    return new TlsError('TLS_PASSWORD', `${source}: the password does not decrypt the private key`, { cause: err });
  }
  return undefined;
}

/** Keys and certificates of PEM text (other blocks, such as EC PARAMETERS, are skipped). */
function readPem(text: string, source: string, password: string): { keys: KeyObject[]; certs: X509Certificate[] } {
  const keys: KeyObject[] = [];
  const certs: X509Certificate[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const label = m[1]!;
    const block = m[0];
    try {
      if (label === 'CERTIFICATE' || label === 'X509 CERTIFICATE') {
        certs.push(new X509Certificate(block));
      } else if (label === 'PRIVATE KEY' || label === 'RSA PRIVATE KEY' || label === 'EC PRIVATE KEY' || label === 'ENCRYPTED PRIVATE KEY') {
        const encrypted = label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(block);
        keys.push(createPrivateKey(encrypted ? { key: block, format: 'pem', passphrase: password } : { key: block, format: 'pem' }));
      }
    } catch (err) {
      const p = passwordError(err, source, password);
      if (p !== undefined) throw p;
      throw new TlsError('TLS_FORMAT', `${source}: the ${label} block cannot be read (${(err as Error).message})`, { cause: err });
    }
  }
  return { keys, certs };
}

function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'it does not exist' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a folder' : e.message;
    throw new TlsError('TLS_FILE_READ', `cannot read the ${what} ${file}: ${why}`, { cause: err });
  }
}

/** The CERTIFICATE blocks of PEM text, in order (a stored chain file). */
export function certificatesFromPem(text: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) if (m[1] === 'CERTIFICATE') out.push(new X509Certificate(m[0]));
  return out;
}

function isPem(data: Buffer): boolean {
  return data.subarray(0, 4096).toString('latin1').includes('-----BEGIN ');
}

export interface ReadOptions {
  /** PFX password or encrypted-key passphrase; '' for none. */
  readonly password?: string;
  /** A separate PEM or DER key file (PEM certificates + `--key`). */
  readonly keyFile?: string | undefined;
}

/** Parses certificate data already in memory (`source` names it in messages). */
export function parseCertificateData(data: Buffer, source: string, options: ReadOptions & { keyData?: Buffer } = {}): CertificateBundle {
  const password = options.password ?? '';
  let keys: KeyObject[] = [];
  let certs: X509Certificate[] = [];
  let friendlyName: string | undefined;
  if (isPem(data)) {
    ({ keys, certs } = readPem(data.toString('utf8'), source, password));
    if (keys.length === 0 && certs.length === 0) throw new TlsError('TLS_FORMAT', `${source}: no CERTIFICATE or PRIVATE KEY block in this PEM file`);
  } else {
    // Binary: a PFX, or a lone DER certificate (.cer).
    let pfxError: unknown;
    try {
      const p12 = readPkcs12(data, password, source);
      keys = [...p12.keys];
      certs = p12.certificates.map((der) => new X509Certificate(der));
      friendlyName = p12.friendlyName;
    } catch (err) {
      pfxError = err;
    }
    if (pfxError !== undefined) {
      let cert: X509Certificate | undefined;
      try {
        cert = new X509Certificate(data);
      } catch {
        throw pfxError; // not a DER certificate either: the PFX reader's word stands
      }
      certs = [cert];
    }
  }
  if (options.keyData !== undefined) {
    const keySource = options.keyFile ?? 'the key file';
    if (isPem(options.keyData)) {
      const fromKeyFile = readPem(options.keyData.toString('utf8'), keySource, password);
      if (fromKeyFile.keys.length === 0) throw new TlsError('TLS_NO_KEY', `${keySource}: no PRIVATE KEY block in this file`);
      keys = [...fromKeyFile.keys, ...keys];
    } else {
      try {
        keys = [createPrivateKey({ key: options.keyData, format: 'der', type: 'pkcs8' }), ...keys];
      } catch (err) {
        throw new TlsError('TLS_FORMAT', `${keySource}: not a private key Wharf can read (PEM, or DER PKCS#8): ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return assembleBundle(keys, certs, source, friendlyName);
}

/** Reads and parses a certificate file as `wharf cert import` does. */
export function readCertificateFile(file: string, options: ReadOptions = {}): CertificateBundle {
  const data = readInput(file, 'certificate file');
  const keyData = options.keyFile !== undefined ? readInput(options.keyFile, 'key file') : undefined;
  return parseCertificateData(data, file, { ...options, ...(keyData !== undefined ? { keyData } : {}) });
}

/**
 * Every certificate of a file, without keys: what a trust store (Root, CA) takes, as Windows
 * imports a `.cer`/`.crt` into "Trusted Root Certification Authorities". PEM (any number of
 * CERTIFICATE blocks: a CA bundle), DER, or a PFX (its certificates; a key in it is not kept).
 */
export function readCertificatesOnly(file: string, options: { password?: string } = {}): X509Certificate[] {
  const data = readInput(file, 'certificate file');
  let certs: X509Certificate[];
  if (isPem(data)) {
    try {
      certs = certificatesFromPem(data.toString('utf8'));
    } catch (err) {
      throw new TlsError('TLS_FORMAT', `${file}: a CERTIFICATE block cannot be read (${(err as Error).message})`, { cause: err });
    }
    if (certs.length === 0) throw new TlsError('TLS_FORMAT', `${file}: no CERTIFICATE block in this PEM file`);
  } else {
    try {
      certs = [new X509Certificate(data)];
    } catch {
      certs = readPkcs12(data, options.password ?? '', file).certificates.map((der) => new X509Certificate(der));
      if (certs.length === 0) throw new TlsError('TLS_FORMAT', `${file}: no certificate in this PFX file`);
    }
  }
  const seen = new Set<string>();
  return certs.filter((c) => !seen.has(c.fingerprint256) && seen.add(c.fingerprint256) !== undefined);
}

/** What `wharf cert import` shows of a certificate revocation list. */
export interface RevocationListFile {
  readonly der: Buffer;
  /** The issuer's name (@peculiar/x509's form, `CN=…, O=…`). */
  readonly issuer: string;
  readonly nextUpdate: Date | undefined;
  readonly revoked: number;
}

/**
 * A certificate revocation list (PEM `X509 CRL`, or DER), as `certutil -addstore CA file.crl`
 * takes one; undefined when the file is something else (a certificate, a PFX).
 */
export async function readRevocationList(file: string): Promise<RevocationListFile | undefined> {
  const data = readInput(file, 'file');
  let der: Buffer | undefined;
  if (isPem(data)) {
    const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(data.toString('latin1'));
    if (m === null) return undefined;
    der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  } else {
    try {
      new X509Certificate(data);
      return undefined; // a DER certificate
    } catch {
      der = data;
    }
  }
  const x509 = await import('@peculiar/x509');
  try {
    const crl = new x509.X509Crl(der as Buffer<ArrayBuffer>);
    return { der, issuer: crl.issuer, nextUpdate: crl.nextUpdate, revoked: crl.entries.length };
  } catch (err) {
    if (isPem(data)) throw new TlsError('TLS_FORMAT', `${file}: the X509 CRL block cannot be read (${(err as Error).message})`, { cause: err });
    return undefined; // binary and not a CRL: perhaps a PFX
  }
}
