/**
 * The SSI directive syntax IIS's ssinc reads: an HTML comment whose first non-blank character is
 * `#`, a directive name and `tag=value` pairs (IIS 6 SDK, "#include" … "#exec"):
 *
 *   <!--#include file="footer.inc"-->     <!-- #config TIMEFMT = "%m/%d/%y" -->
 *
 * Names are matched ignoring case; values are double-quoted, single-quoted or a bare word. The
 * parser works on the file's bytes and hands back byte ranges, so text between directives is
 * sent as it is, whatever its encoding. A `<!--` followed by blanks and then `#` is a directive
 * only when the name is one SSI knows (`<!-- #region -->` stays an ordinary comment); right after
 * `<!--` any name is, and an unknown one is an error in place, as a misspelt `<!--#inlcude` must not
 * vanish silently.
 */

/** The directives IIS implements. */
export const DIRECTIVES = ['include', 'echo', 'fsize', 'flastmod', 'config', 'exec'] as const;
export type DirectiveName = (typeof DIRECTIVES)[number];

const KNOWN: ReadonlySet<string> = new Set(DIRECTIVES);

/** From `<!--` to `-->`: longer is an error, so a stray `<!--#` cannot make the parser scan a whole file per directive. */
export const MAX_DIRECTIVE_BYTES = 4096;

export interface SsiParameter {
  /** Lower case. */
  readonly name: string;
  /** As written, without its quotes (decoded as UTF-8). */
  readonly value: string;
}

export type SsiSegment =
  /** Bytes to copy: source[start, end). */
  | { readonly kind: 'text'; readonly start: number; readonly end: number }
  | { readonly kind: 'directive'; readonly name: DirectiveName; readonly parameters: readonly SsiParameter[] }
  /** A directive that cannot be read: its error message goes in its place. */
  | { readonly kind: 'malformed'; readonly reason: string };

const DASH = 0x2d;
const HASH = 0x23;
const GT = 0x3e;
const DQUOTE = 0x22;
const SQUOTE = 0x27;

function isBlank(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isLetter(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a));
}

/**
 * Where the directive that starts at `from` ends (the index of its `-->`), skipping quoted
 * values, so `errmsg="-->"` does not end it; -1 when there is none within MAX_DIRECTIVE_BYTES.
 */
function directiveEnd(source: Buffer, from: number, limit: number): number {
  let quote = 0;
  for (let i = from; i < limit; i++) {
    const c = source[i]!;
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === DQUOTE || c === SQUOTE) {
      quote = c;
    } else if (c === DASH && source[i + 1] === DASH && source[i + 2] === GT) {
      return i;
    }
  }
  return -1;
}

/** The `tag=value` pairs of a directive's body; a string is the reason it cannot be read. */
export function parseParameters(body: string): SsiParameter[] | string {
  const out: SsiParameter[] = [];
  let i = 0;
  const n = body.length;
  const skipBlanks = (): void => {
    while (i < n && /\s/.test(body[i]!)) i++;
  };
  for (;;) {
    skipBlanks();
    if (i >= n) return out;
    const nameStart = i;
    while (i < n && /[A-Za-z_]/.test(body[i]!)) i++;
    if (i === nameStart) return `unexpected '${body[i]}' where a tag name should be`;
    const name = body.slice(nameStart, i).toLowerCase();
    skipBlanks();
    if (body[i] !== '=') return `the tag '${name}' has no value (expected ${name}="…")`;
    i++;
    skipBlanks();
    const q = body[i];
    let value: string;
    if (q === '"' || q === "'") {
      const close = body.indexOf(q, i + 1);
      if (close === -1) return `the value of '${name}' has no closing quote`;
      value = body.slice(i + 1, close);
      i = close + 1;
    } else {
      const start = i;
      while (i < n && !/\s/.test(body[i]!)) i++;
      if (i === start) return `the tag '${name}' has no value`;
      value = body.slice(start, i);
    }
    out.push({ name, value });
  }
}

/**
 * The segments of an SSI document, in order. A generator: the caller stops pulling when a limit
 * is reached, so a document of a million directives costs only what was processed.
 */
export function* parseSsi(source: Buffer): Generator<SsiSegment, void, undefined> {
  let textStart = 0;
  let pos = 0;
  const length = source.length;
  for (;;) {
    const open = source.indexOf('<!--', pos, 'latin1');
    if (open === -1) break;
    let j = open + 4;
    while (isBlank(source[j])) j++;
    if (source[j] !== HASH) {
      pos = open + 4;
      continue;
    }
    const spaced = j > open + 4;
    const nameStart = j + 1;
    let k = nameStart;
    while (isLetter(source[k])) k++;
    const name = source.toString('latin1', nameStart, k).toLowerCase();
    const boundary = source[k];
    const nameEnds = k >= length || isBlank(boundary) || (boundary === DASH && source[k + 1] === DASH && source[k + 2] === GT);
    if (name === '' || (spaced && (!KNOWN.has(name) || !nameEnds))) {
      pos = nameStart;
      continue;
    }
    if (open > textStart) yield { kind: 'text', start: textStart, end: open };
    const limit = Math.min(length, open + MAX_DIRECTIVE_BYTES);
    const close = directiveEnd(source, k, limit);
    if (close === -1) {
      // Unterminated (or too long): the rest up to the next `-->` is the broken directive.
      const next = source.indexOf('-->', k, 'latin1');
      yield {
        kind: 'malformed',
        reason: limit === length ? `the directive #${name} is not closed with --> (or a quote in it is left open)` : `the directive #${name} is longer than ${MAX_DIRECTIVE_BYTES} bytes`,
      };
      pos = textStart = next === -1 ? length : next + 3;
      continue;
    }
    pos = textStart = close + 3;
    if (!nameEnds) {
      yield { kind: 'malformed', reason: `#${name}: a blank must follow the directive name` };
      continue;
    }
    if (!KNOWN.has(name)) {
      yield { kind: 'malformed', reason: `unknown directive #${name}` };
      continue;
    }
    const parameters = parseParameters(source.toString('utf8', k, close));
    if (typeof parameters === 'string') yield { kind: 'malformed', reason: `#${name}: ${parameters}` };
    else yield { kind: 'directive', name: name as DirectiveName, parameters };
  }
  if (textStart < length) yield { kind: 'text', start: textStart, end: length };
}
