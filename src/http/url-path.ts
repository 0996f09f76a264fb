/**
 * URL canonicalisation done once by the listener, as HTTP.sys does before routing: the path is
 * percent-decoded (UTF-8), backslashes are treated as slashes, '.' and '..' segments are resolved,
 * and anything that could name a file outside the virtual directory is refused. Workers receive
 * the canonical path and never re-derive it from the raw target.
 */
import { isUtf8 } from 'node:buffer';

/**
 * HTTP.sys's `UrlSegmentMaxCount` and `UrlSegmentMaxLength` (iis-behavior.md §4.1): more segments,
 * or a longer segment (in UTF-16 characters, as HTTP.sys counts them), is a 400 `URL`. 0: no limit.
 */
export interface UrlSegmentLimits {
  readonly urlSegmentMaxCount: number;
  readonly urlSegmentMaxLength: number;
}

export type UrlParseResult =
  | { readonly ok: true; readonly path: string; readonly query: string; readonly host: string | undefined }
  | { readonly ok: false; readonly reason: 'URL' };

const HEX: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 10; i++) t[0x30 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[0x41 + i] = 10 + i;
    t[0x61 + i] = 10 + i;
  }
  return t;
})();

const NO_LIMITS: UrlSegmentLimits = { urlSegmentMaxCount: 0, urlSegmentMaxLength: 0 };

/**
 * Split a request-target as received (a latin1 string: one character per wire byte) into
 * canonical path and query: origin-form, absolute-form (RFC 9112 §3.2.2; its authority is returned
 * as `host`) or asterisk-form (`*`, path '*'; only OPTIONS may use it, which the caller checks).
 */
export function parseRequestTarget(target: string, limits: UrlSegmentLimits = NO_LIMITS): UrlParseResult {
  return parseTarget(target, true, limits);
}

/** parseRequestTarget for a URL written as a JavaScript string (configuration): see canonicalizePath. */
export function parseUrl(url: string): UrlParseResult {
  return parseTarget(url, false, NO_LIMITS);
}

function parseTarget(target: string, wire: boolean, limits: UrlSegmentLimits): UrlParseResult {
  let host: string | undefined;
  let rest = target;
  if (target === '*') return { ok: true, path: '*', query: '', host: undefined };
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    // absolute-form: http://host[:port]/path — the host in the target wins over the Host header.
    const m = /^https?:\/\/([^/?#]+)(.*)$/i.exec(target);
    if (!m) return { ok: false, reason: 'URL' };
    host = m[1]!;
    rest = m[2] === '' ? '/' : m[2]!;
    if (rest.charCodeAt(0) !== 0x2f) {
      if (rest.charCodeAt(0) !== 0x3f /* ? */) return { ok: false, reason: 'URL' };
      rest = '/' + rest;
    }
  }
  const q = rest.indexOf('?');
  const rawPath = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q + 1);
  const path = canonicalize(rawPath, wire, limits);
  if (path === undefined) return { ok: false, reason: 'URL' };
  return { ok: true, path, query, host };
}

/**
 * Decode and canonicalise a URL path given as a JavaScript string (a child request's URL, a
 * rewritten path): non-ASCII characters stand for themselves, `%XX` escapes for UTF-8 bytes.
 * Returns undefined for paths HTTP.sys rejects with 400 (URL): invalid percent-encoding, invalid
 * UTF-8 in the escapes, control characters raw or encoded, or '..' climbing above the root.
 */
export function canonicalizePath(raw: string): string | undefined {
  return canonicalize(raw, false, NO_LIMITS);
}

/**
 * Windows-1252 for bytes 0x80–0x9F (the rest of the code page is latin1): the ANSI code page of an
 * en-US Windows, which HTTP.sys falls back to for a URL that is not valid UTF-8 (see decodeWire).
 * Its five unassigned bytes map to the C1 controls of the same value, as Windows does.
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

function decodeCp1252(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += String.fromCharCode(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80]! : b);
  }
  return out;
}

/**
 * The decoded path. `wire`: `raw` holds request bytes (latin1), raw or %-escaped, decoded together
 * the way HTTP.sys does with its defaults `FavorUTF8=1` and `EnableNonUTF8=1`: as UTF-8 when they
 * are valid UTF-8, else in the ANSI code page (Windows-1252 here). So `/caf\xc3\xa9` and
 * `/caf%C3%A9` are the same URL, and `/caf%E9` is `/café` too. Not `wire`: a JavaScript string,
 * whose escapes must be valid UTF-8.
 */
function decode(raw: string, wire: boolean): string | undefined {
  const bytes = Buffer.allocUnsafe(raw.length * 3);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const h = HEX[raw.charCodeAt(i + 1) & 0xff]!;
      const l = HEX[raw.charCodeAt(i + 2) & 0xff]!;
      if (i + 2 >= raw.length || h < 0 || l < 0 || raw.charCodeAt(i + 1) > 0xff || raw.charCodeAt(i + 2) > 0xff) return undefined;
      bytes[n++] = (h << 4) | l;
      i += 2;
    } else if (c < 0x80 || (wire && c <= 0xff)) {
      bytes[n++] = c;
    } else {
      // A JavaScript string's own character (a surrogate pair stays whole).
      const cp = raw.codePointAt(i)!;
      n += bytes.write(String.fromCodePoint(cp), n, 'utf8');
      if (cp > 0xffff) i++;
    }
  }
  const slice = bytes.subarray(0, n);
  if (isUtf8(slice)) return slice.toString('utf8');
  return wire ? decodeCp1252(slice) : undefined;
}

function canonicalize(raw: string, wire: boolean, limits: UrlSegmentLimits): string | undefined {
  const maxCount = limits.urlSegmentMaxCount;
  const maxLength = limits.urlSegmentMaxLength;
  // Fast path: plain ASCII paths without '%', '\\', '.'-segments or '//' need no work (the
  // common case on the hot path, so avoid allocating) — unless a segment limit is exceeded.
  let simple = true;
  let count = 0;
  let segStart = 1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x25 || c === 0x5c || c >= 0x7f) {
      simple = false;
      break;
    }
    if (c === 0x2f) {
      const next = raw.charCodeAt(i + 1);
      if (next === 0x2f || next === 0x2e) {
        simple = false;
        break;
      }
      if (i > 0) {
        count++;
        if (maxLength > 0 && i - segStart > maxLength) return undefined;
      }
      segStart = i + 1;
    }
  }
  if (simple) {
    if (raw.length > segStart) {
      count++;
      if (maxLength > 0 && raw.length - segStart > maxLength) return undefined;
    }
    if (maxCount > 0 && count > maxCount) return undefined;
    return raw.length === 0 ? '/' : raw;
  }

  let decoded = raw;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 || (wire && c >= 0x80)) {
      const d = decode(raw, wire);
      if (d === undefined) return undefined;
      decoded = d;
      break;
    }
  }
  const segments: string[] = [];
  let start = 0;
  const s = decoded;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2f;
    // NUL, C0 and C1 controls and DEL, raw or encoded: HTTP.sys refuses them unless
    // AllowRestrictedChars is set (its default is 0).
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return undefined;
    if (c === 0x2f || c === 0x5c) {
      if (maxLength > 0 && i - start > maxLength) return undefined;
      const seg = s.slice(start, i);
      start = i + 1;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (segments.length === 0) return undefined;
        segments.pop();
        continue;
      }
      segments.push(seg);
    }
  }
  if (maxCount > 0 && segments.length > maxCount) return undefined;
  const endsWithSlash = s.length > 0 && (s.charCodeAt(s.length - 1) === 0x2f || s.charCodeAt(s.length - 1) === 0x5c);
  if (segments.length === 0) return '/';
  return '/' + segments.join('/') + (endsWithSlash ? '/' : '');
}

/**
 * Whether `path` lies at or under `prefix` by whole segments, case-insensitively (IIS URL
 * matching): '/App' matches '/app', '/app/', '/app/x' but not '/apple'.
 */
export function isUnderUrlPath(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (path.length < prefix.length) return false;
  if (path.length > prefix.length && path.charCodeAt(prefix.length) !== 0x2f) return false;
  const head = path.slice(0, prefix.length);
  return head === prefix || head.toLowerCase() === prefix.toLowerCase();
}

// RFC 3986 pchar plus '/': everything else in a decoded path is percent-encoded (UTF-8).
const NOT_PATH_CHAR = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/gu;

/** Encode a decoded URL path (request.path, a file name) for an href or a Location header. */
export function encodeUrlPath(path: string): string {
  return path.replace(NOT_PATH_CHAR, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      // A lone surrogate (from a file name that is not valid UTF-8): send U+FFFD.
      return '%EF%BF%BD';
    }
  });
}
