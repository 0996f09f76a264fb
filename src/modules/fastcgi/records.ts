/**
 * FastCGI 1.0 records (the FastCGI specification, §3 and §5): an 8-byte header (version, type,
 * request id, content length, padding), the content, then padding. Name-value pairs carry the
 * CGI variables in PARAMS and the FCGI_GET_VALUES queries.
 */

export const FCGI_VERSION = 1;
export const HEADER_LENGTH = 8;
/** Largest content of one record. */
export const MAX_CONTENT = 65535;

export const enum RecordType {
  BeginRequest = 1,
  AbortRequest = 2,
  EndRequest = 3,
  Params = 4,
  Stdin = 5,
  Stdout = 6,
  Stderr = 7,
  Data = 8,
  GetValues = 9,
  GetValuesResult = 10,
  UnknownType = 11,
}

export const ROLE_RESPONDER = 1;
export const FLAG_KEEP_CONN = 1;

/** FCGI_END_REQUEST protocolStatus values. */
export const enum ProtocolStatus {
  RequestComplete = 0,
  CantMultiplexConnection = 1,
  Overloaded = 2,
  UnknownRole = 3,
}

function writeHeader(buf: Buffer, at: number, type: number, id: number, length: number, padding: number): void {
  buf[at] = FCGI_VERSION;
  buf[at + 1] = type;
  buf[at + 2] = id >> 8;
  buf[at + 3] = id & 0xff;
  buf[at + 4] = length >> 8;
  buf[at + 5] = length & 0xff;
  buf[at + 6] = padding;
  buf[at + 7] = 0;
}

/** A name or value length as FastCGI encodes it, one character per byte: 1 below 128, else 4 with the top bit set. */
function lengthText(n: number): string {
  return n < 128 ? String.fromCharCode(n) : String.fromCharCode(((n >>> 24) & 0x7f) | 0x80, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

const NON_ASCII = /[^\x00-\x7f]/;

/** `s` as its UTF-8 bytes, one character per byte (ASCII, nearly always, is already that). */
function utf8Text(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/**
 * The name-value pairs of `pairs` (flat [name, value, …]) as one buffer of FastCGI pair encoding.
 * Strings are UTF-8 (paths, decoded URLs) except from index `latin1From` on: request header
 * values, which hold the bytes the client sent one per character.
 *
 * Built as one string of one character per byte and converted once: a byteLength and a write
 * per string cost a hundred calls into C++ for a PHP request's ~50 variables (bench/micro/
 * fastcgi-params.ts: 9.2 µs → 3.3 µs per request).
 */
export function encodePairs(pairs: readonly string[], latin1From = pairs.length): Buffer {
  let text = '';
  for (let i = 0; i < pairs.length; i += 2) {
    const name = i < latin1From ? utf8Text(pairs[i]!) : pairs[i]!;
    const value = i < latin1From ? utf8Text(pairs[i + 1]!) : pairs[i + 1]!;
    text += lengthText(name.length) + lengthText(value.length) + name + value;
  }
  return Buffer.from(text, 'latin1');
}

/** Decode name-value pairs (FCGI_GET_VALUES_RESULT). Malformed input ends the list. */
export function decodePairs(buf: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  const readLength = (): number => {
    if (at >= buf.length) return -1;
    const b = buf[at]!;
    if (b < 128) {
      at += 1;
      return b;
    }
    if (at + 4 > buf.length) return -1;
    const n = buf.readUInt32BE(at) & 0x7fffffff;
    at += 4;
    return n;
  };
  while (at < buf.length) {
    const nl = readLength();
    const vl = readLength();
    if (nl < 0 || vl < 0 || at + nl + vl > buf.length) break;
    out.set(buf.toString('latin1', at, at + nl), buf.toString('latin1', at + nl, at + nl + vl));
    at += nl + vl;
  }
  return out;
}

/**
 * A request's opening as one buffer: BEGIN_REQUEST, its PARAMS (split into records of at most
 * MAX_CONTENT bytes), the empty PARAMS that ends them and, for a request without a body, the
 * empty STDIN that ends that too: a small request is one write.
 */
export function encodeRequestStart(id: number, keepConn: boolean, params: Buffer, endStdin: boolean): Buffer {
  const paramRecords = Math.ceil(params.length / MAX_CONTENT);
  const size = HEADER_LENGTH + 8 + paramRecords * HEADER_LENGTH + params.length + HEADER_LENGTH + (endStdin ? HEADER_LENGTH : 0);
  const buf = Buffer.allocUnsafe(size);
  writeHeader(buf, 0, RecordType.BeginRequest, id, 8, 0);
  buf[8] = 0;
  buf[9] = ROLE_RESPONDER;
  buf[10] = keepConn ? FLAG_KEEP_CONN : 0;
  buf.fill(0, 11, 16);
  let at = 16;
  for (let from = 0; from < params.length; from += MAX_CONTENT) {
    const n = Math.min(MAX_CONTENT, params.length - from);
    writeHeader(buf, at, RecordType.Params, id, n, 0);
    params.copy(buf, at + HEADER_LENGTH, from, from + n);
    at += HEADER_LENGTH + n;
  }
  writeHeader(buf, at, RecordType.Params, id, 0, 0);
  at += HEADER_LENGTH;
  if (endStdin) writeHeader(buf, at, RecordType.Stdin, id, 0, 0);
  return buf;
}

/** STDIN records carrying `data` (any length; empty = the end of the body). */
export function encodeStdin(id: number, data: Buffer): Buffer[] {
  if (data.length === 0) {
    const h = Buffer.allocUnsafe(HEADER_LENGTH);
    writeHeader(h, 0, RecordType.Stdin, id, 0, 0);
    return [h];
  }
  const out: Buffer[] = [];
  for (let from = 0; from < data.length; from += MAX_CONTENT) {
    const n = Math.min(MAX_CONTENT, data.length - from);
    const h = Buffer.allocUnsafe(HEADER_LENGTH);
    writeHeader(h, 0, RecordType.Stdin, id, n, 0);
    out.push(h, from === 0 && n === data.length ? data : data.subarray(from, from + n));
  }
  return out;
}

/** A management record (request id 0): FCGI_GET_VALUES for `names`, or FCGI_ABORT_REQUEST for a request. */
export function encodeGetValues(names: readonly string[]): Buffer {
  const pairs: string[] = [];
  for (const n of names) pairs.push(n, '');
  const body = encodePairs(pairs);
  const buf = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  writeHeader(buf, 0, RecordType.GetValues, 0, body.length, 0);
  body.copy(buf, HEADER_LENGTH);
  return buf;
}

export function encodeAbort(id: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LENGTH);
  writeHeader(buf, 0, RecordType.AbortRequest, id, 0, 0);
  return buf;
}

export interface RecordSink {
  /**
   * A record's content (a view into the received bytes: copy it to keep it past the call). STDOUT
   * and STDERR records are streams: one that is not whole in the bytes received so far is handed
   * on in pieces as they arrive, so several calls may carry one record's content.
   */
  record(type: number, id: number, content: Buffer): void;
  /** The stream broke the protocol (a version other than 1). */
  malformed(reason: string): void;
}

/**
 * Splits received bytes into records. Content that arrives whole in one chunk is handed on as a
 * view (no copy). A STDOUT or STDERR record split across chunks is handed on piece by piece, also
 * as views: PHP writes a large response as records of up to 64 KiB, which reads of 64 KiB always
 * cut, and joining them cost a copy of the whole body and as much garbage again (measured: the
 * copies' external memory drove a full GC every few hundred 100 KiB responses). Only another
 * record split across chunks (END_REQUEST, FCGI_GET_VALUES_RESULT: small) is gathered.
 */
export class RecordParser {
  /** The start of a record that is not a stream: its header, or all of it up to what arrived. */
  #partial: Buffer | undefined;
  #failed = false;
  /** A STDOUT/STDERR record under way: its type and id, content bytes still to come, then padding. */
  #streamType = 0;
  #streamId = 0;
  #streamLeft = 0;
  #skip = 0;

  constructor(private readonly sink: RecordSink) {}

  push(chunk: Buffer): void {
    if (this.#failed) return;
    const end = chunk.length;
    let at = 0;
    if (this.#streamLeft > 0 || this.#skip > 0) {
      at = this.#continue(chunk, 0);
      if (at === end || this.#failed) return;
    }
    if (this.#partial !== undefined) {
      at = this.#completePartial(chunk, at);
      if (at < 0 || at === end || this.#failed) return;
    }
    while (end - at >= HEADER_LENGTH) {
      if (chunk[at] !== FCGI_VERSION) {
        this.#fail(chunk[at]!);
        return;
      }
      const length = (chunk[at + 4]! << 8) | chunk[at + 5]!;
      const padding = chunk[at + 6]!;
      const type = chunk[at + 1]!;
      const id = (chunk[at + 2]! << 8) | chunk[at + 3]!;
      const total = HEADER_LENGTH + length + padding;
      if (end - at < total) {
        if (type !== RecordType.Stdout && type !== RecordType.Stderr) break;
        this.#startStream(type, id, length, padding);
        this.#continue(chunk, at + HEADER_LENGTH);
        return;
      }
      this.sink.record(type, id, chunk.subarray(at + HEADER_LENGTH, at + HEADER_LENGTH + length));
      if (this.#failed) return;
      at += total;
    }
    if (at < end) this.#partial = chunk.subarray(at);
  }

  /** Stop handing on records (the connection is being torn down). */
  stop(): void {
    this.#failed = true;
    this.#partial = undefined;
    this.#streamLeft = 0;
    this.#skip = 0;
  }

  #fail(version: number): void {
    this.#failed = true;
    this.sink.malformed(`a record with version ${version} (FastCGI 1 expected)`);
  }

  #startStream(type: number, id: number, length: number, padding: number): void {
    this.#streamType = type;
    this.#streamId = id;
    this.#streamLeft = length;
    this.#skip = padding;
  }

  /** Hand on the stream record's content in `chunk` from `at`, skip its padding; returns where it ends. */
  #continue(chunk: Buffer, at: number): number {
    const end = chunk.length;
    if (this.#streamLeft > 0) {
      const n = Math.min(this.#streamLeft, end - at);
      this.#streamLeft -= n;
      const piece = at === 0 && n === end ? chunk : chunk.subarray(at, at + n);
      at += n;
      if (n > 0) this.sink.record(this.#streamType, this.#streamId, piece);
      if (this.#failed) return end;
    }
    if (this.#streamLeft === 0 && this.#skip > 0) {
      const n = Math.min(this.#skip, end - at);
      this.#skip -= n;
      at += n;
    }
    return at;
  }

  /**
   * Finish the record whose start the last chunk ended with, taking only its own bytes from
   * `chunk` (its header first, then, unless it is a stream, its content). Returns where the rest
   * of `chunk` begins, or -1 when all of it was taken and the record is still not whole.
   */
  #completePartial(chunk: Buffer, at: number): number {
    const end = chunk.length;
    let p = this.#partial!;
    this.#partial = undefined;
    if (p.length < HEADER_LENGTH) {
      const take = Math.min(HEADER_LENGTH - p.length, end - at);
      p = Buffer.concat([p, chunk.subarray(at, at + take)]);
      at += take;
      if (p.length < HEADER_LENGTH) {
        this.#partial = p;
        return -1;
      }
    }
    if (p[0] !== FCGI_VERSION) {
      this.#fail(p[0]!);
      return -1;
    }
    const length = (p[4]! << 8) | p[5]!;
    const padding = p[6]!;
    const type = p[1]!;
    const id = (p[2]! << 8) | p[3]!;
    if ((type === RecordType.Stdout || type === RecordType.Stderr) && p.length === HEADER_LENGTH) {
      this.#startStream(type, id, length, padding);
      return this.#continue(chunk, at);
    }
    const total = HEADER_LENGTH + length + padding;
    const take = Math.min(total - p.length, end - at);
    p = Buffer.concat([p, chunk.subarray(at, at + take)]);
    at += take;
    if (p.length < total) {
      this.#partial = p;
      return -1;
    }
    this.sink.record(type, id, p.subarray(HEADER_LENGTH, HEADER_LENGTH + length));
    return at;
  }
}
