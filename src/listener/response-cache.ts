/**
 * The listener's response cache (HTTP.sys's kernel cache): whole responses that a worker marked
 * cacheable (a kernel cache policy, decided with the URL's configuration) and that are
 * frequently hit (serverRuntime frequentHitThreshold within frequentHitTimePeriod) are kept in
 * memory and served without waking a worker. Entries end when a file they depend on changes (the
 * served file, the web.config files of its URL: watched through their folders), when their time
 * period is over, when the configuration changes, after UriScavengerPeriod without a hit, or when
 * the cache is over its size (least recently used first).
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { CacheableMessage } from '../ipc/messages.js';
import { cacheRemove, cacheStore, type CacheRemoveEvent } from '../diagnostics.js';

export interface CachedResponse {
  readonly key: string;
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

interface FolderWatch {
  readonly watcher: { close(): void };
  /** Lower-case file name → keys of the entries that depend on it. */
  readonly files: Map<string, Set<string>>;
}

export class ResponseCache {
  maxBytes: number;
  readonly #now: () => number;
  readonly #watchFolder: NonNullable<ResponseCacheOptions['watchFolder']>;
  readonly #changedAt: NonNullable<ResponseCacheOptions['changedAt']>;
  /** Entries in least-recently-used order (a hit moves its entry to the end). */
  readonly #entries = new Map<string, CachedResponse>();
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

  /** The fresh entry for `key`, counted as a hit; undefined when there is none. */
  lookup(key: string): CachedResponse | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    const now = this.#now();
    if (now >= e.expiresAt) {
      this.#remove(key, 'expired');
      return undefined;
    }
    e.lastHit = now;
    e.hits++;
    this.stats.hits++;
    // Most recently used last: re-insert.
    this.#entries.delete(key);
    this.#entries.set(key, e);
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
    this.#remove(key, 'invalidated'); // an older entry for the same URL (its registrations go with it)
    const deps: Array<[string, string]> = [];
    if (hint.policy === 'untilChange') {
      for (const file of hint.dependencies) {
        const folder = dirname(file);
        const w = this.#folder(folder);
        // A dependency that cannot be watched: nothing would ever invalidate the entry.
        if (w === undefined) {
          this.#release(key, deps);
          return false;
        }
        const name = basename(file).toLowerCase();
        let keys = w.files.get(name);
        if (keys === undefined) w.files.set(name, (keys = new Set()));
        keys.add(key);
        deps.push([folder, name]);
      }
      // Watching first, then looking: a change from here on invalidates; one just before may not
      // be in the worker's response yet, so such a response is not kept.
      for (const file of hint.dependencies) {
        const fileChanged = this.#changedAt(file);
        const folderChanged = this.#changedAt(dirname(file));
        if ((fileChanged !== undefined && now - fileChanged < SETTLE_MS) || (folderChanged !== undefined && now - folderChanged < SETTLE_MS)) {
          this.#release(key, deps);
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
    this.#entries.set(key, entry);
    this.#deps.set(key, deps);
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
    const keys: string[] = [];
    if (file === null) for (const set of w.files.values()) keys.push(...set);
    else {
      const set = w.files.get(file.toLowerCase());
      if (set !== undefined) keys.push(...set);
    }
    for (const key of keys) {
      if (this.#remove(key, 'invalidated')) this.stats.invalidated++;
    }
  }

  #remove(key: string, reason: CacheRemoveEvent['reason']): boolean {
    const e = this.#entries.get(key);
    if (e === undefined) return false;
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
    this.#release(key, this.#deps.get(key) ?? []);
    this.#deps.delete(key);
    if (cacheRemove.hasSubscribers) cacheRemove.publish({ cacheKey: key, reason, entries: this.#entries.size });
    return true;
  }

  #release(key: string, deps: ReadonlyArray<[string, string]>): void {
    for (const [folder, name] of deps) {
      const w = this.#folders.get(folder);
      if (w === undefined) continue;
      const set = w.files.get(name);
      set?.delete(key);
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
      for (const [key, e] of this.#entries) {
        // UriScavengerPeriod without a hit is an eviction (HTTP.sys's scavenger), a past time period an expiry.
        if (now >= e.expiresAt) this.#remove(key, 'expired');
        else if (now - e.lastHit >= SCAVENGER_PERIOD_MS) this.#remove(key, 'evicted');
      }
      if (this.#entries.size === 0 && this.#scavenger !== undefined) {
        clearInterval(this.#scavenger);
        this.#scavenger = undefined;
      }
    }, SCAVENGER_PERIOD_MS / 2);
    this.#scavenger.unref();
  }
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
