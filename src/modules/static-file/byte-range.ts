/**
 * The Range request header (RFC 9110 §14.2) for a representation of known size.
 */

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

export type RangeRequest =
  | { readonly kind: 'ignore' } // absent, another unit, invalid syntax, or too many ranges: send 200
  | { readonly kind: 'unsatisfiable' } // 416
  | { readonly kind: 'ranges'; readonly ranges: readonly ByteRange[] };

/** More ranges than this are answered with the whole file (RFC 9110 §14.2 permits ignoring them). */
export const MAX_RANGES = 64;

const IGNORE: RangeRequest = { kind: 'ignore' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };
const SPEC = /^(\d*)-(\d*)$/;

export function parseRange(header: string, size: number): RangeRequest {
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return IGNORE;
  const ranges: ByteRange[] = [];
  let specs = 0;
  for (const raw of header.slice(eq + 1).split(',')) {
    const spec = raw.trim();
    if (spec === '') continue; // empty list elements are allowed (RFC 9110 §5.6.1)
    if (++specs > MAX_RANGES) return IGNORE;
    const m = SPEC.exec(spec);
    if (!m) return IGNORE;
    const first = m[1] ?? '';
    const last = m[2] ?? '';
    if (first === '' && last === '') return IGNORE;
    if (first === '') {
      // Suffix range: the last N bytes.
      const n = Number(last);
      if (n === 0 || size === 0) continue;
      ranges.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(first);
    if (last !== '' && Number(last) < start) return IGNORE;
    if (start >= size) continue; // this one is unsatisfiable; others may not be
    const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    ranges.push({ start, end });
  }
  if (specs === 0) return IGNORE;
  if (ranges.length === 0) return UNSATISFIABLE;
  return { kind: 'ranges', ranges: coalesce(ranges) };
}

/**
 * Overlapping or touching ranges are merged (RFC 9110 §14.2 allows it), which also stops a client
 * from asking for the same bytes many times over. Disjoint ranges keep the order asked for.
 */
function coalesce(ranges: ByteRange[]): readonly ByteRange[] {
  if (ranges.length < 2) return ranges;
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  let overlap = false;
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (prev && cur && cur.start <= prev.end + 1) overlap = true;
  }
  if (!overlap) return ranges;
  const merged: ByteRange[] = [];
  for (const r of sorted) {
    const top = merged[merged.length - 1];
    if (top && r.start <= top.end + 1) merged[merged.length - 1] = { start: top.start, end: Math.max(top.end, r.end) };
    else merged.push(r);
  }
  return merged;
}
