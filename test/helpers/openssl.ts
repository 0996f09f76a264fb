/**
 * Certificates made the way an administrator makes them: with the `openssl` command line (a CA,
 * an intermediate, leaf certificates, expired ones, PFX files in OpenSSL 3's default format and in
 * the `-legacy` 3DES/RC2 format Windows exports). Thumbprints come from `openssl x509 -fingerprint
 * -sha1`, never from Wharf.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function openssl(args: readonly string[], cwd?: string, input?: string): string {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** `openssl x509 -fingerprint -sha1` of a PEM certificate file → 40 upper-case hex digits. */
export function opensslThumbprint(certFile: string): string {
  const out = openssl(['x509', '-in', certFile, '-noout', '-fingerprint', '-sha1']);
  const m = /Fingerprint=([0-9A-F:]+)/i.exec(out);
  if (m === null) throw new Error(`no fingerprint in: ${out}`);
  return m[1]!.replace(/:/g, '').toUpperCase();
}

export interface Issued {
  readonly key: string;
  readonly cert: string;
  readonly thumbprint: string;
}

export interface LeafOptions {
  readonly sans?: readonly string[];
  /** rsa (2048) or ec (P-256, the default: fast). */
  readonly keyType?: 'rsa' | 'ec';
  readonly issuer?: 'self' | 'root' | 'intermediate';
  /** Validity: days from now, or fixed dates (YYYYMMDDHHMMSSZ) for expired certificates. */
  readonly days?: number;
  readonly startDate?: string;
  readonly endDate?: string;
  /** Extended key usage: serverAuth (the default) or clientAuth (a client certificate). */
  readonly usage?: 'server' | 'client';
  /** The subject as `openssl req -subj` takes it (default `/CN=<cn>`). */
  readonly subject?: string;
}

/** A small PKI in a folder: a root, an intermediate, and leaves signed by either or by themselves. */
export class TestPki {
  readonly dir: string;
  #count = 0;
  #root: Issued | undefined;
  #intermediate: Issued | undefined;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  #name(base: string): string {
    return join(this.dir, `${base.replace(/[^a-zA-Z0-9.-]/g, '_')}-${++this.#count}`);
  }

  #newKey(path: string, type: 'rsa' | 'ec'): void {
    if (type === 'rsa') openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', path]);
    else openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  }

  root(): Issued {
    if (this.#root === undefined) {
      const base = this.#name('root');
      this.#newKey(`${base}.key`, 'ec');
      openssl(['req', '-x509', '-key', `${base}.key`, '-out', `${base}.crt`, '-days', '30', '-subj', '/O=Wharf Tests/CN=Wharf Test Root CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
      this.#root = { key: `${base}.key`, cert: `${base}.crt`, thumbprint: opensslThumbprint(`${base}.crt`) };
    }
    return this.#root;
  }

  intermediate(): Issued {
    if (this.#intermediate === undefined) {
      const root = this.root();
      const base = this.#name('intermediate');
      this.#newKey(`${base}.key`, 'ec');
      openssl(['req', '-new', '-key', `${base}.key`, '-out', `${base}.csr`, '-subj', '/O=Wharf Tests/CN=Wharf Test Intermediate CA']);
      writeFileSync(`${base}.ext`, 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', root.cert, '-CAkey', root.key, '-set_serial', String(1000 + this.#count), '-days', '30', '-out', `${base}.crt`, '-extfile', `${base}.ext`]);
      this.#intermediate = { key: `${base}.key`, cert: `${base}.crt`, thumbprint: opensslThumbprint(`${base}.crt`) };
    }
    return this.#intermediate;
  }

  /** A server certificate for `cn` (SAN DNS:cn plus `sans`). */
  leaf(cn: string, options: LeafOptions = {}): Issued {
    const base = this.#name(cn);
    this.#newKey(`${base}.key`, options.keyType ?? 'ec');
    const sans = [cn, ...(options.sans ?? [])].map((s) => (/^[\d.]+$|:/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',');
    const eku = options.usage === 'client' ? 'clientAuth' : 'serverAuth';
    writeFileSync(`${base}.ext`, `subjectAltName=${sans}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=${eku}\n`);
    openssl(['req', '-new', '-key', `${base}.key`, '-out', `${base}.csr`, '-subj', options.subject ?? `/CN=${cn}`]);
    const issuer = options.issuer ?? 'intermediate';
    if (options.startDate !== undefined || options.endDate !== undefined) {
      // Dates in the past need `openssl ca` (x509 -days only counts forward from now).
      const db = `${base}-ca`;
      mkdirSync(db);
      writeFileSync(join(db, 'index.txt'), '');
      writeFileSync(join(db, 'serial'), '01\n');
      writeFileSync(
        join(db, 'ca.cnf'),
        `[ca]\ndefault_ca = d\n[d]\ndatabase = ${db}/index.txt\nserial = ${db}/serial\nnew_certs_dir = ${db}\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n[p]\ncommonName = supplied\n`,
      );
      const signer = issuer === 'self' ? ['-selfsign', '-keyfile', `${base}.key`] : (() => {
        const ca = issuer === 'root' ? this.root() : this.intermediate();
        return ['-cert', ca.cert, '-keyfile', ca.key];
      })();
      openssl(['ca', '-batch', '-config', join(db, 'ca.cnf'), ...signer, '-in', `${base}.csr`, '-out', `${base}.crt`, '-startdate', options.startDate ?? '20200101000000Z', '-enddate', options.endDate ?? '20200201000000Z', '-notext', '-extfile', `${base}.ext`]);
    } else if (issuer === 'self') {
      openssl(['x509', '-req', '-in', `${base}.csr`, '-key', `${base}.key`, '-days', String(options.days ?? 30), '-out', `${base}.crt`, '-extfile', `${base}.ext`]);
    } else {
      const ca = issuer === 'root' ? this.root() : this.intermediate();
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(2000 + this.#count), '-days', String(options.days ?? 30), '-out', `${base}.crt`, '-extfile', `${base}.ext`]);
    }
    return { key: `${base}.key`, cert: `${base}.crt`, thumbprint: opensslThumbprint(`${base}.crt`) };
  }

  /**
   * A certificate revocation list (PEM) of the root or the intermediate naming these certificates
   * revoked, made by `openssl ca -gencrl` from an index file written the way `openssl ca -revoke`
   * keeps it.
   */
  crl(issuer: 'root' | 'intermediate', revoked: readonly Issued[], options: { days?: number } = {}): string {
    const ca = issuer === 'root' ? this.root() : this.intermediate();
    const base = this.#name(`${issuer}-crl`);
    mkdirSync(base);
    const lines = revoked.map((c) => {
      const serial = /serial=([0-9A-F]+)/i.exec(openssl(['x509', '-in', c.cert, '-noout', '-serial']))![1]!;
      const subject = openssl(['x509', '-in', c.cert, '-noout', '-subject', '-nameopt', 'compat']).replace(/^subject=\s*/, '').trim();
      // status, expiry, revocation time, serial, file, subject (openssl ca's index.txt)
      return `R\t491231235959Z\t250101000000Z\t${serial}\tunknown\t${subject}\n`;
    });
    writeFileSync(join(base, 'index.txt'), lines.join(''));
    writeFileSync(join(base, 'crlnumber'), '01\n');
    writeFileSync(join(base, 'ca.cnf'), `[ca]\ndefault_ca = d\n[d]\ndatabase = ${base}/index.txt\ncrlnumber = ${base}/crlnumber\ndefault_md = sha256\ndefault_crl_days = ${options.days ?? 30}\n`);
    openssl(['ca', '-batch', '-config', join(base, 'ca.cnf'), '-gencrl', '-keyfile', ca.key, '-cert', ca.cert, '-out', `${base}.crl`]);
    return `${base}.crl`;
  }

  /** The chain PEM of a leaf issued by the intermediate: intermediate then root. */
  issuers(): string[] {
    return [this.intermediate().cert, this.root().cert];
  }

  /**
   * A PFX of `leaf` with its key and the given issuer certificates, as `openssl pkcs12 -export`
   * writes it: OpenSSL 3's default (AES-256-CBC, PBKDF2, SHA-256 MAC) or `-legacy` (3DES keys,
   * RC2-40 certificates, SHA-1 MAC, what Windows exports).
   */
  pfx(leaf: Issued, options: { password: string; legacy?: boolean; issuers?: readonly string[]; out?: string; name?: string }): string {
    const out = options.out ?? `${this.#name('bundle')}.pfx`;
    const args = ['pkcs12', '-export', '-in', leaf.cert, '-inkey', leaf.key, '-out', out, '-passout', `pass:${options.password}`];
    if (options.issuers !== undefined && options.issuers.length > 0) {
      const chainFile = `${out}.chain.pem`;
      writeFileSync(chainFile, options.issuers.map((f) => readFileSync(f, 'utf8')).join(''));
      args.push('-certfile', chainFile);
    }
    if (options.legacy === true) args.push('-legacy');
    if (options.name !== undefined) args.push('-name', options.name);
    openssl(args);
    return out;
  }

  /** A PEM file with the leaf, its issuers and (optionally) its key, in that order. */
  pem(leaf: Issued, options: { issuers?: readonly string[]; withKey?: boolean; out?: string } = {}): string {
    const out = options.out ?? `${this.#name('bundle')}.pem`;
    const parts = [readFileSync(leaf.cert, 'utf8'), ...(options.issuers ?? []).map((f) => readFileSync(f, 'utf8'))];
    if (options.withKey !== false) parts.push(readFileSync(leaf.key, 'utf8'));
    writeFileSync(out, parts.join(''));
    return out;
  }
}
