/**
 * Per-site W3C extended logs, byte-compatible with IIS's `u_ex*.log` files so that LogParser,
 * GoAccess, AWStats and the like read them unchanged.
 *
 * Layout as IIS writes it (logInUTF8, the default, gives the `u_` prefix): `<directory>/W3SVC<id>/`
 * holding `u_exYYMMDD.log` (Daily), `u_exYYMMDDHH.log` (Hourly), `u_exYYMMWW.log` (Weekly, WW = week
 * of the month, weeks starting on Sunday), `u_exYYMM.log` (Monthly) or `u_extendN.log` (MaxSize).
 * Periods roll at UTC boundaries unless localTimeRollover; the timestamps inside are always UTC.
 * Lines end in CRLF, as on Windows. Each file, and each restart appending to one, begins with the
 * `#Software/#Version/#Date/#Fields` block; fields appear in IIS's fixed order whatever the order of
 * the configured flags.
 */
import { join } from 'node:path';
import { BufferedLogFile, LineLogFile, type LogPeriod } from './buffered-log-file.js';
import type { CustomLogFields } from './custom-log-fields.js';
import { logFileNaming, logFilePeriod, W3C_STEMS, withoutUtf8Prefix, type LogFilePeriod } from './log-file-naming.js';
import type { LogRecord, RequestLogFile } from './log-record.js';
import type { ListenerError } from '../../errors.js';

/** IIS's `logExtFileFlags` bits (applicationHost schema values). */
export const W3cLogFlag = {
  Date: 1,
  Time: 2,
  ClientIP: 4,
  UserName: 8,
  SiteName: 16,
  ComputerName: 32,
  ServerIP: 64,
  Method: 128,
  UriStem: 256,
  UriQuery: 512,
  HttpStatus: 1024,
  Win32Status: 2048,
  BytesSent: 4096,
  BytesRecv: 8192,
  TimeTaken: 16384,
  ServerPort: 32768,
  UserAgent: 65536,
  Cookie: 131072,
  Referer: 262144,
  ProtocolVersion: 524288,
  Host: 1048576,
  HttpSubStatus: 2097152,
} as const;
export type W3cLogFlagName = keyof typeof W3cLogFlag;

/**
 * IIS 10's default `logExtFileFlags`: Date, Time, ClientIP, UserName, ServerIP, Method, UriStem,
 * UriQuery, HttpStatus, Win32Status, TimeTaken, ServerPort, UserAgent, Referer, HttpSubStatus.
 */
export const W3C_DEFAULT_FLAGS =
  W3cLogFlag.Date | W3cLogFlag.Time | W3cLogFlag.ClientIP | W3cLogFlag.UserName | W3cLogFlag.ServerIP |
  W3cLogFlag.Method | W3cLogFlag.UriStem | W3cLogFlag.UriQuery | W3cLogFlag.HttpStatus |
  W3cLogFlag.Win32Status | W3cLogFlag.TimeTaken | W3cLogFlag.ServerPort | W3cLogFlag.UserAgent |
  W3cLogFlag.Referer | W3cLogFlag.HttpSubStatus;

/** The fields in the order IIS writes them, independent of flag order or value. */
const W3C_FIELDS: readonly (readonly [flag: number, name: string])[] = [
  [W3cLogFlag.Date, 'date'],
  [W3cLogFlag.Time, 'time'],
  [W3cLogFlag.SiteName, 's-sitename'],
  [W3cLogFlag.ComputerName, 's-computername'],
  [W3cLogFlag.ServerIP, 's-ip'],
  [W3cLogFlag.Method, 'cs-method'],
  [W3cLogFlag.UriStem, 'cs-uri-stem'],
  [W3cLogFlag.UriQuery, 'cs-uri-query'],
  [W3cLogFlag.ServerPort, 's-port'],
  [W3cLogFlag.UserName, 'cs-username'],
  [W3cLogFlag.ClientIP, 'c-ip'],
  [W3cLogFlag.ProtocolVersion, 'cs-version'],
  [W3cLogFlag.UserAgent, 'cs(User-Agent)'],
  [W3cLogFlag.Cookie, 'cs(Cookie)'],
  [W3cLogFlag.Referer, 'cs(Referer)'],
  [W3cLogFlag.Host, 'cs-host'],
  [W3cLogFlag.HttpStatus, 'sc-status'],
  [W3cLogFlag.HttpSubStatus, 'sc-substatus'],
  [W3cLogFlag.Win32Status, 'sc-win32-status'],
  [W3cLogFlag.BytesSent, 'sc-bytes'],
  [W3cLogFlag.BytesRecv, 'cs-bytes'],
  [W3cLogFlag.TimeTaken, 'time-taken'],
];

/**
 * Deliberately IIS's own product string, not Wharf's: log analysers (LogParser, AWStats, GoAccess,
 * SIEM parsers) recognise the IIS W3C dialect by this exact `#Software:` line.
 */
export const W3C_SOFTWARE = 'Microsoft Internet Information Services 10.0';

/** logFile `period` values. */
export type W3cLogPeriod = LogFilePeriod;

/** IIS's default logFile truncateSize (20 MB); it only matters for MaxSize. */
export const W3C_DEFAULT_TRUNCATE_SIZE = 20_971_520;

export interface W3cLogFileOptions {
  /** The site's logFile directory, already mapped to a Linux path; files go in `W3SVC<siteId>/` under it. */
  directory: string;
  siteId: number;
  /** logExtFileFlags as a bitmask (see W3cLogFlag). */
  fields: number;
  period: W3cLogPeriod;
  /** MaxSize: roll to the next `u_extendN.log` before a record would take the file past this many bytes. */
  truncateSize?: number;
  /** Roll periods at local-time boundaries (file names then use local dates); timestamps stay UTC. */
  localTimeRollover?: boolean;
  /** `s-sitename` holds `W3SVC<id>` when true (IIS default), else the site's name. */
  logSiteId?: boolean;
  /** logFile enabled; when false, write() does nothing. */
  enabled?: boolean;
  /** Custom fields (IIS 8.5+), appended after the standard ones; files then end in `_x.log`. */
  customFields?: CustomLogFields | undefined;
  /**
   * Central W3C logging (`log centralLogFileMode="CentralW3C"`): one file for every site, in
   * `<directory>/W3SVC/`, `s-sitename` being each record's `W3SVC<id>`; `siteId` is ignored.
   */
  central?: boolean;
  /** `log logInUTF8` (default true): file names carry the `u_` prefix. */
  utf8?: boolean;
  now?: () => number;
  flushIntervalMs?: number;
  onError?: (err: ListenerError) => void;
}

/** The `#Fields:` value for a flags bitmask, in IIS's fixed order. */
export function w3cFieldNames(flags: number): string {
  const names: string[] = [];
  for (const [flag, name] of W3C_FIELDS) if ((flags & flag) !== 0) names.push(name);
  return names.join(' ');
}

/** A header block as IIS and HTTP.sys write it, `#Date` being `time` in UTC. */
export function w3cHeaderBlock(software: string, time: number, fields: string): string {
  const stamp = new W3cTimestamp();
  stamp.set(time);
  return (
    `#Software: ${software}\r\n#Version: 1.0\r\n` +
    `#Date: ${stamp.date} ${stamp.time}\r\n#Fields: ${fields}\r\n`
  );
}

// Space, the C0 and C1 controls and DEL, and the Unicode line and paragraph separators: W3C
// fields are space-separated, one record per line, and tools that split lines the Unicode way
// (NEL U+0085, U+2028, U+2029) must not see a record end inside a value.
const UNSAFE_CHAR = /[\u0000-\u0020\u007f-\u009f\u2028\u2029]/;
const UNSAFE_CHARS = /[\u0000-\u0020\u007f-\u009f\u2028\u2029]/g;

/** W3C value encoding as IIS does it: empty → `-`; spaces and control characters → `+`. */
export function w3cField(value: string): string {
  if (value === '') return '-';
  // test() first: most values are clean, and replace() would copy them anyway.
  return UNSAFE_CHAR.test(value) ? value.replace(UNSAFE_CHARS, '+') : value;
}

/**
 * UTC `yyyy-mm-dd` and `hh:mm:ss` for a time, recomputed only when the second changes: a busy site
 * logs many records per second, and formatting a Date each time would dominate the line's cost.
 */
export class W3cTimestamp {
  date = '';
  time = '';
  #second = Number.NaN;

  set(time: number): void {
    const second = Math.floor(time / 1000);
    if (second === this.#second) return;
    this.#second = second;
    const iso = new Date(second * 1000).toISOString();
    this.date = iso.slice(0, 10);
    this.time = iso.slice(11, 19);
  }
}

/**
 * The time-based W3C file covering `time`, with its span (see log-file-naming.ts for the scheme).
 */
export function w3cLogPeriod(
  period: Exclude<W3cLogPeriod, 'MaxSize'>,
  time: number,
  localTimeRollover: boolean,
): LogPeriod {
  return logFilePeriod(W3C_STEMS.time, period, time, localTimeRollover);
}

/** One site's W3C log (or the central one). write() never blocks or throws; see BufferedLogFile for failure handling. */
export class W3cLogFile extends LineLogFile implements RequestLogFile {
  /** The folder this log's files go in: `<directory>/W3SVC<siteId>`, or `<directory>/W3SVC` when central. */
  readonly folder: string;
  /** Enabled flags in IIS field order, so formatting is one loop with no bit tests per field. */
  readonly #fields: readonly number[];
  /** `W3SVC<id>` when logSiteId, else undefined (the record's site name is used). */
  readonly #siteIdName: string | undefined;
  readonly #central: boolean;
  /** Central log: `W3SVC<id>` per site id, built once rather than per record. */
  readonly #siteNames = new Map<number, string>();
  readonly #custom: CustomLogFields | undefined;
  readonly #stamp = new W3cTimestamp();

  constructor(options: W3cLogFileOptions) {
    super(options.now);
    this.#central = options.central === true;
    this.folder = join(options.directory, this.#central ? 'W3SVC' : `W3SVC${options.siteId}`);
    const flags = options.fields;
    this.#fields = W3C_FIELDS.filter(([flag]) => (flags & flag) !== 0).map(([flag]) => flag);
    this.#siteIdName = options.logSiteId === false || this.#central ? undefined : `W3SVC${options.siteId}`;
    const custom = options.customFields !== undefined && options.customFields.count > 0 ? options.customFields : undefined;
    this.#custom = custom;
    if (options.enabled === false) return;
    let fieldNames = w3cFieldNames(flags);
    if (custom !== undefined) fieldNames = fieldNames === '' ? custom.names : fieldNames + ' ' + custom.names;
    this.file = new BufferedLogFile({
      directory: this.folder,
      naming: logFileNaming({
        stems: options.utf8 === false ? withoutUtf8Prefix(W3C_STEMS) : W3C_STEMS,
        period: options.period,
        truncateSize: options.truncateSize ?? W3C_DEFAULT_TRUNCATE_SIZE,
        localTime: options.localTimeRollover ?? false,
        suffix: custom === undefined ? '' : '_x',
      }),
      header: (time) => w3cHeaderBlock(W3C_SOFTWARE, time, fieldNames),
      description: this.#central ? 'central W3C log' : `W3C log of site ${options.siteId}`,
      now: options.now,
      flushIntervalMs: options.flushIntervalMs,
      onError: options.onError,
    });
  }

  /** Whether records must carry the response's headers (a custom field reads one). */
  get needsResponseHeaders(): boolean {
    return this.#custom?.needsResponseHeaders ?? false;
  }



  /** The record's line (CRLF-terminated) as it will appear in the file. */
  formatLine(record: LogRecord, time: number = record.time): string {
    this.#stamp.set(time);
    const fields = this.#fields;
    let line = '';
    for (let i = 0; i < fields.length; i++) {
      if (i > 0) line += ' ';
      line += this.#value(fields[i]!, record);
    }
    const custom = this.#custom;
    if (custom !== undefined) line += fields.length === 0 ? custom.format(record).slice(1) : custom.format(record);
    return line + '\r\n';
  }



  #centralSiteName(siteId: number): string {
    let name = this.#siteNames.get(siteId);
    if (name === undefined) this.#siteNames.set(siteId, (name = `W3SVC${siteId}`));
    return name;
  }

  #value(flag: number, r: LogRecord): string {
    switch (flag) {
      case W3cLogFlag.Date:
        return this.#stamp.date;
      case W3cLogFlag.Time:
        return this.#stamp.time;
      case W3cLogFlag.SiteName:
        if (this.#central) return this.#centralSiteName(r.siteId);
        return this.#siteIdName ?? w3cField(r.siteName);
      case W3cLogFlag.ComputerName:
        return w3cField(r.computerName);
      case W3cLogFlag.ServerIP:
        return w3cField(r.serverIp);
      case W3cLogFlag.Method:
        return w3cField(r.method);
      case W3cLogFlag.UriStem:
        return w3cField(r.uriStem);
      case W3cLogFlag.UriQuery:
        return w3cField(r.uriQuery);
      case W3cLogFlag.ServerPort:
        return String(r.serverPort);
      case W3cLogFlag.UserName:
        return w3cField(r.username);
      case W3cLogFlag.ClientIP:
        return w3cField(r.clientIp);
      case W3cLogFlag.ProtocolVersion:
        return w3cField(r.protocolVersion);
      case W3cLogFlag.UserAgent:
        return w3cField(r.userAgent);
      case W3cLogFlag.Cookie:
        return w3cField(r.cookie);
      case W3cLogFlag.Referer:
        return w3cField(r.referer);
      case W3cLogFlag.Host:
        return w3cField(r.host);
      case W3cLogFlag.HttpStatus:
        return String(r.status);
      case W3cLogFlag.HttpSubStatus:
        return String(r.subStatus);
      case W3cLogFlag.Win32Status:
        return String(r.win32Status);
      case W3cLogFlag.BytesSent:
        return String(r.bytesSent);
      case W3cLogFlag.BytesRecv:
        return String(r.bytesReceived);
      case W3cLogFlag.TimeTaken:
        // IIS logs whole milliseconds; callers measuring with performance.now() pass fractions.
        return String(Math.round(r.timeTakenMs));
      default:
        return '-';
    }
  }
}
