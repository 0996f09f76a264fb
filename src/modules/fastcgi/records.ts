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

/** Bytes a name or value length takes: 1 below 128, else 4 with the top bit set. */
function lengthSize(n: number): number {
  return n < 128 ? 1 : 4;
}

function writeLength(buf: Buffer, at: number, n: number): number {
  if (n < 128) {
    buf[at] = n;
    return at + 1;
  }
  buf.writeUInt32BE((n | 0x80000000) >>> 0, at);
  return at + 4;
}

/**
 * The name-value pairs of `pairs` (flat [name, value, …]) as one buffer of FastCGI pair encoding.
 * Strings are UTF-8 (paths, decoded URLs) except from index `latin1From` on: request header
 * values, which hold the bytes the client sent one per character.
 */
export function encodePairs(pairs: readonly string[], latin1From = pairs.length): Buffer {
  let size = 0;
  const lengths = new Array<number>(pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    const n = Buffer.byteLength(pairs[i]!, i >= latin1From ? 'latin1' : 'utf8');
    lengths[i] = n;
    size += lengthSize(n) + n;
  }
  const buf = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < pairs.length; i += 2) {
    at = writeLength(buf, at, lengths[i]!);
    at = writeLength(buf, at, lengths[i + 1]!);
    const encoding = i >= latin1From ? 'latin1' : 'utf8';
    at += buf.write(pairs[i]!, at, lengths[i]!, encoding);
    at += buf.write(pairs[i + 1]!, at, lengths[i + 1]!, encoding);
  }
  return buf;
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
  /** A record's content (a view into the received bytes: copy it to keep it past the call). */
  record(type: number, id: number, content: Buffer): void;
  /** The stream broke the protocol (a version other than 1). */
  malformed(reason: string): void;
}

/**
 * Splits received bytes into records. Content that arrives whole in one chunk is handed on as a
 * view (no copy); only a record split across chunks is gathered.
 */
export class RecordParser {
  #partial: Buffer | undefined;
  #failed = false;

  constructor(private readonly sink: RecordSink) {}

  push(chunk: Buffer): void {
    if (this.#failed) return;
    let data = chunk;
    if (this.#partial !== undefined) {
      data = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    let at = 0;
    const end = data.length;
    while (end - at >= HEADER_LENGTH) {
      if (data[at] !== FCGI_VERSION) {
        this.#failed = true;
        this.sink.malformed(`a record with version ${data[at]!} (FastCGI 1 expected)`);
        return;
      }
      const length = (data[at + 4]! << 8) | data[at + 5]!;
      const total = HEADER_LENGTH + length + data[at + 6]!;
      if (end - at < total) break;
      const type = data[at + 1]!;
      const id = (data[at + 2]! << 8) | data[at + 3]!;
      this.sink.record(type, id, data.subarray(at + HEADER_LENGTH, at + HEADER_LENGTH + length));
      if (this.#failed) return;
      at += total;
    }
    if (at < end) this.#partial = data.subarray(at);
  }

  /** Stop handing on records (the connection is being torn down). */
  stop(): void {
    this.#failed = true;
    this.#partial = undefined;
  }
}
