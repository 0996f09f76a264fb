/**
 * The HTTP.sys error log (`HTTPERR/httperr1.log`, `httperr2.log`, …): one line for every request
 * the listener answers or drops itself — bad requests, unknown hosts, full or stopped pools — and
 * for connections closed by a timer. Same W3C dialect and header block as current Windows writes,
 * rolling to the next number at truncateSize (1 MiB by default, HTTP.sys's
 * ErrorLogFileTruncateSize). Buffered like the site logs: write() never blocks or throws.
 */
import { BufferedLogFile } from './buffered-log-file.js';
import { W3cTimestamp, w3cField, w3cHeaderBlock } from './w3c-log.js';
import type { ListenerError } from '../../errors.js';

/** The `s-reason` phrases HTTP.sys writes (see the httperr reference). */
export const HTTPERR_REASONS = [
  'AppOffline',
  'AppPoolTimer',
  'AppShutdown',
  'BadRequest',
  'Client_Reset',
  'Connection_Abandoned_By_AppPool',
  'Connection_Abandoned_By_ReqQueue',
  'Connection_Dropped',
  'Connection_Dropped_List_Full',
  'ConnLimit',
  'Disabled',
  'EntityTooLarge',
  'FieldLength',
  'Forbidden',
  'Header',
  'Hostname',
  'Internal',
  'Invalid_CR/LF',
  'LengthRequired',
  'N/A',
  'N/I',
  'Number',
  'Precondition',
  'QueueFull',
  'RequestLength',
  'Timer_AppPool',
  'Timer_ConnectionIdle',
  'Timer_EntityBody',
  'Timer_HeaderWait',
  'Timer_MinBytesPerSecond',
  'Timer_ReqQueue',
  'Timer_Response',
  'URL',
  'URL_Length',
  'Verb',
  'Version_N/S',
] as const;
export type HttpErrReason = (typeof HTTPERR_REASONS)[number];

export interface HttpErrEntry {
  /** When the error happened, epoch ms; logged as UTC. */
  time: number;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  /** `HTTP/1.1`, or `-` when the request line never parsed. */
  protocolVersion: string;
  /** `''` or `-` when unknown. */
  method: string;
  /** Path and query as received; cut to 4096 bytes as HTTP.sys does. `''` when unknown. */
  uri: string;
  /** The status sent, or undefined when none was (timeouts, dropped connections). */
  status: number | undefined;
  /** The site the request was routed to, or undefined before routing (e.g. Hostname). */
  siteId: number | undefined;
  reason: HttpErrReason;
  /** The request queue, i.e. the application pool name, when one was chosen. */
  queueName: string | undefined;
}

export interface HttpErrLogOptions {
  /** The HTTPERR folder (Windows: %windir%\System32\LogFiles\HTTPERR); created when needed. */
  directory: string;
  now?: () => number;
  flushIntervalMs?: number;
  onError?: (err: ListenerError) => void;
  /** Roll to the next httperrN.log before a record would take the file past this size (default 1 MiB). */
  truncateSize?: number;
}

/** HTTP.sys's default ErrorLogFileTruncateSize. */
export const HTTPERR_DEFAULT_TRUNCATE_SIZE = 1024 * 1024;

/**
 * Deliberately HTTP.sys's own string: tools that parse httperr logs key on this `#Software:` line.
 */
export const HTTPERR_SOFTWARE = 'Microsoft HTTP API 2.0';

export const HTTPERR_FIELDS =
  'date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename';

/** HTTP.sys logs at most this many bytes of the URL. */
const MAX_URI_BYTES = 4096;
const HTTPERR_FILE = /^httperr([1-9][0-9]*)\.log$/;
const HTTP_VERSION = /^HTTP\/(\d+)\.(\d+)$/;

export class HttpErrLog {
  readonly #file: BufferedLogFile;
  readonly #now: () => number;
  readonly #stamp = new W3cTimestamp();

  constructor(options: HttpErrLogOptions) {
    this.#now = options.now ?? Date.now;
    this.#file = new BufferedLogFile({
      directory: options.directory,
      naming: {
        kind: 'size',
        truncateSize: options.truncateSize ?? HTTPERR_DEFAULT_TRUNCATE_SIZE,
        fileName: (n) => `httperr${n}.log`,
        sequenceOf(name) {
          const m = HTTPERR_FILE.exec(name);
          return m === null ? undefined : Number(m[1]);
        },
      },
      header: (time) => w3cHeaderBlock(HTTPERR_SOFTWARE, time, HTTPERR_FIELDS),
      description: 'HTTP error log',
      now: options.now,
      flushIntervalMs: options.flushIntervalMs,
      onError: options.onError,
    });
  }

  /** Entries dropped (memory cap during write failures, or written after close). */
  get droppedRecords(): number {
    return this.#file.droppedRecords;
  }

  /** Queues one entry. Never blocks and never throws. */
  write(entry: HttpErrEntry): void {
    // A broken clock value must not throw into the listener; log it as happening now.
    const time = Number.isFinite(entry.time) ? entry.time : this.#now();
    this.#file.append(time, this.formatLine(entry, time));
  }

  /** The entry's line (CRLF-terminated) as it will appear in the file. */
  formatLine(entry: HttpErrEntry, time: number = entry.time): string {
    this.#stamp.set(time);
    return (
      `${this.#stamp.date} ${this.#stamp.time} ${w3cField(entry.clientIp)} ${entry.clientPort} ` +
      `${w3cField(entry.serverIp)} ${entry.serverPort} ${w3cField(httpErrVersion(entry.protocolVersion))} ` +
      `${w3cField(entry.method)} ${w3cField(truncateUtf8(entry.uri, MAX_URI_BYTES))} ` +
      // streamid: HTTP/2 stream; Wharf's listener speaks HTTP/1.x, where HTTP.sys writes '-'.
      `- ${entry.status ?? '-'} ${entry.siteId ?? '-'} ${entry.reason} ${w3cField(entry.queueName ?? '')}\r\n`
    );
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}

/** HTTP.sys writes `HTTP/?.?` when the major or minor version has more than one digit. */
function httpErrVersion(version: string): string {
  const m = HTTP_VERSION.exec(version);
  if (m === null) return version;
  return Number(m[1]) >= 10 || Number(m[2]) >= 10 ? 'HTTP/?.?' : version;
}

/** `value` cut to at most `max` UTF-8 bytes, never inside a character. */
function truncateUtf8(value: string, max: number): string {
  // Each UTF-16 unit encodes to at most 3 bytes, so short strings need no measuring.
  if (value.length * 3 <= max) return value;
  const bytes = Buffer.from(value);
  if (bytes.length <= max) return value;
  let end = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
