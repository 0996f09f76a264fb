/**
 * Certificate verbs (docs/cli.md, "Certificates"): `wharf cert import|list|delete` (the machine's
 * certificate store), `wharf sslcert add|show|delete` (HTTP.sys's SSL table, as netsh http edits
 * it), `wharf centralcert enable|disable|show` (IIS's Central Certificate Store). Each works on
 * the files under the system drive, with or without a running server; a running server sees the
 * change within seconds (src/tls/certificate-source.ts). Exit 0 on success, 1 on an error (printed
 * as `wharf: CODE: message`), 2 on a usage error.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TlsError, WharfError } from '../errors.js';
import { defaultSystemDrive } from '../server.js';
import { dnsNames, keyDescription, normalizeThumbprint, readCertificateFile, readCertificatesOnly, readRevocationList, thumbprintOf, validityOf, windowsName } from '../tls/certificate-file.js';
import { CertificateStore, DEFAULT_STORE, isTrustStore } from '../tls/certificate-store.js';
import { CentralStoreConfig, checkCentralStorePath, isPort } from '../tls/central-store.js';
import { entryFromAddArguments, entryTarget, formatShow, parseNetshArguments, SslBindingTable } from '../tls/ssl-bindings.js';
import { certificatesFromPem, parseCertificateData } from '../tls/certificate-file.js';
import type { AcmeHostState } from '../tls/acme.js';
import { tlsPaths } from '../tls/tls-paths.js';

export const CERTIFICATE_VERBS = ['cert', 'sslcert', 'centralcert'] as const;

export const CERTIFICATE_HELP = `  wharf cert import <file> [--store My] [--password <p> | --password-file <f>] [--key <file>]
  wharf cert list [--store My]
  wharf cert delete <thumbprint> [--store My] [--force]
  wharf sslcert add ipport=<ip:port> | hostnameport=<name:port> certhash=<thumbprint> [certstorename=My] [appid={guid}] [netsh options]
  wharf sslcert show [ipport=<ip:port> | hostnameport=<name:port>]
  wharf sslcert delete ipport=<ip:port> | hostnameport=<name:port>
  wharf centralcert enable --path <dir> [--password <p> | --password-file <f>]
  wharf centralcert disable | show
  wharf centralcert acme --directory <url> --email <address> --accept-tos [--directory-ca <pem>]
                         [--http-port <port>] [--tls-port <port>] | --disable
`;

const USAGE = `Usage:
${CERTIFICATE_HELP}
Every command also takes --system-drive <dir> (default as wharf start: $WHARF_SYSTEM_DRIVE, else
/var/lib/wharf as root, else ~/.local/state/wharf) and works without a running server; a running
server applies the change within seconds. See docs/cli.md, "Certificates".
`;

interface Io {
  out(text: string): void;
  err(text: string): void;
}

const stdio: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

class UsageError extends Error {}

/** `wharf: CODE: message` for Wharf's errors; anything else is a bug and keeps its stack. */
function failure(io: Io, err: unknown): number {
  if (err instanceof UsageError) {
    io.err(`wharf: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (err instanceof WharfError) {
    io.err(`wharf: ${err.code}: ${err.message}\n`);
    return 1;
  }
  throw err;
}

function parse(argv: readonly string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { ...options, 'system-drive': { type: 'string' }, help: { type: 'boolean' } } });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function systemDriveOf(values: Record<string, string | boolean | undefined>): string {
  const v = values['system-drive'];
  return resolve(typeof v === 'string' ? v : defaultSystemDrive());
}

/** --password or --password-file (its first line; a file keeps the password out of `ps`). '' when neither. */
function passwordOf(values: Record<string, string | boolean | undefined>): string {
  const p = values['password'];
  const f = values['password-file'];
  if (typeof p === 'string' && typeof f === 'string') throw new UsageError('give --password or --password-file, not both');
  if (typeof f === 'string') {
    try {
      return readFileSync(f, 'utf8').split(/\r?\n/)[0] ?? '';
    } catch (err) {
      throw new TlsError('TLS_FILE_READ', `cannot read the password file ${f}: ${(err as Error).message}`, { cause: err });
    }
  }
  return typeof p === 'string' ? p : '';
}

/** 2026-12-06T02:58:52Z: unambiguous, sortable, UTC. */
function isoDate(text: string): string {
  return new Date(Date.parse(text)).toISOString().replace('.000Z', 'Z');
}

// ---- wharf cert -------------------------------------------------------------------------------

/**
 * `wharf cert import ca.crt --store Root|CA`: certificates without keys, each one on its own (a CA
 * bundle file imports all of its certificates), as Windows imports into its trust stores.
 */
async function importTrusted(store: CertificateStore, storeName: string, file: string, values: Record<string, string | boolean | undefined>, io: Io): Promise<number> {
  if (typeof values['key'] === 'string') throw new UsageError(`--key is not used for store ${storeName}: it holds certificates without keys`);
  const crl = await readRevocationList(file);
  if (crl !== undefined) {
    const r = store.importRevocationList(crl.der, { store: storeName });
    io.out(`${r.replaced ? 'Replaced in' : 'Imported into'} store ${r.store}: the revocation list of ${crl.issuer} (${crl.revoked} revoked certificate(s)${crl.nextUpdate !== undefined ? `, next update ${isoDate(crl.nextUpdate.toISOString())}` : ''}), ${r.file}\n`);
    if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < Date.now()) io.err(`wharf: warning: ${file}: the list was due to be replaced on ${isoDate(crl.nextUpdate.toISOString())}; imported all the same\n`);
    return 0;
  }
  const certs = readCertificatesOnly(file, { password: passwordOf(values) });
  const friendlyName = typeof values['friendly-name'] === 'string' ? values['friendly-name'] : undefined;
  const rows: string[] = [];
  let folder = '';
  let replacedAll = true;
  for (const c of certs) {
    const r = store.importCertificate(c, { store: storeName, importedFrom: file, ...(friendlyName !== undefined ? { friendlyName } : {}) });
    folder = `${r.store} (${store.folder(r.store)})`;
    replacedAll &&= r.replaced;
    rows.push(`${r.thumbprint.padEnd(42)}${windowsName(c.subject)}\n`);
    const v = validityOf(c);
    if (v === 'expired') io.err(`wharf: warning: TLS_EXPIRED: ${file}: ${windowsName(c.subject)} expired on ${isoDate(c.validTo)}; imported all the same\n`);
    // A self-signed certificate is trusted as itself; any other one must be a CA to vouch for a client.
    if (!c.ca && !c.checkIssued(c)) io.err(`wharf: warning: ${file}: ${windowsName(c.subject)} is not a CA certificate (no basicConstraints CA:TRUE): it cannot vouch for client certificates\n`);
  }
  io.out(`${replacedAll ? 'Replaced in' : 'Imported into'} store ${folder}:\n\n`);
  io.out(`${'Thumbprint'.padEnd(42)}Subject\n${'----------'.padEnd(42)}-------\n${rows.join('')}`);
  return 0;
}

async function cert(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    store: { type: 'string' },
    password: { type: 'string' },
    'password-file': { type: 'string' },
    key: { type: 'string' },
    'friendly-name': { type: 'string' },
    force: { type: 'boolean' },
  });
  const verb = positionals[0];
  if (values['help'] === true || verb === undefined) {
    io.out(USAGE);
    return verb === undefined && values['help'] !== true ? 2 : 0;
  }
  const store = new CertificateStore(systemDriveOf(values));
  const storeName = typeof values['store'] === 'string' ? values['store'] : DEFAULT_STORE;
  switch (verb) {
    case 'import': {
      if (positionals.length !== 2) throw new UsageError('wharf cert import takes one file');
      const file = resolve(positionals[1]!);
      if (isTrustStore(storeName)) return await importTrusted(store, storeName, file, values, io);
      const bundle = readCertificateFile(file, { password: passwordOf(values), keyFile: typeof values['key'] === 'string' ? resolve(values['key']) : undefined });
      const validity = validityOf(bundle.leaf);
      const friendlyName = typeof values['friendly-name'] === 'string' ? values['friendly-name'] : undefined;
      const r = store.import(bundle, { store: storeName, importedFrom: file, ...(friendlyName !== undefined ? { friendlyName } : {}) });
      if (validity === 'expired') io.err(`wharf: warning: TLS_EXPIRED: ${file}: the certificate expired on ${isoDate(bundle.leaf.validTo)}; imported all the same\n`);
      if (validity === 'not-yet-valid') io.err(`wharf: warning: TLS_EXPIRED: ${file}: the certificate is not valid before ${isoDate(bundle.leaf.validFrom)}; imported all the same\n`);
      for (const u of bundle.unrelated) io.err(`wharf: warning: ${file}: left out ${windowsName(u.subject)} (${thumbprintOf(u)}): it is not an issuer of the certificate\n`);
      io.out(`${r.replaced ? 'Replaced in' : 'Imported into'} store ${r.store} (${store.folder(r.store)}):\n\n`);
      io.out(`${'Thumbprint'.padEnd(42)}Subject\n${'----------'.padEnd(42)}-------\n${r.thumbprint.padEnd(42)}${windowsName(bundle.leaf.subject)}\n`);
      if (bundle.chain.length > 1) io.out(`\nwith ${bundle.chain.length - 1} issuer certificate(s): ${bundle.chain.slice(1).map((c) => windowsName(c.subject)).join('; ')}\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length !== 1) throw new UsageError('wharf cert list takes no argument (--store <name> chooses the store)');
      const { certificates, broken } = store.list(storeName);
      const folder = store.folder(storeName);
      io.out(`Store: ${folder.slice(store.root.length + 1)} (${folder}), ${certificates.length} certificate(s)\n`);
      const now = Date.now();
      for (const c of certificates) {
        const v = validityOf(c.leaf, now);
        const field = (name: string, value: string): string => `${name.padEnd(13)} : ${value}\n`;
        io.out(
          '\n' +
            field('Thumbprint', c.thumbprint) +
            field('Subject', windowsName(c.leaf.subject)) +
            field('Issuer', windowsName(c.leaf.issuer)) +
            field('NotBefore', isoDate(c.leaf.validFrom)) +
            field('NotAfter', isoDate(c.leaf.validTo) + (v === 'expired' ? ' (expired)' : v === 'not-yet-valid' ? ' (not yet valid)' : '')) +
            field('DnsNameList', dnsNames(c.leaf).join(', ')) +
            field('FriendlyName', c.friendlyName) +
            field('HasPrivateKey', c.hasPrivateKey ? 'True' : 'False') +
            field('KeyAlgorithm', keyDescription(c.leaf.publicKey)) +
            field('Chain', `${c.chain.length} certificate(s)${c.chain.length > 1 ? `: ${c.chain.slice(1).map((x) => windowsName(x.subject)).join('; ')}` : ''}`),
        );
      }
      for (const b of broken) io.err(`wharf: ${b.file}: ${b.problem}\n`);
      return broken.length === 0 ? 0 : 1;
    }
    case 'delete': {
      if (positionals.length !== 2) throw new UsageError('wharf cert delete takes one thumbprint');
      const thumbprint = normalizeThumbprint(positionals[1]!);
      if (thumbprint === undefined) throw new UsageError(`"${positionals[1]}" is not a thumbprint (40 hex digits)`);
      const folder = store.folder(storeName);
      const canonical = folder.slice(store.root.length + 1);
      if (store.get(canonical, thumbprint) === undefined) throw new TlsError('TLS_CERT_NOT_FOUND', `certificate ${thumbprint} is not in store ${canonical} (${folder})`);
      const users = new SslBindingTable(systemDriveOf(values)).read().filter((e) => e.certhash === thumbprint && e.certstorename.toLowerCase() === canonical.toLowerCase());
      if (users.length > 0 && values['force'] !== true) {
        throw new TlsError('TLS_CERT_IN_USE', `certificate ${thumbprint} is used by ${users.map((e) => `${e.kind}=${e.key}`).join(', ')}; delete ${users.length === 1 ? 'that SSL binding' : 'those SSL bindings'} first (wharf sslcert delete …), or delete anyway with --force`);
      }
      store.delete(canonical, thumbprint);
      io.out(`Deleted certificate ${thumbprint} from store ${canonical}.\n`);
      if (users.length > 0) io.err(`wharf: warning: ${users.map((e) => `${e.kind}=${e.key}`).join(', ')} now name${users.length === 1 ? 's' : ''} a certificate that is not in the store: those https bindings stop serving\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown cert command "${verb}" (import, list, delete)`);
  }
}

// ---- wharf sslcert (netsh http … sslcert) ------------------------------------------------------

/** netsh's error lines (its Win32 error and text), then Wharf's own, with the code. */
function netshFailure(io: Io, action: 'add' | 'deletion' | 'show', err: unknown): number {
  if (!(err instanceof TlsError)) return failure(io, err);
  const win32: Partial<Record<string, [number, string]>> = {
    TLS_SSLCERT_EXISTS: [183, 'Cannot create a file when that file already exists.'],
    TLS_SSLCERT_NOT_FOUND: [2, 'The system cannot find the file specified.'],
    TLS_SSLCERT_PARAMETER: [87, 'The parameter is incorrect.'],
  };
  // A certificate that is missing, keyless or unreadable: HTTP.sys answers 1312 for all of them.
  const [n, text] = win32[err.code] ?? [1312, 'A specified logon session does not exist. It may already have been terminated.'];
  io.err(action === 'show' ? `${text}\n\n` : `SSL Certificate ${action} failed, Error: ${n}\n${text}\n\n`);
  io.err(`wharf: ${err.code}: ${err.message}\n`);
  return 1;
}

async function sslcert(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {});
  const verb = positionals[0];
  if (values['help'] === true || verb === undefined) {
    io.out(USAGE);
    return verb === undefined && values['help'] !== true ? 2 : 0;
  }
  const systemDrive = systemDriveOf(values);
  const table = new SslBindingTable(systemDrive);
  const args = positionals.slice(1);
  switch (verb) {
    case 'add':
      try {
        const entry = entryFromAddArguments(args);
        // HTTP.sys checks the certificate (and its private key) when the entry is added.
        new CertificateStore(systemDrive).material(entry.certstorename, entry.certhash);
        await table.add(entry);
      } catch (err) {
        return netshFailure(io, 'add', err);
      }
      io.out('\nSSL Certificate successfully added\n\n');
      return 0;
    case 'delete':
      try {
        const target = entryTarget(parseNetshArguments(args));
        await table.delete(target.kind, target.key);
      } catch (err) {
        return netshFailure(io, 'deletion', err);
      }
      io.out('\nSSL Certificate successfully deleted\n\n');
      return 0;
    case 'show': {
      let entries;
      try {
        entries = table.read();
        if (args.length > 0) {
          const target = entryTarget(parseNetshArguments(args));
          entries = entries.filter((e) => e.kind === target.kind && e.key === target.key);
          if (entries.length === 0) throw new TlsError('TLS_SSLCERT_NOT_FOUND', `there is no SSL binding for ${target.kind}=${target.key}`);
        }
      } catch (err) {
        if (err instanceof TlsError && err.code === 'TLS_SSLCERT_NOT_FOUND') io.out(formatShow([]));
        return netshFailure(io, 'show', err);
      }
      io.out(formatShow(entries));
      return 0;
    }
    default:
      throw new UsageError(`unknown sslcert command "${verb}" (add, show, delete)`);
  }
}

// ---- wharf centralcert ------------------------------------------------------------------------

/** The renewal manager's backoff per host (<systemDrive>/wharf/acme/state.json), for `show`. */
function acmeState(systemDrive: string): Record<string, AcmeHostState> {
  try {
    const data = JSON.parse(readFileSync(join(tlsPaths(systemDrive).base, 'acme', 'state.json'), 'utf8')) as { hosts?: Record<string, AcmeHostState> };
    return data.hosts ?? {};
  } catch {
    return {};
  }
}

function centralLine(label: string, value: string): string {
  return `    ${label.padEnd(32)} : ${value}\n`;
}

/** Opens every .pfx of `dir` with `password`: the ones that do not open are worth a warning now. */
function checkCentralFiles(dir: string, password: string): { files: number; failures: string[] } {
  const failures: string[] = [];
  let files = 0;
  for (const name of readdirSync(dir).sort()) {
    if (!name.toLowerCase().endsWith('.pfx')) continue;
    files++;
    const path = join(dir, name);
    try {
      parseCertificateData(readFileSync(path), path, { password });
    } catch (err) {
      failures.push(err instanceof WharfError ? `${err.code}: ${err.message}` : `${path}: ${(err as Error).message}`);
    }
  }
  return { files, failures };
}

async function centralcert(argv: readonly string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    path: { type: 'string' },
    password: { type: 'string' },
    'password-file': { type: 'string' },
    directory: { type: 'string' },
    email: { type: 'string' },
    'accept-tos': { type: 'boolean' },
    'directory-ca': { type: 'string' },
    'http-port': { type: 'string' },
    'tls-port': { type: 'string' },
    disable: { type: 'boolean' },
  });
  const verb = positionals[0];
  if (values['help'] === true || verb === undefined) {
    io.out(USAGE);
    return verb === undefined && values['help'] !== true ? 2 : 0;
  }
  if (positionals.length !== 1) throw new UsageError(`wharf centralcert ${verb} takes no argument`);
  const config = new CentralStoreConfig(systemDriveOf(values));
  switch (verb) {
    case 'enable': {
      if (typeof values['path'] !== 'string') throw new UsageError('wharf centralcert enable needs --path <folder of .pfx files>');
      const physicalPath = checkCentralStorePath(values['path']);
      const privateKeyPassword = passwordOf(values);
      await config.update((current) => ({ ...current, enabled: true, physicalPath, privateKeyPassword }));
      const { files, failures } = checkCentralFiles(physicalPath, privateKeyPassword);
      io.out(`Central Certificate Store enabled: ${physicalPath} (${files} .pfx file${files === 1 ? '' : 's'})\n`);
      for (const f of failures) io.err(`wharf: warning: ${f}\n`);
      return 0;
    }
    case 'disable': {
      const current = config.read();
      if (current === undefined || !current.enabled) {
        io.out('Central Certificate Store is already disabled.\n');
        return 0;
      }
      // The settings are kept (as IIS keeps them), so enable needs only --path again to return.
      await config.update((c) => ({ ...(c ?? current), enabled: false }));
      io.out('Central Certificate Store disabled.\n');
      return 0;
    }
    case 'acme': {
      const current = config.read();
      if (values['disable'] === true) {
        if (current?.acme === undefined) {
          io.out('ACME is not configured.\n');
          return 0;
        }
        await config.update((c) => ({ ...(c ?? current), acme: undefined }));
        io.out('ACME disabled: certificates in the Central Certificate Store are no longer ordered or renewed.\n');
        return 0;
      }
      const directory = values['directory'];
      const email = values['email'];
      if (typeof directory !== 'string' || typeof email !== 'string') throw new UsageError('wharf centralcert acme needs --directory <ACME directory URL> and --email <address> (or --disable)');
      let url: URL;
      try {
        url = new URL(directory);
      } catch {
        throw new UsageError(`--directory ${directory} is not a URL`);
      }
      if (url.protocol !== 'https:') throw new UsageError(`--directory must be an https URL (RFC 8555 §6.1), not ${directory}`);
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError(`--email ${email} is not an e-mail address`);
      if (values['accept-tos'] !== true) throw new UsageError(`the CA's terms of service must be accepted: read them (their URL is in ${directory}), then add --accept-tos`);
      let directoryCa: string | undefined;
      if (typeof values['directory-ca'] === 'string') {
        directoryCa = resolve(values['directory-ca']);
        try {
          if (certificatesFromPem(readFileSync(directoryCa, 'utf8')).length === 0) throw new Error('no CERTIFICATE block');
        } catch (err) {
          throw new TlsError('TLS_FILE_READ', `--directory-ca ${directoryCa}: not a PEM certificate file (${(err as Error).message})`, { cause: err });
        }
      }
      // The local ports the CA's validation connections arrive on (80 and 443 unless forwarded).
      const port = (name: 'http-port' | 'tls-port'): number | undefined => {
        const v = values[name];
        if (typeof v !== 'string') return undefined;
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!isPort(n)) throw new UsageError(`--${name} ${v} is not a port number (1-65535)`);
        return n;
      };
      const httpPort = port('http-port');
      const tlsPort = port('tls-port');
      if (current === undefined || !current.enabled) {
        throw new TlsError('TLS_CCS_PATH', 'ACME fills the Central Certificate Store: enable it first (wharf centralcert enable --path <folder> [--password …])');
      }
      await config.update((c) => ({ ...(c ?? current), acme: { directory, email, acceptedTos: true, ...(directoryCa !== undefined ? { directoryCa } : {}), ...(httpPort !== undefined ? { httpPort } : {}), ...(tlsPort !== undefined ? { tlsPort } : {}) } }));
      io.out(`ACME enabled: a running server orders certificates from ${directory} for https bindings with a host name and sslFlags 2, into ${current.physicalPath}.\n`);
      return 0;
    }
    case 'show': {
      const s = config.read();
      let out = 'Central Certificate Store:\n';
      out += centralLine('Enabled', s?.enabled === true ? 'True' : 'False');
      out += centralLine('Physical Path', s?.physicalPath ?? '');
      out += centralLine('Certificate Private Key Password', s === undefined ? '' : s.privateKeyPassword === '' ? '(none)' : '(set)');
      if (s !== undefined) {
        let count: string;
        try {
          count = String(readdirSync(s.physicalPath).filter((n) => n.toLowerCase().endsWith('.pfx')).length);
        } catch (err) {
          count = `(cannot read the folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
        }
        out += centralLine('Certificate Files (.pfx)', count);
      }
      if (s?.acme !== undefined) {
        out += centralLine('ACME Directory', s.acme.directory);
        out += centralLine('ACME Contact', s.acme.email);
        out += centralLine('ACME Terms of Service Accepted', s.acme.acceptedTos ? 'True' : 'False');
        if (s.acme.directoryCa !== undefined) out += centralLine('ACME Directory CA', s.acme.directoryCa);
        out += centralLine('ACME HTTP-01 Port', String(s.acme.httpPort ?? 80));
        out += centralLine('ACME TLS-ALPN-01 Port', String(s.acme.tlsPort ?? 443));
        for (const [host, st] of Object.entries(acmeState(systemDriveOf(values)))) {
          out += centralLine(`ACME ${host}`, `${st.failures} failed attempt(s) in a row; next attempt not before ${new Date(st.nextAttemptAt).toISOString()}${st.lastError !== undefined ? ` (last: ${st.lastError})` : ''}`);
        }
      }
      out += centralLine('Settings File', config.file);
      io.out(out);
      return 0;
    }
    default:
      throw new UsageError(`unknown centralcert command "${verb}" (enable, disable, show, acme)`);
  }
}

/** Runs `wharf cert|sslcert|centralcert …`; returns the exit code. */
export async function runCertificateCommand(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [group, ...rest] = argv;
  try {
    if (group === 'cert') return await cert(rest, io);
    if (group === 'sslcert') return await sslcert(rest, io);
    if (group === 'centralcert') return await centralcert(rest, io);
    throw new UsageError(`unknown command "${group}"`);
  } catch (err) {
    return failure(io, err);
  }
}
