/**
 * Accept-Encoding negotiation (RFC 9110 §12.5.3), shared by the worker's compression modules and
 * the listener's response cache, so a cached entry is served to exactly the requests the worker
 * would have given that content coding.
 *
 * The rule (IIS 10 1803+ "compression scheme prioritization"): among the codings the server offers,
 * in its order (the `<scheme>` collection), each gets the q-value the request gives it — its own
 * entry, else `*`'s, else 0 (`x-gzip` counts as `gzip`, §8.4.1.3). The highest q above 0 wins; equal
 * q-values go to the coding listed first by the server. Identity wins instead only when the request
 * lists it (or `*` covers it) with a q-value above the best coding's. No Accept-Encoding field: no
 * coding (IIS does not compress then). A request that refuses identity and accepts nothing offered
 * still gets identity (RFC 9110 allows that instead of a 406, and every peer does it).
 */

/** What negotiate() returns when no coding applies: send the representation as it is. */
export const IDENTITY = -1;

const NONE: readonly number[] = Object.freeze([]);

interface Coding {
  readonly name: string;
  readonly q: number;
}

/** One field value parsed: codings by lower-case name (x-gzip folded into gzip), `*` kept as '*'. */
function parse(value: string): Coding[] {
  const out: Coding[] = [];
  for (const part of value.split(',')) {
    const semi = part.indexOf(';');
    let name = (semi === -1 ? part : part.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let q = 1;
    if (semi !== -1) {
      // Parameters: only q matters (weight = OWS ";" OWS "q=" qvalue).
      for (const p of part.slice(semi + 1).split(';')) {
        const eq = p.indexOf('=');
        if (eq === -1 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
        const n = Number(p.slice(eq + 1).trim());
        q = Number.isFinite(n) && n >= 0 && n <= 1 ? n : 0;
      }
    }
    out.push({ name, q });
  }
  return out;
}

function qOf(codings: readonly Coding[], name: string): number | undefined {
  let star: number | undefined;
  for (const c of codings) {
    if (c.name === name) return c.q;
    if (c.name === '*') star = c.q;
  }
  return star;
}

/**
 * The acceptable offered codings, best first (highest q, then server order); empty when identity
 * is to be sent. `offered` are lower-case coding names in server order.
 */
export function acceptableCodings(acceptEncoding: string | undefined, offered: readonly string[]): number[] {
  if (acceptEncoding === undefined || offered.length === 0) return [];
  const codings = parse(acceptEncoding);
  const ranked: Array<{ i: number; q: number }> = [];
  for (let i = 0; i < offered.length; i++) {
    const q = qOf(codings, offered[i]!) ?? 0;
    if (q > 0) ranked.push({ i, q });
  }
  if (ranked.length === 0) return [];
  // Stable: equal q keeps the server's order.
  ranked.sort((a, b) => b.q - a.q);
  // Identity beats the codings only when the client ranks it higher (explicitly, or through *).
  const identity = qOf(codings, 'identity');
  const best = ranked[0]!.q;
  if (identity !== undefined && identity > best) return [];
  return ranked.map((r) => r.i);
}

/**
 * A negotiator for one list of offered codings, remembering its answers: clients send few distinct
 * Accept-Encoding values, and the listener asks on every cache hit.
 */
export class EncodingNegotiator {
  readonly offered: readonly string[];
  readonly #memo = new Map<string, number>();

  constructor(offered: readonly string[]) {
    this.offered = offered;
  }

  readonly #orders = new Map<string, readonly number[]>();

  /** acceptableCodings() for this offer, remembered per header value. */
  order(acceptEncoding: string | undefined): readonly number[] {
    if (acceptEncoding === undefined || this.offered.length === 0) return NONE;
    let r = this.#orders.get(acceptEncoding);
    if (r === undefined) {
      r = acceptableCodings(acceptEncoding, this.offered);
      if (this.#orders.size >= 64) this.#orders.clear();
      this.#orders.set(acceptEncoding, r);
    }
    return r;
  }

  /** Index into `offered` of the coding to send, or IDENTITY. */
  negotiate(acceptEncoding: string | undefined): number {
    if (acceptEncoding === undefined || this.offered.length === 0) return IDENTITY;
    let r = this.#memo.get(acceptEncoding);
    if (r === undefined) {
      r = acceptableCodings(acceptEncoding, this.offered)[0] ?? IDENTITY;
      // Bounded: a client inventing values cannot grow it.
      if (this.#memo.size >= 64) this.#memo.clear();
      this.#memo.set(acceptEncoding, r);
    }
    return r;
  }
}

const negotiators = new Map<string, EncodingNegotiator>();

/** The shared negotiator for an offered list (keyed by its names joined with ','). */
export function negotiatorFor(offered: readonly string[]): EncodingNegotiator {
  const key = offered.join(',');
  let n = negotiators.get(key);
  if (n === undefined) {
    if (negotiators.size >= 256) negotiators.clear();
    negotiators.set(key, (n = new EncodingNegotiator(offered)));
  }
  return n;
}

/** The Accept-Encoding field of flat raw headers (repeats joined with ', '), or undefined. */
export function acceptEncodingOf(rawHeaders: readonly string[]): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === 15 && n.toLowerCase() === 'accept-encoding') v = v === undefined ? rawHeaders[i + 1]! : v + ', ' + rawHeaders[i + 1]!;
  }
  return v;
}

/** A Vary field value with Accept-Encoding added once (RFC 9110 §12.5.5); `*` stays `*`. */
export function withVaryAcceptEncoding(current: string | readonly string[] | undefined): string {
  const value = current === undefined ? '' : typeof current === 'string' ? current : current.join(', ');
  if (value.trim() === '') return 'Accept-Encoding';
  for (const part of value.split(',')) {
    const p = part.trim().toLowerCase();
    if (p === 'accept-encoding' || p === '*') return value;
  }
  return `${value}, Accept-Encoding`;
}
