/**
 * The listener's response cache (HTTP.sys's kernel cache): whole responses that a worker marked
 * cacheable (a kernel cache policy, decided with the URL's configuration) and that are
 * frequently hit (serverRuntime frequentHitThreshold within frequentHitTimePeriod) are kept in
 * memory and served without waking a worker. Entries end when a file they depend on changes (the
 * served file, the web.config files of its URL: watched through their folders), when their time
 * period is over, when the configuration changes, after UriScavengerPeriod without a hit, or when
 * the cache is over its size (least recently used first).
 *
 * One URL may have one entry per content coding (compressed responses: Vary: Accept-Encoding).
 * A hit needs the request's Accept-Encoding to negotiate, among the codings the worker offered for
 * that URL, to the entry's coding — the rule the worker's compression modules use
 * (src/http/accept-encoding.ts) — so a client is never answered in a coding it would not have got
 * from the worker.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { CacheableMessage } from '../ipc/messages.js';
import { acceptEncodingOf, IDENTITY, negotiatorFor, type EncodingNegotiator } from '../http/accept-encoding.js';
import { cacheRemove, cacheStore, type CacheRemoveEvent } from '../diagnostics.js';

export interface CachedResponse {
  readonly key: string;
  /** Its Content-Encoding in lower case ('' for none): one entry per coding of a URL. */
  readonly coding: string;
  /** key + '\n' + coding: the entry's own name in the cache. */
  readonly id: string;
  readonly status: number;
  readonly reason: string;
  /** Headers as the worker sent them (Date and connection headers are the listener's). */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** Validators for conditional requests answered from the cache. */
  readonly etag: string | undefined;
  readonly lastModifiedMs: number | undefined;
  /** The headers a 304 from the cache carries (ETag, Last-Modified, Cache-Control, Expires …). */
  readonly notModifiedHeaders: readonly string[];
  /** Whether hits write a W3C line (the worker's httpLogging decision for the URL). */
  readonly log: boolean;
  /** Date.now() after which the entry is stale (Infinity: until a dependency changes). */
  readonly expiresAt: number;
  readonly bytes: number;
  lastHit: number;
  hits: number;
  /**
   * The HTTP/1.1 keep-alive response head of a hit, serialised once per second (its Date) by
   * the connection that serves it (Connection.responseCached), not once per hit.
   */
  wireHead?: Buffer | undefined;
  wireDate?: string | undefined;
  /** The same for HTTP/2 (Http2Connection.responseCached): the header block, its Date and HSTS line. */
  h2Head?: import('node:http2').OutgoingHttpHeaders | undefined;
  h2Date?: string | undefined;
  h2Hsts?: string | undefined;
}

export interface ResponseCacheOptions {
  /** Upper bound for the bytes of all entries. */
  readonly maxBytes: number;
  readonly now?: () => number;
  /** Folder watcher (tests inject one); default fs.watch. */
  readonly watchFolder?: (folder: string, onChange: (file: string | null) => void) => { close(): void } | undefined;
  /** ctime (ms) of a path, undefined when it does not exist (tests inject one); default fs.statSync. */
  readonly changedAt?: (path: string) => number | undefined;
}

/**
 * A worker's view of files may be up to a second old (its stat cache, web.config revalidation):
 * a response is not stored while a file it depends on, or that file's folder (a file created,
 * deleted or renamed), changed more recently than this.
 */
const SETTLE_MS = 2000;

/** IIS's UriScavengerPeriod: an entry not hit for this long is dropped. */
const SCAVENGER_PERIOD_MS = 120_000;
/** Frequent-hit counters kept at most (one per URL recently asked for). */
const MAX_TRACKED_URLS = 10_000;
/** And their keys' total length: URLs from clients can be kilobytes each. */
const MAX_TRACKED_CHARS = 4_000_000;
/** Headers a 304 repeats from the cached 200 (RFC 9110 §15.4.5; StaticFileModule sends the same). */
const NOT_MODIFIED_HEADERS = new Set(['etag', 'last-modified', 'cache-control', 'expires', 'accept-ranges', 'vary', 'content-location']);

/** The entries of one URL: per coding, and the codings the worker offers for it. */
interface UrlEntries {
  /** Undefined when the response does not vary by Accept-Encoding (one entry, served to all). */
  readonly negotiator: EncodingNegotiator | undefined;
  readonly variants: Map<string, CachedResponse>;
  /** HTTP/1.0 requests, requests with Via: the identity entry (the worker's noCompressionFor…). */
  identityForHttp10: boolean;
  identityForProxies: boolean;
}

interface FolderWatch {
  readonly watcher: { close(): void };
  /** Lower-case file name → ids of the entries that depend on it. */
  readonly files: Map<string, Set<string>>;
}

export class ResponseCache {
  maxBytes: number;
  readonly #now: () => number;
  readonly #watchFolder: NonNullable<ResponseCacheOptions['watchFolder']>;
  readonly #changedAt: NonNullable<ResponseCacheOptions['changedAt']>;
  /** Entries by id in least-recently-used order (a hit moves its entry to the end). */
  readonly #entries = new Map<string, CachedResponse>();
  /** Entries by URL key. */
  readonly #urls = new Map<string, UrlEntries>();
  /** Per entry, the folder/file pairs it is registered under (to unregister). */
  readonly #deps = new Map<string, Array<[string, string]>>();
  readonly #folders = new Map<string, FolderWatch>();
  readonly #hits = new Map<string, { n: number; since: number }>();
  #hitChars = 0;
  #bytes = 0;
  #scavenger: NodeJS.Timeout | undefined;
  /** Counters for `wharf` diagnostics and tests. */
  readonly stats = { hits: 0, stored: 0, invalidated: 0, evicted: 0 };

  constructor(options: ResponseCacheOptions) {
    this.maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
    this.#watchFolder = options.watchFolder ?? watchFolder;
    this.#changedAt = options.changedAt ?? changedAt;
  }

  get size(): number {
    return this.#entries.size;
  }
  get bytes(): number {
    return this.#bytes;
  }

  /** A cacheable-looking request arrived: count it towards frequentHitThreshold. */
  noteRequest(key: string): void {
    const now = this.#now();
    const h = this.#hits.get(key);
    if (h === undefined) {
      if (this.#hits.size >= MAX_TRACKED_URLS || this.#hitChars + key.length > MAX_TRACKED_CHARS) {
        this.#hits.clear();
        this.#hitChars = 0;
      }
      this.#hits.set(key, { n: 1, since: now });
      this.#hitChars += key.length;
    } else {
      h.n++;
    }
  }

  /**
   * The fresh entry for `key` in the coding the request's headers (`rawHeaders`, flat) negotiate
   * to, counted as a hit; undefined when there is none.
   */
  lookup(key: string, rawHeaders?: readonly string[], http10 = false): CachedResponse | undefined {
    const u = this.#urls.get(key);
    if (u === undefined) return undefined;
    let coding = '';
    const n = u.negotiator;
    if (n !== undefined && !(http10 && u.identityForHttp10) && !(u.identityForProxies && rawHeaders !== undefined && hasVia(rawHeaders))) {
      const i = n.negotiate(rawHeaders === undefined ? undefined : acceptEncodingOf(rawHeaders));
      if (i !== IDENTITY) coding = n.offered[i]!;
    }
    const e = u.variants.get(coding);
    if (e === undefined) return undefined;
    const now = this.#now();
    if (now >= e.expiresAt) {
      this.#remove(e.id, 'expired');
      return undefined;
    }
    e.lastHit = now;
    e.hits++;
    this.stats.hits++;
    // Most recently used last: re-insert.
    this.#entries.delete(e.id);
    this.#entries.set(e.id, e);
    return e;
  }

  /**
   * A worker's response that it allowed to be cached. Stored when the URL was asked for
   * frequentHitThreshold times within frequentHitTimePeriod and it fits; returns whether it was.
   */
  offer(key: string, hint: CacheableMessage, status: number, reason: string, headers: readonly string[], body: Buffer, log = true): boolean {
    const now = this.#now();
    const h = this.#hits.get(key);
    if (h === undefined) return false;
    if (now - h.since > hint.frequentHitTimePeriodMs) {
      // The window is over: this request starts a new one.
      h.n = 1;
      h.since = now;
    }
    if (h.n < hint.frequentHitThreshold) return false;
    const bytes = body.length + headerBytes(headers);
    if (bytes > this.maxBytes) return false;
    const expiresAt = hint.policy === 'timePeriod' ? now + hint.durationMs : Infinity;
    // The coding of this response, and the codings the URL varies among (the worker's list, else
    // those seen when the response says Vary: Accept-Encoding itself).
    let coding = '';
    let varies = hint.encodings !== undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'content-encoding') coding = headers[i + 1]!.trim().toLowerCase();
      else if (name === 'vary' && /(?:^|,)\s*accept-encoding\s*(?:,|$)/i.test(headers[i + 1]!)) varies = true;
    }
    let u = this.#urls.get(key);
    const offered = varies ? offeredCodings(hint.encodings, coding, u?.negotiator?.offered) : undefined;
    if (u !== undefined && u.negotiator?.offered !== offered) {
      // The URL's codings changed (or it started or stopped varying): its entries go.
      for (const e of [...u.variants.values()]) this.#remove(e.id, 'invalidated');
      u = undefined;
    }
    if (!varies) coding = '';
    const id = key + '\n' + coding;
    this.#remove(id, 'invalidated'); // an older entry for the same URL and coding (its registrations go with it)
    if (u !== undefined && this.#urls.get(key) !== u) u = undefined; // that was its last entry
    const deps: Array<[string, string]> = [];
    if (hint.policy === 'untilChange') {
      for (const file of hint.dependencies) {
        const folder = dirname(file);
        const w = this.#folder(folder);
        // A dependency that cannot be watched: nothing would ever invalidate the entry.
        if (w === undefined) {
          this.#release(id, deps);
          return false;
        }
        const name = basename(file).toLowerCase();
        let ids = w.files.get(name);
        if (ids === undefined) w.files.set(name, (ids = new Set()));
        ids.add(id);
        deps.push([folder, name]);
      }
      // Watching first, then looking: a change from here on invalidates; one just before may not
      // be in the worker's response yet, so such a response is not kept.
      for (const file of hint.dependencies) {
        const fileChanged = this.#changedAt(file);
        const folderChanged = this.#changedAt(dirname(file));
        if ((fileChanged !== undefined && now - fileChanged < SETTLE_MS) || (folderChanged !== undefined && now - folderChanged < SETTLE_MS)) {
          this.#release(id, deps);
          return false;
        }
      }
    }
    let etag: string | undefined;
    let lastModifiedMs: number | undefined;
    const notModified: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'etag') etag = headers[i + 1];
      else if (name === 'last-modified') {
        const t = Date.parse(headers[i + 1]!);
        if (!Number.isNaN(t)) lastModifiedMs = t;
      }
      if (NOT_MODIFIED_HEADERS.has(name)) notModified.push(headers[i]!, headers[i + 1]!);
    }
    const entry: CachedResponse = {
      key,
      coding,
      id,
      status,
      reason,
      headers,
      body,
      etag,
      lastModifiedMs,
      notModifiedHeaders: notModified,
      log,
      expiresAt,
      bytes,
      lastHit: now,
      hits: 0,
    };
    this.#entries.set(id, entry);
    if (u === undefined) this.#urls.set(key, (u = { negotiator: offered === undefined ? undefined : negotiatorFor(offered), variants: new Map(), identityForHttp10: false, identityForProxies: false }));
    u.identityForHttp10 = hint.identityForHttp10 === true;
    u.identityForProxies = hint.identityForProxies === true;
    u.variants.set(coding, entry);
    this.#deps.set(id, deps);
    this.#bytes += bytes;
    this.stats.stored++;
    if (cacheStore.hasSubscribers) cacheStore.publish({ cacheKey: key, bytes, entries: this.#entries.size });
    while (this.#bytes > this.maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#remove(oldest.value, 'evicted');
      this.stats.evicted++;
    }
    this.#armScavenger();
    return true;
  }

  /** Drop everything (the configuration changed). */
  clear(): void {
    for (const key of [...this.#entries.keys()]) this.#remove(key, 'flushed');
    this.#hits.clear();
    this.#hitChars = 0;
  }

  close(): void {
    this.clear();
    if (this.#scavenger !== undefined) clearInterval(this.#scavenger);
    this.#scavenger = undefined;
  }

  #folder(folder: string): FolderWatch | undefined {
    let w = this.#folders.get(folder);
    if (w !== undefined) return w;
    const files = new Map<string, Set<string>>();
    const watcher = this.#watchFolder(folder, (file) => this.#changed(folder, file));
    if (watcher === undefined) return undefined;
    w = { watcher, files };
    this.#folders.set(folder, w);
    return w;
  }

  #changed(folder: string, file: string | null): void {
    const w = this.#folders.get(folder);
    if (w === undefined) return;
    const ids: string[] = [];
    if (file === null) for (const set of w.files.values()) ids.push(...set);
    else {
      const set = w.files.get(file.toLowerCase());
      if (set !== undefined) ids.push(...set);
    }
    for (const id of ids) {
      if (this.#remove(id, 'invalidated')) this.stats.invalidated++;
    }
  }

  #remove(id: string, reason: CacheRemoveEvent['reason']): boolean {
    const e = this.#entries.get(id);
    if (e === undefined) return false;
    this.#entries.delete(id);
    const u = this.#urls.get(e.key);
    if (u !== undefined && u.variants.get(e.coding) === e) {
      u.variants.delete(e.coding);
      if (u.variants.size === 0) this.#urls.delete(e.key);
    }
    this.#bytes -= e.bytes;
    this.#release(id, this.#deps.get(id) ?? []);
    this.#deps.delete(id);
    if (cacheRemove.hasSubscribers) cacheRemove.publish({ cacheKey: e.key, reason, entries: this.#entries.size });
    return true;
  }

  #release(id: string, deps: ReadonlyArray<[string, string]>): void {
    for (const [folder, name] of deps) {
      const w = this.#folders.get(folder);
      if (w === undefined) continue;
      const set = w.files.get(name);
      set?.delete(id);
      if (set !== undefined && set.size === 0) w.files.delete(name);
      if (w.files.size === 0) {
        w.watcher.close();
        this.#folders.delete(folder);
      }
    }
  }

  #armScavenger(): void {
    if (this.#scavenger !== undefined) return;
    this.#scavenger = setInterval(() => {
      const now = this.#now();
      for (const [id, e] of this.#entries) {
        // UriScavengerPeriod without a hit is an eviction (HTTP.sys's scavenger), a past time period an expiry.
        if (now >= e.expiresAt) this.#remove(id, 'expired');
        else if (now - e.lastHit >= SCAVENGER_PERIOD_MS) this.#remove(id, 'evicted');
      }
      if (this.#entries.size === 0 && this.#scavenger !== undefined) {
        clearInterval(this.#scavenger);
        this.#scavenger = undefined;
      }
    }, SCAVENGER_PERIOD_MS / 2);
    this.#scavenger.unref();
  }
}

/**
 * The codings a varying URL is offered in: the worker's list (the same array object while it does
 * not change, so the negotiator is shared), else the ones seen so far plus this response's.
 */
function offeredCodings(fromWorker: readonly string[] | undefined, coding: string, before: readonly string[] | undefined): readonly string[] {
  if (fromWorker !== undefined) {
    if (before !== undefined && before.length === fromWorker.length && before.every((c, i) => c === fromWorker[i])) return before;
    return fromWorker;
  }
  if (before === undefined) return coding === '' ? [] : [coding];
  if (coding === '' || before.includes(coding)) return before;
  return [...before, coding];
}

function hasVia(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 3 && raw[i]!.toLowerCase() === 'via') return true;
  return false;
}

function changedAt(path: string): number | undefined {
  try {
    return statSync(path).ctimeMs;
  } catch {
    return undefined;
  }
}

function headerBytes(headers: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < headers.length; i++) n += headers[i]!.length + 2;
  return n;
}

/** fs.watch on a folder; undefined when it cannot be watched (missing folder, no inotify watches left). */
function watchFolder(folder: string, onChange: (file: string | null) => void): { close(): void } | undefined {
  let w: FSWatcher;
  try {
    w = watch(folder, { persistent: false }, (_event, file) => onChange(typeof file === 'string' ? file : null));
  } catch {
    return undefined;
  }
  // The folder itself went away (or the watch broke): everything under it is stale.
  w.on('error', () => onChange(null));
  return w;
}
