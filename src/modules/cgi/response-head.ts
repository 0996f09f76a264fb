/**
 * The header block a CGI program or FastCGI application writes before its body (RFC 3875 §6):
 * `Name: value` lines ended by LF or CRLF, a blank line, then the body. `Status:` sets the status
 * line; a `Location:` that is a local path without a `Status:` is a local redirect (the server
 * serves that URL instead, §6.2.2); any other `Location:` is a client redirect (302 unless a
 * Status says otherwise).
 */
import type { HttpResponse } from '../../worker/module-api.js';

/** Longest header block accepted: past it the application's answer is malformed. */
export const MAX_CGI_HEAD_BYTES = 64 * 1024;

export interface CgiHead {
  readonly status: number;
  /** The reason phrase after the Status code ('' when none was given). */
  readonly reason: string;
  /** Headers other than Status, flat [name, value, …] in the order written. */
  readonly headers: readonly string[];
  /** Set when the answer is a local redirect: the path (and query) to serve instead. */
  readonly localRedirect: string | undefined;
}

export class CgiHeadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CgiHeadError';
  }
}

/**
 * Collects bytes until the header block is complete. `push` returns undefined while it is not,
 * then the head and the body bytes that came with it; it throws CgiHeadError on a malformed
 * line or a head past MAX_CGI_HEAD_BYTES.
 */
export class CgiHeadParser {
  #pending: Buffer[] = [];
  #pendingLength = 0;

  push(chunk: Buffer): { head: CgiHead; rest: Buffer } | undefined {
    let data: Buffer;
    let searchFrom = 0;
    if (this.#pendingLength === 0) {
      data = chunk;
    } else {
      searchFrom = Math.max(0, this.#pendingLength - 3);
      this.#pending.push(chunk);
      data = Buffer.concat(this.#pending, this.#pendingLength + chunk.length);
    }
    const end = findHeadEnd(data, searchFrom);
    if (end === undefined) {
      if (data.length > MAX_CGI_HEAD_BYTES) throw new CgiHeadError(`the response headers are longer than ${MAX_CGI_HEAD_BYTES} bytes`);
      this.#pending = [data];
      this.#pendingLength = data.length;
      return undefined;
    }
    if (end.headEnd > MAX_CGI_HEAD_BYTES) throw new CgiHeadError(`the response headers are longer than ${MAX_CGI_HEAD_BYTES} bytes`);
    this.#pending = [];
    this.#pendingLength = 0;
    return { head: parseHead(data.toString('latin1', 0, end.headEnd)), rest: data.subarray(end.bodyStart) };
  }

  /** Bytes received that did not make a complete head. */
  get buffered(): number {
    return this.#pendingLength;
  }
}

/** Where the blank line is: the head's text ends at headEnd, the body starts at bodyStart. */
function findHeadEnd(data: Buffer, from: number): { headEnd: number; bodyStart: number } | undefined {
  // A head that is just a blank line (no headers) is malformed but recognised, so it can be reported.
  if (from === 0) {
    if (data[0] === 0x0a) return { headEnd: 0, bodyStart: 1 };
    if (data[0] === 0x0d && data[1] === 0x0a) return { headEnd: 0, bodyStart: 2 };
  }
  let i = data.indexOf(0x0a, from);
  while (i !== -1) {
    const next = data[i + 1];
    if (next === 0x0a) return { headEnd: i + 1, bodyStart: i + 2 };
    if (next === 0x0d && data[i + 2] === 0x0a) return { headEnd: i + 1, bodyStart: i + 3 };
    if (next === undefined || (next === 0x0d && i + 2 >= data.length)) return undefined;
    i = data.indexOf(0x0a, i + 1);
  }
  return undefined;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHead(text: string): CgiHead {
  if (text === '') throw new CgiHeadError('the response has no headers (at least Content-Type, Location or Status is required)');
  const headers: string[] = [];
  let status = 0;
  let reason = '';
  let location: string | undefined;
  let contentType = false;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new CgiHeadError(`the header line "${printable(line)}" has no name and colon`);
    const name = line.slice(0, colon).trimEnd();
    if (!TOKEN.test(name)) throw new CgiHeadError(`"${printable(name)}" is not a valid header name`);
    const value = line.slice(colon + 1).trim();
    if (/[\0\r\n]/.test(value)) throw new CgiHeadError(`the value of header "${name}" contains a control character`);
    const lower = name.toLowerCase();
    if (lower === 'status') {
      const m = /^(\d{3})(?:\s+(.*))?$/.exec(value);
      if (m === null || Number(m[1]) < 100) throw new CgiHeadError(`"Status: ${printable(value)}" is not a status code and reason`);
      status = Number(m[1]);
      reason = m[2] ?? '';
      continue;
    }
    if (lower === 'location') location = value;
    else if (lower === 'content-type') contentType = true;
    headers.push(name, value);
  }
  // RFC 3875 §6.2: a document response needs Content-Type; redirects and Status-only answers may omit it.
  if (status === 0 && location === undefined && !contentType) {
    throw new CgiHeadError('the response has neither Content-Type, Location nor Status');
  }
  const local = location !== undefined && status === 0 && location.startsWith('/') && !location.startsWith('//');
  if (status === 0) status = location !== undefined && !local ? 302 : 200;
  return { status, reason, headers, localRedirect: local ? location : undefined };
}

function printable(s: string): string {
  const cut = s.length > 80 ? s.slice(0, 80) + '…' : s;
  return cut.replace(/[^\x20-\x7e]/g, '?');
}

/**
 * Headers a CGI program does not set: the server frames the response itself (a Content-Length
 * the program got wrong would desynchronise the connection; the pipeline sends the real one
 * when the body is known whole, and streams chunked otherwise).
 */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'trailer', 'upgrade']);

/**
 * Put a (non-redirect) head on the response: status, reason, headers. Repeated headers add
 * values (Set-Cookie stays one line per cookie).
 */
export function applyCgiHead(res: HttpResponse, head: CgiHead): void {
  res.statusCode = head.status;
  res.subStatus = 0;
  res.statusReason = head.reason;
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const lower = name.toLowerCase();
    if (FRAMING.has(lower)) continue;
    const prev = res.getHeader(name);
    if (prev === undefined) res.setHeader(name, h[i + 1]!);
    else res.setHeader(name, typeof prev === 'string' ? [prev, h[i + 1]!] : [...prev, h[i + 1]!]);
  }
}
