/**
 * The buffered file writer behind the per-site W3C logs and the httperr log.
 *
 * HTTP.sys buffers log records (64 KB) and writes them off the request path; so does this:
 * `append` only pushes a string onto an in-memory queue, and one asynchronous write at a time drains
 * the queue into the current file when 64 KiB have accumulated or the flush interval has passed.
 * A log that cannot be written (missing permissions, a path under a regular file, a full disk) never
 * throws to the request: the records stay queued for the next attempt, the oldest are dropped (and
 * counted) beyond a memory cap, and the owner hears about it at most once a minute.
 *
 * File choice is the owner's: either by time (one file per period, chosen from each record's own
 * time so a record lands in the file its timestamp says) or by size (numbered files rolling at
 * `truncateSize`). The owner's header block is written before the first record this writer puts in
 * a file — into a new file, and again into an existing one it starts appending to, as IIS does after
 * a restart.
 */
import { open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ListenerError } from '../../errors.js';
import { logAccess, prepareLogFile, prepareLogFolder, type LogAccess } from './log-access.js';
import type { LogRecord } from './log-record.js';

/** One time-based file: its name inside the log folder and the span [start, end) it covers (epoch ms). */
export interface LogPeriod {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

/** How a log names its files. */
export type LogFileNaming =
  | {
      readonly kind: 'time';
      /** The file covering `time`. */
      period(time: number): LogPeriod;
    }
  | {
      readonly kind: 'size';
      /** The name of file number `sequence` (1, 2, …). */
      fileName(sequence: number): string;
      /** The sequence number of an existing file, or undefined if the name is not one of ours. */
      sequenceOf(fileName: string): number | undefined;
      /** A file that has records in it is not grown past this many bytes. */
      readonly truncateSize: number;
    };

export interface BufferedLogFileOptions {
  /** The folder the files go in; created, with its parents, when a file is opened. */
  readonly directory: string;
  readonly naming: LogFileNaming;
  /** The header block (CRLF-terminated lines) written before the first record this writer puts in a file; `time` is that record's time. */
  readonly header: (time: number) => string;
  /** Names the log in error messages, e.g. `W3C log of site 1`. */
  readonly description: string;
  /** Clock for error-report throttling; injectable for tests. */
  readonly now?: (() => number) | undefined;
  /** Longest time a record waits in memory (default 1000 ms). */
  readonly flushIntervalMs?: number | undefined;
  /** Buffered bytes that trigger a write without waiting for the interval (default 64 KiB, HTTP.sys's buffer). */
  readonly flushThresholdBytes?: number | undefined;
  /** Cap on queued bytes while writes fail; the oldest records beyond it are dropped (default 8 MiB). */
  readonly maxBufferedBytes?: number | undefined;
  /** Modes and owner of the files and their folder (log-access.ts); default: the server's policy. */
  readonly access?: LogAccess | undefined;
  /** Told about write failures, at most once a minute. Defaults to a process warning. */
  readonly onError?: ((err: ListenerError) => void) | undefined;
}

export const DEFAULT_FLUSH_INTERVAL_MS = 1000;
export const DEFAULT_FLUSH_THRESHOLD_BYTES = 64 * 1024;
export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const ERROR_REPORT_INTERVAL_MS = 60_000;
/**
 * Requests complete out of order across connections, so a record stamped just before a period
 * boundary can arrive after one stamped just after it. Within this slack it joins the newer file
 * instead of reopening the old one (which would add a header block for one line); beyond it the
 * clock really went back and the record follows its own time.
 */
const LATE_RECORD_SLACK_MS = 60_000;

/** A run of queued records bound for the same time-based file (or, for size naming, any file). */
interface Segment {
  /** Time naming: the file name. Size naming: undefined; the file is chosen while writing. */
  readonly file: string | undefined;
  lines: string[];
  times: number[];
  /** UTF-8 byte length of each line, kept so size rolling and the cap need not measure twice. */
  sizes: number[];
  bytes: number;
  /** Lines of this segment already on disk during the drain in progress. */
  written: number;
}

type WriterState = 'open' | 'closing' | 'closed';

export class BufferedLogFile {
  readonly #directory: string;
  readonly #access: LogAccess | undefined;
  readonly #naming: LogFileNaming;
  readonly #header: (time: number) => string;
  readonly #description: string;
  readonly #now: () => number;
  readonly #flushIntervalMs: number;
  readonly #flushThreshold: number;
  readonly #maxBuffered: number;
  readonly #onError: (err: ListenerError) => void;
  readonly #onTimer: () => void;
  readonly #afterDrain: () => void;

  #state: WriterState = 'open';
  #segments: Segment[] = [];
  #bufferedBytes = 0;
  #period: LogPeriod | undefined = undefined;
  #timer: NodeJS.Timeout | undefined = undefined;
  #inFlight: Promise<void> | undefined = undefined;
  #closing: Promise<void> | undefined = undefined;
  /**
   * Set by a failed write, cleared by a successful one. While set, only the timer (and explicit
   * flushes) retry, so a broken disk is not hit again on every record past 64 KiB.
   */
  #failing = false;
  #file: FileHandle | undefined = undefined;
  #fileName: string | undefined = undefined;
  #fileSize = 0;
  /** The file this writer last put a header block into; a reopened file of another name gets one. */
  #headerWrittenTo: string | undefined = undefined;
  /** Size naming: the current file number, found by scanning the folder on first use. */
  #sequence: number | undefined = undefined;
  #dropped = 0;
  #lastReport = -Infinity;

  constructor(options: BufferedLogFileOptions) {
    this.#directory = options.directory;
    this.#access = options.access;
    this.#naming = options.naming;
    this.#header = options.header;
    this.#description = options.description;
    this.#now = options.now ?? Date.now;
    this.#flushIntervalMs = options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.#flushThreshold = options.flushThresholdBytes ?? DEFAULT_FLUSH_THRESHOLD_BYTES;
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#onError = options.onError ?? ((err) => process.emitWarning(err));
    // Bound once here so arming the timer and chaining drains allocate no closures per flush.
    this.#onTimer = () => {
      this.#timer = undefined;
      this.#startDrain();
    };
    this.#afterDrain = () => {
      this.#inFlight = undefined;
      if (this.#state !== 'open' || this.#bufferedBytes === 0) return;
      if (!this.#failing && this.#bufferedBytes >= this.#flushThreshold) this.#startDrain();
      else if (this.#timer === undefined) this.#armTimer();
    };
  }

  /** Records dropped so far: beyond the memory cap while writes failed, or appended after close. */
  get droppedRecords(): number {
    return this.#dropped;
  }

  /** Bytes queued and not yet handed to a write. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /**
   * Queues one record. `line` is the complete, encoded line including its CRLF; `time` (epoch ms)
   * picks the time-based file and the header's `#Date`. Never blocks and never throws.
   */
  append(time: number, line: string): void {
    if (this.#state !== 'open') {
      this.#dropped++;
      return;
    }
    const file = this.#fileFor(time);
    const size = Buffer.byteLength(line);
    const segments = this.#segments;
    let seg = segments.length > 0 ? segments[segments.length - 1] : undefined;
    if (seg === undefined || seg.file !== file) {
      seg = { file, lines: [], times: [], sizes: [], bytes: 0, written: 0 };
      segments.push(seg);
    }
    seg.lines.push(line);
    seg.times.push(time);
    seg.sizes.push(size);
    seg.bytes += size;
    this.#bufferedBytes += size;
    if (this.#bufferedBytes > this.#maxBuffered) this.#dropOldest();
    if (this.#bufferedBytes >= this.#flushThreshold && !this.#failing) this.#startDrain();
    else if (this.#timer === undefined && this.#inFlight === undefined) this.#armTimer();
  }

  /**
   * Resolves once everything queued before the call has been written, or the attempt to write it
   * has failed (failures go to onError, never to the caller; the records stay queued for a retry).
   */
  async flush(): Promise<void> {
    // A drain already running took its snapshot before this call and may miss later records.
    if (this.#inFlight !== undefined) await this.#inFlight;
    if (this.#inFlight === undefined && this.#bufferedBytes > 0) this.#startDrain();
    if (this.#inFlight !== undefined) await this.#inFlight;
  }

  /** Flushes, closes the file and refuses (counts as dropped) later records. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    await this.flush();
    this.#state = 'closed';
    // Whatever the final attempt could not write is lost now; count it so the loss stays visible.
    for (const seg of this.#segments) this.#dropped += seg.lines.length;
    this.#segments = [];
    this.#bufferedBytes = 0;
    await this.#closeFile();
  }

  #fileFor(time: number): string | undefined {
    const naming = this.#naming;
    if (naming.kind !== 'time') return undefined;
    const p = this.#period;
    if (p !== undefined) {
      if (time >= p.start && time < p.end) return p.name;
      if (time < p.start && p.start - time < LATE_RECORD_SLACK_MS) return p.name;
    }
    const next = naming.period(time);
    this.#period = next;
    return next.name;
  }

  /**
   * Keeps memory bounded while writes fail. Drops down to 7/8 of the cap, not just under it, so the
   * array splicing happens once per ~1 MiB of new records rather than on every record.
   */
  #dropOldest(): void {
    const target = this.#maxBuffered - (this.#maxBuffered >> 3);
    const segments = this.#segments;
    let whole = 0;
    while (this.#bufferedBytes > target && whole < segments.length) {
      const seg = segments[whole];
      if (this.#bufferedBytes - seg.bytes >= target) {
        this.#bufferedBytes -= seg.bytes;
        this.#dropped += seg.lines.length;
        whole++;
        continue;
      }
      let k = 0;
      let freed = 0;
      while (k < seg.lines.length && this.#bufferedBytes - freed > target) freed += seg.sizes[k++];
      seg.lines.splice(0, k);
      seg.times.splice(0, k);
      seg.sizes.splice(0, k);
      seg.bytes -= freed;
      this.#bufferedBytes -= freed;
      this.#dropped += k;
      if (seg.lines.length === 0) whole++;
      break;
    }
    segments.splice(0, whole);
  }

  #armTimer(): void {
    const timer = setTimeout(this.#onTimer, this.#flushIntervalMs);
    // A pending log flush must not keep the process alive; shutdown calls close(), which flushes.
    timer.unref();
    this.#timer = timer;
  }

  #startDrain(): void {
    if (this.#inFlight !== undefined) return;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    // #drain never rejects, so this chain needs no catch.
    this.#inFlight = this.#drain().then(this.#afterDrain);
  }

  /** Writes the queue as it is now; records appended meanwhile wait for the next drain. */
  async #drain(): Promise<void> {
    const segments = this.#segments;
    this.#segments = [];
    this.#bufferedBytes = 0;
    let i = 0;
    try {
      for (; i < segments.length; i++) await this.#writeSegment(segments[i]);
      this.#failing = false;
    } catch (err) {
      this.#failing = true;
      this.#requeue(segments, i);
      // Reopen on the next attempt: the folder may have been recreated or the disk freed.
      await this.#closeFile();
      this.#report(err);
    }
  }

  /** Puts the unwritten part of a failed drain back in front of the records queued meanwhile. */
  #requeue(segments: Segment[], from: number): void {
    const retry: Segment[] = [];
    let bytes = 0;
    for (let j = from; j < segments.length; j++) {
      const seg = segments[j];
      if (seg.written > 0) {
        for (let k = 0; k < seg.written; k++) seg.bytes -= seg.sizes[k];
        seg.lines = seg.lines.slice(seg.written);
        seg.times = seg.times.slice(seg.written);
        seg.sizes = seg.sizes.slice(seg.written);
        seg.written = 0;
      }
      if (seg.lines.length === 0) continue;
      retry.push(seg);
      bytes += seg.bytes;
    }
    this.#segments = retry.concat(this.#segments);
    this.#bufferedBytes += bytes;
    if (this.#bufferedBytes > this.#maxBuffered) this.#dropOldest();
  }

  async #writeSegment(seg: Segment): Promise<void> {
    const naming = this.#naming;
    if (naming.kind === 'time') {
      await this.#openFile(seg.file ?? naming.period(seg.times[0]).name);
      await this.#writeLines(seg, seg.lines.length, this.#pendingHeader(seg));
      return;
    }
    while (seg.written < seg.lines.length) {
      if (this.#file === undefined) await this.#openFile(naming.fileName(await this.#currentSequence(naming)));
      const header = this.#pendingHeader(seg);
      let size = this.#fileSize + Buffer.byteLength(header);
      let end = seg.written;
      // Take records while they fit. A file without records takes at least one, so a record
      // larger than truncateSize still gets written instead of rolling forever.
      while (end < seg.lines.length) {
        const next = seg.sizes[end];
        if (size + next > naming.truncateSize && (end > seg.written || this.#fileSize > 0)) break;
        size += next;
        end++;
      }
      if (end > seg.written) await this.#writeLines(seg, end, header);
      if (end < seg.lines.length) await this.#roll();
    }
  }

  /** The header block if the next record starts this writer's output in the open file. */
  #pendingHeader(seg: Segment): string {
    const needed = this.#headerWrittenTo !== this.#fileName || this.#fileSize === 0;
    return needed ? this.#header(seg.times[seg.written]) : '';
  }

  /** Writes `header` and lines [seg.written, end) to the open file, advancing seg.written as bytes land. */
  async #writeLines(seg: Segment, end: number, header: string): Promise<void> {
    const file = this.#file;
    if (file === undefined) throw new ListenerError('LSN_LOG_WRITE', 'log file is not open');
    let text = header;
    for (let k = seg.written; k < end; k++) text += seg.lines[k];
    const data = Buffer.from(text);
    const headerBytes = Buffer.byteLength(header);
    let offset = 0;
    try {
      while (offset < data.length) {
        const { bytesWritten } = await file.write(data, offset, data.length - offset);
        if (bytesWritten === 0) throw new ListenerError('LSN_LOG_WRITE', `no progress writing ${this.#fileName ?? ''}`);
        offset += bytesWritten;
      }
    } finally {
      // On a partial write only the records that landed whole count as written; the rest is retried.
      this.#fileSize += offset;
      if (header !== '' && offset >= headerBytes) this.#headerWrittenTo = this.#fileName;
      let landed = offset - headerBytes;
      while (seg.written < end && landed >= seg.sizes[seg.written]) landed -= seg.sizes[seg.written++];
    }
  }

  async #currentSequence(naming: Extract<LogFileNaming, { kind: 'size' }>): Promise<number> {
    if (this.#sequence !== undefined) return this.#sequence;
    // Continue the highest-numbered existing file, as IIS does after a restart.
    let names: string[] = [];
    try {
      names = await readdir(this.#directory);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
    let highest = 1;
    for (const name of names) {
      const n = naming.sequenceOf(name);
      if (n !== undefined && n > highest) highest = n;
    }
    this.#sequence = highest;
    return highest;
  }

  async #roll(): Promise<void> {
    await this.#closeFile();
    this.#sequence = (this.#sequence ?? 1) + 1;
  }

  async #openFile(name: string): Promise<void> {
    if (this.#file !== undefined && this.#fileName === name) return;
    await this.#closeFile();
    const access = this.#access ?? logAccess();
    await prepareLogFolder(this.#directory, access);
    const file = await open(join(this.#directory, name), 'a', access.fileMode);
    let size: number;
    try {
      // 0640 and the log owner whether the file is new or was left by an older Wharf.
      await prepareLogFile(file, access, join(this.#directory, name));
      size = (await file.stat()).size;
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
    this.#file = file;
    this.#fileName = name;
    this.#fileSize = size;
  }

  async #closeFile(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    this.#fileName = undefined;
    try {
      await file.close();
    } catch {
      // The descriptor is released either way and nothing buffered depends on it.
    }
  }

  #report(err: unknown): void {
    const now = this.#now();
    if (now - this.#lastReport < ERROR_REPORT_INTERVAL_MS) return;
    this.#lastReport = now;
    const reason = err instanceof Error ? err.message : String(err);
    const error = new ListenerError(
      'LSN_LOG_WRITE',
      `${this.#description}: cannot write to ${this.#directory}: ${reason}; ` +
        `${this.#bufferedBytes} bytes kept for retry, ${this.#dropped} records dropped so far`,
      { cause: err },
    );
    try {
      this.#onError(error);
    } catch {
      // A throwing error handler must not break the writer or reach the request path.
    }
  }
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === code;
}

/**
 * What every request log file shares (W3C, IIS, NCSA): a BufferedLogFile (absent when logging is
 * disabled) fed one formatted line per request. Subclasses only format.
 */
export abstract class LineLogFile {
  /** The file lines go to; undefined when the log is disabled. Set by the subclass's constructor. */
  protected file: BufferedLogFile | undefined = undefined;
  readonly #now: () => number;

  protected constructor(now: (() => number) | undefined) {
    this.#now = now ?? Date.now;
  }

  /** The record's line (CRLF-terminated) as it will appear in the file. */
  abstract formatLine(record: LogRecord, time?: number): string;

  /** Records dropped (memory cap during write failures, or written after close). */
  get droppedRecords(): number {
    return this.file?.droppedRecords ?? 0;
  }

  /** Queues one request's line. Never blocks and never throws. */
  write(record: LogRecord): void {
    const file = this.file;
    if (file === undefined) return;
    // A broken clock value must not throw into the request path; log it as completing now.
    const time = Number.isFinite(record.time) ? record.time : this.#now();
    file.append(time, this.formatLine(record, time));
  }

  flush(): Promise<void> {
    return this.file === undefined ? Promise.resolve() : this.file.flush();
  }

  close(): Promise<void> {
    return this.file === undefined ? Promise.resolve() : this.file.close();
  }
}
