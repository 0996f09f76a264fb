/**
 * The client's host name for ipSecurity domain entries (enableReverseDns): the address's name from
 * the system resolver (getnameinfo: /etc/hosts, DNS, as nsswitch.conf says), kept only when the
 * name resolves back to the address (forward-confirmed, so a client controlling its own reverse
 * zone cannot claim someone else's name). Any failure is "no name": domain entries then match
 * nothing.
 *
 * Bounded: results are cached (MAX_ENTRIES, names for POSITIVE_TTL_MS, failures for
 * NEGATIVE_TTL_MS); at most MAX_IN_FLIGHT lookups run at once (they use libuv's thread pool,
 * shared with file I/O, so a flood of new addresses must not take all of it); at most
 * MAX_WAITING addresses wait for a turn and more are answered "no name" at once; a lookup that
 * has not answered after LOOKUP_TIMEOUT_MS counts as failed. The event loop never waits.
 */
import { lookup, lookupService } from 'node:dns/promises';
import { parseAddress } from './ip-address.js';

const MAX_ENTRIES = 10_000;
const POSITIVE_TTL_MS = 5 * 60_000;
const NEGATIVE_TTL_MS = 60_000;
const MAX_IN_FLIGHT = 2;
const MAX_WAITING = 1_000;
const LOOKUP_TIMEOUT_MS = 5_000;

interface Entry {
  readonly name: string | null;
  readonly expires: number;
}

/** What a resolver does (tests may inject one); the default is the system's. */
export interface HostNameResolver {
  nameOf(address: string): Promise<string>;
  addressesOf(name: string): Promise<string[]>;
}

const SYSTEM: HostNameResolver = {
  async nameOf(address) {
    return (await lookupService(address, 0)).hostname;
  },
  async addressesOf(name) {
    return (await lookup(name, { all: true, verbatim: true })).map((r) => r.address);
  },
};

export class ReverseDns {
  readonly #cache = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<string | null>>();
  readonly #waiting: Array<() => void> = [];
  #inFlight = 0;
  readonly #resolver: HostNameResolver;
  readonly #now: () => number;

  constructor(options: { resolver?: HostNameResolver; now?: () => number } = {}) {
    this.#resolver = options.resolver ?? SYSTEM;
    this.#now = options.now ?? Date.now;
  }

  /** The cached answer: a name, null (none), or undefined when it must be looked up first. */
  cached(address: string): string | null | undefined {
    const e = this.#cache.get(address);
    if (e === undefined) return undefined;
    if (e.expires <= this.#now()) {
      this.#cache.delete(address);
      return undefined;
    }
    return e.name;
  }

  /** The forward-confirmed name of `address` (lower case), or null; never rejects. */
  resolve(address: string): Promise<string | null> {
    const c = this.cached(address);
    if (c !== undefined) return Promise.resolve(c);
    let p = this.#pending.get(address);
    if (p === undefined) {
      if (this.#inFlight >= MAX_IN_FLIGHT && this.#waiting.length >= MAX_WAITING) return Promise.resolve(null);
      p = this.#run(address).finally(() => this.#pending.delete(address));
      this.#pending.set(address, p);
    }
    return p;
  }

  async #run(address: string): Promise<string | null> {
    if (this.#inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.#waiting.push(r));
    this.#inFlight++;
    // The slot is held until the lookup really ends (a timed-out one still holds its thread).
    const lookup = this.#confirmed(address).finally(() => {
      this.#inFlight--;
      this.#waiting.shift()?.();
    });
    const name = await withTimeout(lookup);
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(address, { name, expires: this.#now() + (name === null ? NEGATIVE_TTL_MS : POSITIVE_TTL_MS) });
    return name;
  }

  async #confirmed(address: string): Promise<string | null> {
    const me = parseAddress(address);
    if (me === undefined) return null;
    try {
      const name = (await this.#resolver.nameOf(address)).toLowerCase();
      if (name === '' || parseAddress(name) !== undefined) return null; // no name: getnameinfo gave the address back
      for (const a of await this.#resolver.addressesOf(name)) {
        const back = parseAddress(a);
        if (back !== undefined && back[0] === me[0] && back[1] === me[1] && back[2] === me[2] && back[3] === me[3]) return name;
      }
      return null;
    } catch {
      return null;
    }
  }
}

function withTimeout(p: Promise<string | null>): Promise<string | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), LOOKUP_TIMEOUT_MS);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(null);
      },
    );
  });
}
