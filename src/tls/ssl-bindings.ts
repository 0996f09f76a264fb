/**
 * HTTP.sys's SSL bindings table (Windows keeps it in the registry and edits it with
 * `netsh http add|show|delete sslcert`), as a JSON file under the system drive. Two kinds of
 * entry, as in HTTP.sys: `ipport` (an address and port; 0.0.0.0 and [::] stand for every IPv4 and
 * IPv6 address) and `hostnameport` (a host name and port, chosen by SNI: what a binding with
 * sslFlags 1 uses). Parameters and output follow netsh; the ones with no meaning on Linux are kept
 * and shown with netsh's defaults.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { TlsError } from '../errors.js';
import { normalizeThumbprint } from './certificate-file.js';
import { canonicalStoreName, DEFAULT_STORE } from './certificate-store.js';
import { ensureDirectory, withFileLock, writeFileAtomic } from './secure-file.js';
import { tlsPaths } from './tls-paths.js';
import type { SslBindingEntry } from './tls-types.js';

/** The application id IIS registers its https bindings with. */
export const IIS_APPID = '{4dc3e181-e14b-4a21-b022-59fc669b0914}';

/** netsh's other `add sslcert` parameters, their kind, and the label and default `show` prints. */
const OPTIONS = [
  { name: 'verifyclientcertrevocation', kind: 'switch', label: 'Verify Client Certificate Revocation', unset: 'Enabled' },
  { name: 'verifyrevocationwithcachedclientcertonly', kind: 'switch', label: 'Verify Revocation Using Cached Client Certificate Only', unset: 'Disabled' },
  { name: 'usagecheck', kind: 'switch', label: 'Usage Check', unset: 'Enabled' },
  { name: 'revocationfreshnesstime', kind: 'uint', label: 'Revocation Freshness Time', unset: '0' },
  { name: 'urlretrievaltimeout', kind: 'uint', label: 'URL Retrieval Timeout', unset: '0' },
  { name: 'sslctlidentifier', kind: 'string', label: 'Ctl Identifier', unset: '(null)' },
  { name: 'sslctlstorename', kind: 'string', label: 'Ctl Store Name', unset: '(null)' },
  { name: 'dsmapperusage', kind: 'switch', label: 'DS Mapper Usage', unset: 'Disabled' },
  { name: 'clientcertnegotiation', kind: 'switch', label: 'Negotiate Client Certificate', unset: 'Disabled' },
  { name: 'reject', kind: 'switch', label: 'Reject Connections', unset: 'Disabled' },
  // The newer flags print Set / Not Set.
  { name: 'disablehttp2', kind: 'flag', label: 'Disable HTTP2', unset: 'Not Set' },
  { name: 'disablequic', kind: 'flag', label: 'Disable QUIC', unset: 'Not Set' },
  { name: 'disabletls12', kind: 'flag', label: 'Disable TLS1.2', unset: 'Not Set' },
  { name: 'disabletls13', kind: 'flag', label: 'Disable TLS1.3', unset: 'Not Set' },
  { name: 'disableocspstapling', kind: 'flag', label: 'Disable OCSP Stapling', unset: 'Not Set' },
  { name: 'enabletokenbinding', kind: 'flag', label: 'Enable Token Binding', unset: 'Not Set' },
  { name: 'logextendedevents', kind: 'flag', label: 'Log Extended Events', unset: 'Not Set' },
  { name: 'disablelegacytls', kind: 'flag', label: 'Disable Legacy TLS Versions', unset: 'Not Set' },
  { name: 'enablesessionticket', kind: 'flag', label: 'Enable Session Ticket', unset: 'Not Set' },
] as const;

const OPTION_NAMES: ReadonlySet<string> = new Set(OPTIONS.map((o) => o.name));

function parameterError(message: string): TlsError {
  return new TlsError('TLS_SSLCERT_PARAMETER', message);
}

/** `a.b.c.d:port` or `[v6]:port` → normalised address and port (IPv6 lower case, compressed by URL). */
export function parseIpPort(text: string): { host: string; port: number; key: string } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text.trim());
  const port = m !== null ? Number(m[3]) : NaN;
  if (m === null || port < 1 || port > 65535) {
    throw parameterError(`ipport=${text} is not an IP address and port (e.g. 0.0.0.0:443, 10.0.0.1:443, [::]:443)`);
  }
  if (m[2] !== undefined) {
    if (isIP(m[2]) !== 4) throw parameterError(`ipport=${text}: ${m[2]} is not an IPv4 address`);
    return { host: m[2], port, key: `${m[2]}:${port}` };
  }
  const raw = m[1]!;
  if (isIP(raw) !== 6) throw parameterError(`ipport=${text}: ${raw} is not an IPv6 address`);
  const host = new URL(`http://[${raw}]/`).hostname.slice(1, -1); // canonical form (RFC 5952)
  return { host, port, key: `[${host}]:${port}` };
}

/** `name:port` → lower-case host name and port. */
export function parseHostnamePort(text: string): { host: string; port: number; key: string } {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(text.trim());
  const port = m !== null ? Number(m[2]) : NaN;
  if (m === null || port < 1 || port > 65535) throw parameterError(`hostnameport=${text} is not a host name and port (e.g. www.example.com:443)`);
  const host = m[1]!.toLowerCase().replace(/\.$/, '');
  if (!/^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/.test(host) || host.length > 253) {
    throw parameterError(`hostnameport=${text}: "${m[1]}" is not a host name`);
  }
  return { host, port, key: `${host}:${port}` };
}

/** `key=value` arguments as netsh takes them (names are case-insensitive). */
export function parseNetshArguments(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw parameterError(`"${arg}" is not tag=value (netsh's form, e.g. ipport=0.0.0.0:443)`);
    const name = arg.slice(0, eq).toLowerCase();
    if (out.has(name)) throw parameterError(`${name}= is given twice`);
    out.set(name, arg.slice(eq + 1));
  }
  return out;
}

/** The entry `ipport=` or `hostnameport=` names (exactly one of them). */
export function entryTarget(params: Map<string, string>): { kind: 'ipport' | 'hostnameport'; host: string; port: number; key: string } {
  if (params.has('ccs') || params.has('scopedccs') || params.has('urlprefix')) {
    throw parameterError('ccs=, scopedccs= and urlprefix= entries are not used by Wharf: a binding with sslFlags 2 reads the Central Certificate Store directly (wharf centralcert enable)');
  }
  const ip = params.get('ipport');
  const name = params.get('hostnameport');
  if ((ip === undefined) === (name === undefined)) throw parameterError('give exactly one of ipport=<ip:port> and hostnameport=<name:port>');
  return ip !== undefined ? { kind: 'ipport', ...parseIpPort(ip) } : { kind: 'hostnameport', ...parseHostnamePort(name!) };
}

/** `wharf sslcert add …` parameters → an entry (validated; the certificate is checked by the caller). */
export function entryFromAddArguments(args: readonly string[]): SslBindingEntry {
  const params = parseNetshArguments(args);
  const target = entryTarget(params);
  const hash = params.get('certhash');
  if (hash === undefined) throw parameterError('certhash=<thumbprint> is required');
  const certhash = normalizeThumbprint(hash);
  if (certhash === undefined) throw parameterError(`certhash=${hash} is not a SHA-1 thumbprint (40 hex digits)`);
  const storeGiven = params.get('certstorename');
  if (target.kind === 'hostnameport' && storeGiven === undefined) {
    throw parameterError('certstorename= is required for a hostnameport entry (as netsh requires it), e.g. certstorename=My');
  }
  let certstorename = '';
  if (storeGiven !== undefined) {
    const canonical = canonicalStoreName(storeGiven);
    if (canonical === undefined) throw parameterError(`certstorename=${storeGiven} is not a store name`);
    certstorename = canonical;
  }
  let appid = IIS_APPID;
  const appidGiven = params.get('appid');
  if (appidGiven !== undefined) {
    const g = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/.exec(appidGiven);
    if (g === null) throw parameterError(`appid=${appidGiven} is not a GUID ({xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx})`);
    appid = `{${g[1]!.toLowerCase()}}`;
  }
  const options: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name === 'ipport' || name === 'hostnameport' || name === 'certhash' || name === 'certstorename' || name === 'appid') continue;
    const spec = OPTIONS.find((o) => o.name === name);
    if (spec === undefined) throw parameterError(`${name}= is not a parameter of add sslcert`);
    if (spec.kind === 'switch' || spec.kind === 'flag') {
      const v = value.toLowerCase();
      if (v !== 'enable' && v !== 'disable') throw parameterError(`${name}=${value}: expected enable or disable`);
      options[name] = v;
    } else if (spec.kind === 'uint') {
      if (!/^\d{1,10}$/.test(value) || Number(value) > 0xffffffff) throw parameterError(`${name}=${value}: expected an unsigned number`);
      options[name] = String(Number(value));
    } else {
      options[name] = value;
    }
  }
  return {
    kind: target.kind,
    key: target.key,
    host: target.host,
    port: target.port,
    certhash,
    certstorename: certstorename || DEFAULT_STORE,
    certstorenameGiven: storeGiven !== undefined,
    appid,
    options,
  };
}

/** One line of netsh's show output: labels padded to 28 characters, then " : ". */
function line(label: string, value: string): string {
  return `    ${label.padEnd(28)} : ${value}\n`;
}

function optionValue(spec: (typeof OPTIONS)[number], value: string | undefined): string {
  if (value === undefined) return spec.unset;
  if (spec.kind === 'switch') return value === 'enable' ? 'Enabled' : 'Disabled';
  if (spec.kind === 'flag') return value === 'enable' ? 'Set' : 'Not Set';
  return value;
}

/** One entry, as `netsh http show sslcert` prints it (followed by a blank line). */
export function formatEntry(e: SslBindingEntry): string {
  let out = line(e.kind === 'ipport' ? 'IP:port' : 'Hostname:port', e.key);
  out += line('Certificate Hash', e.certhash.toLowerCase());
  out += line('Application ID', e.appid);
  out += line('Certificate Store Name', e.certstorenameGiven ? e.certstorename : '(null)');
  for (const spec of OPTIONS) out += line(spec.label, optionValue(spec, e.options[spec.name]));
  return out + '\n';
}

/** `netsh http show sslcert` output for these entries. */
export function formatShow(entries: readonly SslBindingEntry[]): string {
  return '\nSSL Certificate bindings:\n-------------------------\n\n' + entries.map(formatEntry).join('');
}

interface TableFile {
  readonly version: 1;
  readonly entries: readonly SslBindingEntry[];
}

function validEntry(v: unknown): v is SslBindingEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    (e['kind'] === 'ipport' || e['kind'] === 'hostnameport') &&
    typeof e['key'] === 'string' &&
    typeof e['host'] === 'string' &&
    typeof e['port'] === 'number' &&
    typeof e['certhash'] === 'string' &&
    normalizeThumbprint(e['certhash']) === e['certhash'] &&
    typeof e['certstorename'] === 'string' &&
    typeof e['certstorenameGiven'] === 'boolean' &&
    typeof e['appid'] === 'string' &&
    typeof e['options'] === 'object' &&
    e['options'] !== null &&
    Object.values(e['options'] as object).every((x) => typeof x === 'string') &&
    Object.keys(e['options'] as object).every((k) => OPTION_NAMES.has(k))
  );
}

/** The table file: read whole, changed under a lock, written atomically. */
export class SslBindingTable {
  readonly file: string;
  readonly #folder: string;

  constructor(systemDrive: string) {
    const paths = tlsPaths(systemDrive);
    this.file = paths.sslTable;
    this.#folder = paths.http;
  }

  /** Every entry, in the order added. A missing file is an empty table. */
  read(): SslBindingEntry[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return [];
      throw new TlsError('TLS_FILE_READ', `cannot read the SSL bindings table ${this.file}: ${e.message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new TlsError('TLS_TABLE_INVALID', `${this.file}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    const entries = (data as Partial<TableFile> | null)?.entries;
    if ((data as Partial<TableFile> | null)?.version !== 1 || !Array.isArray(entries)) {
      throw new TlsError('TLS_TABLE_INVALID', `${this.file}: expected {"version": 1, "entries": [...]}`);
    }
    const bad = entries.findIndex((e) => !validEntry(e));
    if (bad >= 0) throw new TlsError('TLS_TABLE_INVALID', `${this.file}: entry ${bad + 1} is not a valid SSL binding`);
    return entries as SslBindingEntry[];
  }

  /** Adds an entry; TLS_SSLCERT_EXISTS when its ipport/hostnameport is taken (netsh: Error 183). */
  async add(entry: SslBindingEntry): Promise<void> {
    await this.#change((entries) => {
      if (entries.some((e) => e.kind === entry.kind && e.key === entry.key)) {
        throw new TlsError('TLS_SSLCERT_EXISTS', `an SSL binding for ${entry.kind}=${entry.key} exists already (delete it first: wharf sslcert delete ${entry.kind}=${entry.key})`);
      }
      return [...entries, entry];
    });
  }

  /** Removes an entry; TLS_SSLCERT_NOT_FOUND when there is none (netsh: Error 2). */
  async delete(kind: SslBindingEntry['kind'], key: string): Promise<SslBindingEntry> {
    let removed: SslBindingEntry | undefined;
    await this.#change((entries) => {
      removed = entries.find((e) => e.kind === kind && e.key === key);
      if (removed === undefined) throw new TlsError('TLS_SSLCERT_NOT_FOUND', `there is no SSL binding for ${kind}=${key}`);
      return entries.filter((e) => e !== removed);
    });
    return removed!;
  }

  async #change(edit: (entries: SslBindingEntry[]) => SslBindingEntry[]): Promise<void> {
    ensureDirectory(this.#folder, 0o755);
    await withFileLock(this.file, () => {
      const next = edit(this.read());
      const file: TableFile = { version: 1, entries: next };
      writeFileAtomic(this.file, JSON.stringify(file, null, 2) + '\n', 0o644);
    });
  }
}
