/**
 * ETag and Last-Modified for files, and the conditional-request evaluation of RFC 9110 §13.2.2.
 */

/** 100 ns intervals between 1601-01-01 (Windows FILETIME epoch) and 1970-01-01. */
const FILETIME_UNIX_EPOCH = 116444736000000000n;

/**
 * IIS's static-file ETag: `"<FILETIME of the last write, hex>:<config change number>"`. The change
 * number is 0 (Wharf has no metabase change counter), as on a freshly configured IIS.
 */
export function fileEtag(mtimeMs: number): string {
  // mtimeMs × 10 000 overflows 2^53, so whole milliseconds and the sub-millisecond rest are
  // converted separately.
  const ms = Math.floor(mtimeMs);
  const ticks = BigInt(ms) * 10000n + BigInt(Math.round((mtimeMs - ms) * 10000)) + FILETIME_UNIX_EPOCH;
  return `"${ticks.toString(16)}:0"`;
}

/** Last-Modified as an IMF-fixdate (whole seconds). */
export function httpDate(mtimeMs: number): string {
  return new Date(Math.floor(mtimeMs / 1000) * 1000).toUTCString();
}

/** Parse an HTTP date to whole seconds since the epoch; NaN when invalid (the field is then ignored). */
export function parseHttpDateSeconds(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? NaN : Math.floor(ms / 1000);
}

interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string; // with its quotes
}

const TAG = /\s*(W\/)?("[^"]*")\s*(?:,|$)/gy;

/** Entity tags of an If-Match / If-None-Match list; undefined for "*". */
function parseTags(value: string): EntityTag[] | undefined {
  if (value.trim() === '*') return undefined;
  const tags: EntityTag[] = [];
  TAG.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (TAG.lastIndex < value.length && (m = TAG.exec(value)) !== null) {
    tags.push({ weak: m[1] !== undefined, opaque: m[2] ?? '' });
  }
  return tags;
}

/** RFC 9110 §8.8.3.2 strong comparison against our (strong) tag; "*" matches any current file. */
function matchesStrong(list: string, etag: string | undefined): boolean {
  const tags = parseTags(list);
  if (tags === undefined) return true;
  return etag !== undefined && tags.some((t) => !t.weak && t.opaque === etag);
}

/** Weak comparison (If-None-Match): W/ is ignored. */
function matchesWeak(list: string, etag: string | undefined): boolean {
  const tags = parseTags(list);
  if (tags === undefined) return true;
  if (etag === undefined) return false;
  return tags.some((t) => t.opaque === etag);
}

export type PreconditionResult = 'proceed' | 'not-modified' | 'failed';

export interface Validators {
  /** Our ETag, or undefined when clientCache setEtag is false. */
  readonly etag: string | undefined;
  /** Last-Modified in whole seconds. */
  readonly mtimeSeconds: number;
}

/** RFC 9110 §13.2.2 steps 1–4 for a GET or HEAD of an existing file. */
export function evaluatePreconditions(headers: Readonly<Record<string, string>>, v: Validators): PreconditionResult {
  const ifMatch = headers['if-match'];
  if (ifMatch !== undefined) {
    if (!matchesStrong(ifMatch, v.etag)) return 'failed';
  } else {
    const ius = headers['if-unmodified-since'];
    if (ius !== undefined) {
      const since = parseHttpDateSeconds(ius);
      if (!Number.isNaN(since) && v.mtimeSeconds > since) return 'failed';
    }
  }
  const ifNoneMatch = headers['if-none-match'];
  if (ifNoneMatch !== undefined) {
    if (matchesWeak(ifNoneMatch, v.etag)) return 'not-modified';
  } else {
    const ims = headers['if-modified-since'];
    if (ims !== undefined) {
      const since = parseHttpDateSeconds(ims);
      if (!Number.isNaN(since) && v.mtimeSeconds <= since) return 'not-modified';
    }
  }
  return 'proceed';
}

/**
 * RFC 9110 §13.1.5: whether If-Range lets the Range apply. An entity tag must match strongly; a date
 * must equal Last-Modified exactly.
 */
export function ifRangeMatches(ifRange: string, v: Validators): boolean {
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) {
    return v.etag !== undefined && value === v.etag;
  }
  const date = parseHttpDateSeconds(value);
  return !Number.isNaN(date) && date === v.mtimeSeconds;
}
