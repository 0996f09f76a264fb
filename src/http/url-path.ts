/**
 * URL canonicalisation done once by the listener, as HTTP.sys does before routing: the path is
 * percent-decoded (UTF-8), backslashes are treated as slashes, '.' and '..' segments are resolved,
 * and anything that could name a file outside the virtual directory is refused. Workers receive
 * the canonical path and never re-derive it from the raw target.
 */

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

/**
 * Split a request-target (origin-form or absolute-form, RFC 9112 §3.2) into canonical path and
 * query. `*` (asterisk-form, OPTIONS) yields path '*'.
 */
export function parseRequestTarget(target: string): UrlParseResult {
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
  const path = canonicalizePath(rawPath);
  if (path === undefined) return { ok: false, reason: 'URL' };
  return { ok: true, path, query, host };
}

/**
 * Decode and canonicalise a raw URL path. Returns undefined for paths HTTP.sys rejects with
 * 400 (URL): invalid percent-encoding, encoded or raw NUL/control characters, invalid UTF-8, or
 * '..' climbing above the root.
 */
export function canonicalizePath(raw: string): string | undefined {
  // Fast path: plain ASCII paths without '%', '\\', '.'-segments or '//' need no work (the
  // common case on the hot path, so avoid allocating).
  let simple = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x25 || c === 0x5c || c >= 0x7f) {
      simple = false;
      break;
    }
    if (c === 0x2f && (raw.charCodeAt(i + 1) === 0x2f || raw.charCodeAt(i + 1) === 0x2e)) {
      simple = false;
      break;
    }
  }
  if (simple) return raw.length === 0 ? '/' : raw;

  let decoded: string;
  if (raw.indexOf('%') === -1) {
    decoded = raw;
  } else {
    const bytes = Buffer.allocUnsafe(raw.length * 3);
    let n = 0;
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c === 0x25) {
        const h = HEX[raw.charCodeAt(i + 1) & 0xff]!;
        const l = HEX[raw.charCodeAt(i + 2) & 0xff]!;
        if (i + 2 >= raw.length || h < 0 || l < 0) return undefined;
        bytes[n++] = (h << 4) | l;
        i += 2;
      } else if (c < 0x80) {
        bytes[n++] = c;
      } else {
        n += bytes.write(raw[i]!, n, 'latin1');
      }
    }
    const slice = bytes.subarray(0, n);
    decoded = slice.toString('utf8');
    // Invalid UTF-8 decodes to U+FFFD; HTTP.sys would try other code pages, we refuse.
    if (decoded.indexOf('\ufffd') !== -1 && !Buffer.from(decoded, 'utf8').equals(slice)) return undefined;
  }
  const segments: string[] = [];
  let start = 0;
  const s = decoded;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2f;
    if (c < 0x20 || c === 0x7f) return undefined; // NUL and control characters, raw or encoded
    if (c === 0x2f || c === 0x5c) {
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
