/**
 * Checks for what a worker sends the listener. A worker runs the pool's code (an application, a
 * third-party module): anything in its frames may be wrong, by bug or on purpose. A value out of
 * range throws IPC_INVALID_MESSAGE; the channel then closes that one worker (its requests are
 * replayed or answered 502 like after a crash) and the main process carries on.
 *
 * The checks are a few comparisons per frame: the hot path (a response head and end) pays one
 * integer test per number and one length test per header field.
 */
import { IpcError } from '../errors.js';
import type { CacheableMessage, LogMessage } from './messages.js';

/** HTTP status codes are three digits (RFC 9110 §15). */
export const MIN_STATUS = 100;
export const MAX_STATUS = 999;
/** IIS's sub-status is a USHORT; the ones in use are below 1000 (404.13, 500.19 …). */
export const MAX_SUB_STATUS = 999;
/** sc-win32-status is a DWORD. */
export const MAX_WIN32_STATUS = 0xffffffff;
/** Response header fields (name and value each count) in one head: 2000 headers. */
export const MAX_HEADER_FIELDS = 4000;
/** One header name or value; HTTP.sys's own request limit (MaxFieldLength) is far lower. */
export const MAX_HEADER_FIELD_LENGTH = 64 * 1024;
/** A reason phrase or a user name (the W3C line's cs-username). */
export const MAX_SHORT_TEXT = 1024;
/** A worker's log line as the main log keeps it. */
export const MAX_LOG_MESSAGE = 64 * 1024;
/** Files a cacheable response may depend on (the served file and its web.config files). */
export const MAX_CACHE_DEPENDENCIES = 256;
/** Content codings a cacheable response may vary among (httpCompression schemes). */
export const MAX_CACHE_ENCODINGS = 16;

function invalid(what: string): never {
  throw new IpcError('IPC_INVALID_MESSAGE', `worker sent ${what}`);
}

/** A response or interim status: an integer in 100..999. */
export function checkStatus(status: number): number {
  if (!Number.isInteger(status) || status < MIN_STATUS || status > MAX_STATUS) invalid(`status ${status}`);
  return status;
}

/** An integer in 0..max (sub-status, win32 status). */
export function checkUint(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) invalid(`${what} ${value}`);
  return value;
}

/** A finite number (a file's modification time in ms, which may have a fraction). */
export function checkFinite(value: number, what: string): number {
  if (!Number.isFinite(value)) invalid(`${what} ${value}`);
  return value;
}

/** Flat [name, value, …] header fields: an even count, bounded, each field bounded. */
export function checkHeaderFields(fields: readonly string[], what: string): readonly string[] {
  const n = fields.length;
  if ((n & 1) !== 0 || n > MAX_HEADER_FIELDS) invalid(`${what} with ${n} header fields`);
  for (let i = 0; i < n; i++) if (fields[i]!.length > MAX_HEADER_FIELD_LENGTH) invalid(`${what} with a header field of ${fields[i]!.length} characters`);
  return fields;
}

export function checkShortText(s: string, what: string): string {
  if (s.length > MAX_SHORT_TEXT) invalid(`a ${what} of ${s.length} characters`);
  return s;
}

/** JSON from a worker: a plain object, or IPC_INVALID_MESSAGE. */
function jsonObject(payload: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    invalid(`${what} that is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(`${what} that is not an object`);
  return v as Record<string, unknown>;
}

function finiteNonNegative(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) invalid(`${what} ${String(v)}`);
  return v;
}

export function parseCacheable(payload: Buffer): CacheableMessage {
  const o = jsonObject(payload, 'a cache policy');
  const policy = o['policy'];
  if (policy !== 'untilChange' && policy !== 'timePeriod') invalid(`cache policy ${String(policy)}`);
  const deps = o['dependencies'];
  if (!Array.isArray(deps) || deps.length > MAX_CACHE_DEPENDENCIES || !deps.every((d) => typeof d === 'string' && d.length <= 4096)) {
    invalid('cache dependencies that are not a short list of paths');
  }
  const encodings = o['encodings'];
  if (encodings !== undefined && (!Array.isArray(encodings) || encodings.length > MAX_CACHE_ENCODINGS || !encodings.every((e) => typeof e === 'string' && /^[a-z0-9!#$%&'*+.^_`|~-]{1,32}$/.test(e)))) {
    invalid('cache encodings that are not a short list of content codings');
  }
  const threshold = o['frequentHitThreshold'];
  if (!Number.isInteger(threshold) || (threshold as number) < 0) invalid(`frequentHitThreshold ${String(threshold)}`);
  return {
    policy,
    durationMs: finiteNonNegative(o['durationMs'], 'cache durationMs'),
    dependencies: deps as string[],
    frequentHitThreshold: threshold as number,
    frequentHitTimePeriodMs: finiteNonNegative(o['frequentHitTimePeriodMs'], 'frequentHitTimePeriodMs'),
    ...(encodings !== undefined ? { encodings: encodings as string[] } : {}),
    ...(o['identityForHttp10'] === true ? { identityForHttp10: true } : {}),
    ...(o['identityForProxies'] === true ? { identityForProxies: true } : {}),
  };
}

export function parseLog(payload: Buffer): LogMessage {
  const o = jsonObject(payload, 'a log message');
  const level = o['level'];
  const message = o['message'];
  if (level !== 'info' && level !== 'warn' && level !== 'error') invalid(`log level ${String(level)}`);
  if (typeof message !== 'string') invalid('a log message without text');
  // A long line is cut, not refused: the worker's own words are still worth reading.
  return { level, message: message.length > MAX_LOG_MESSAGE ? message.slice(0, MAX_LOG_MESSAGE) + ' …' : message };
}

