/**
 * IIS's two fixed (not configurable) log formats besides W3C, `logFormat="IIS"` and
 * `logFormat="NCSA"`. Both record local time, have no header block, and — unlike W3C — always
 * name and roll their files by local time (localTimeRollover only concerns W3C).
 *
 * IIS format, `u_inYYMMDD.log`: fifteen fields, each followed by `, ` (the last by `,` alone):
 *   client IP, user, date `M/D/YYYY`, time `H:mm:ss`, service and instance `W3SVC<id>`, server
 *   name, server IP, time taken (ms), bytes received, bytes sent, status, Win32 status, verb,
 *   target (the URL path), parameters (the query).
 *   `203.0.113.9, -, 5/1/2024, 2:00:03, W3SVC1, WEB01, 10.0.0.4, 12, 410, 5120, 200, 0, GET, /index.html, -,`
 *
 * NCSA Common, `u_ncYYMMDD.log`: `host - user [dd/MMM/yyyy:HH:mm:ss +zzzz] "request" status bytes`.
 *   `203.0.113.9 - - [01/May/2024:02:00:03 +0200] "GET /index.html HTTP/1.1" 200 5120`
 *
 * Values are encoded as in W3C files (empty → `-`, spaces and controls → `+`), so neither a
 * field separator nor a line break can be forged from a request; NCSA's quoted request line also
 * turns `"` into `%22`.
 */
import { join } from 'node:path';
import { BufferedLogFile, LineLogFile } from './buffered-log-file.js';
import { IIS_STEMS, logFileNaming, NCSA_STEMS, withoutUtf8Prefix, type LogFilePeriod } from './log-file-naming.js';
import { LocalTimestamp } from './local-time.js';
import type { LogRecord, RequestLogFile } from './log-record.js';
import { w3cField, W3C_DEFAULT_TRUNCATE_SIZE } from './w3c-log.js';
import type { ListenerError } from '../../errors.js';

export type FixedLogFormat = 'IIS' | 'NCSA';

export interface FixedFormatLogOptions {
  readonly format: FixedLogFormat;
  /** The site's logFile directory (mapped); files go in `W3SVC<siteId>/` under it. */
  readonly directory: string;
  readonly siteId: number;
  readonly period: LogFilePeriod;
  readonly truncateSize?: number | undefined;
  readonly enabled?: boolean | undefined;
  /** `log logInUTF8` (default true): file names carry the `u_` prefix. */
  readonly utf8?: boolean | undefined;
  readonly now?: (() => number) | undefined;
  readonly flushIntervalMs?: number | undefined;
  readonly onError?: ((err: ListenerError) => void) | undefined;
}

const QUOTE = /"/g;

/** One site's IIS-format or NCSA log. write() never blocks or throws. */
export class FixedFormatLogFile extends LineLogFile implements RequestLogFile {
  readonly folder: string;
  readonly format: FixedLogFormat;
  readonly needsResponseHeaders = false;
  readonly #service: string;
  readonly #stamp = new LocalTimestamp();

  constructor(o: FixedFormatLogOptions) {
    super(o.now);
    this.format = o.format;
    this.#service = `W3SVC${o.siteId}`;
    this.folder = join(o.directory, this.#service);
    if (o.enabled === false) return;
    this.file = new BufferedLogFile({
      directory: this.folder,
      naming: logFileNaming({
        stems: o.utf8 === false ? withoutUtf8Prefix(o.format === 'IIS' ? IIS_STEMS : NCSA_STEMS) : o.format === 'IIS' ? IIS_STEMS : NCSA_STEMS,
        period: o.period,
        truncateSize: o.truncateSize ?? W3C_DEFAULT_TRUNCATE_SIZE,
        localTime: true,
      }),
      header: () => '',
      description: `${o.format} log of site ${o.siteId}`,
      now: o.now,
      flushIntervalMs: o.flushIntervalMs,
      onError: o.onError,
    });
  }



  /** The record's line (CRLF-terminated) as it will appear in the file. */
  formatLine(r: LogRecord, time: number = r.time): string {
    this.#stamp.set(time);
    return this.format === 'IIS' ? this.#iisLine(r) : this.#ncsaLine(r);
  }



  #iisLine(r: LogRecord): string {
    const s = this.#stamp;
    return (
      w3cField(r.clientIp) + ', ' +
      w3cField(r.username) + ', ' +
      s.iisDate + ', ' +
      s.iisTime + ', ' +
      this.#service + ', ' +
      w3cField(r.computerName) + ', ' +
      w3cField(r.serverIp) + ', ' +
      Math.round(r.timeTakenMs) + ', ' +
      r.bytesReceived + ', ' +
      r.bytesSent + ', ' +
      r.status + ', ' +
      r.win32Status + ', ' +
      w3cField(r.method) + ', ' +
      w3cField(r.uriStem) + ', ' +
      w3cField(r.uriQuery) + ',\r\n'
    );
  }

  #ncsaLine(r: LogRecord): string {
    let target = r.uriQuery === '' ? r.uriStem : r.uriStem + '?' + r.uriQuery;
    target = w3cField(target);
    if (target.includes('"')) target = target.replace(QUOTE, '%22');
    return (
      w3cField(r.clientIp) + ' - ' +
      w3cField(r.username) + ' [' +
      this.#stamp.ncsa + '] "' +
      r.method + ' ' + target + ' ' + r.protocolVersion + '" ' +
      r.status + ' ' +
      r.bytesSent + '\r\n'
    );
  }
}
