/**
 * The failed-request trace files (reference §5.2), written by the main process for the workers
 * that traced them: `<traceFailedRequestsLogging directory>/W3SVC<siteId>/fr000001.xml`, … one
 * file per failed request, numbered on from the highest number already in the folder, at most
 * `maxLogFiles` per site (the oldest deleted), each at most `maxLogFileSizeKB`, with `freb.xsl`
 * beside them so a browser shows them as IIS's viewer does.
 *
 * Files and folders get the log files' modes and owner (log-access.ts): traces hold URLs, headers
 * and cookies, and the pool's user must not read other pools' traces, nor write any.
 */
import { readFileSync } from 'node:fs';
import { link, open, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppHostConfig, SiteConfig } from '../../config/types.js';
import { ListenerError } from '../../errors.js';
import type { TraceRecordMessage } from '../../ipc/messages.js';
import { renderTrace, validateTraceRecord } from './failed-request-xml.js';
import { logAccess, prepareLogFile, prepareLogFolder } from './log-access.js';
import { poolKey } from '../../config/pool-key.js';

/** Where the shipped stylesheet lives: `<package>/assets/freb.xsl`. */
export const FREB_XSL_PATH = fileURLToPath(new URL('../../../../assets/freb.xsl', import.meta.url));

const FILE_NAME = /^fr(\d{6,})\.xml$/i;
/** A record may be this much larger than maxLogFileSizeKB before it is refused unread: its JSON is smaller than the XML it becomes. */
const UNLIMITED_BYTES = 32 * 1024 * 1024;

/** One site's trace settings (siteDefaults merged with the site's traceFailedRequestsLogging). */
interface SiteTracing {
  readonly siteId: number;
  readonly siteName: string;
  readonly folder: string;
  readonly maxLogFiles: number;
  /** 0: no limit of its own. */
  readonly maxBytes: number;
  /** Lower-case names of the pools that serve the site's applications (who may send its traces). */
  readonly pools: ReadonlySet<string>;
}

/** A folder's files: numbers in use, ascending, and the next one (known once scanned). */
interface Folder {
  numbers: number[];
  next: number;
  /** The folder exists with the log folders' mode and owner. */
  prepared: boolean;
  /** Writes to one folder run one after another (numbering, pruning). */
  queue: Promise<void>;
  xslWritten: boolean;
}

export interface TraceFileInfo {
  readonly siteId: number;
  readonly siteName: string;
  /** `fr000001.xml` */
  readonly file: string;
  readonly path: string;
  readonly url: string;
  readonly statusCode: string;
  readonly processId: number;
  readonly failureReason: string;
  readonly timeTaken: number;
}

export interface FailedRequestLogsOptions {
  /** A trace that could not be written or was refused (throttled by the caller's logger). */
  readonly onError: (err: ListenerError) => void;
  readonly computerName: string;
  /** The stylesheet's text (default: the shipped assets/freb.xsl). */
  readonly xsl?: string;
}

export class FailedRequestLogs {
  readonly #o: FailedRequestLogsOptions;
  #sites = new Map<number, SiteTracing>();
  readonly #folders = new Map<string, Folder>();
  #xsl: string | undefined;
  /** Files written (and not since deleted) by this process, newest last: `wharf list traces`. */
  readonly #written = new Map<string, TraceFileInfo>();
  readonly #reported = new Map<string, { at: number; suppressed: number }>();

  constructor(options: FailedRequestLogsOptions) {
    this.#o = options;
    this.#xsl = options.xsl;
  }

  apply(config: AppHostConfig): void {
    const sites = new Map<number, SiteTracing>();
    for (const site of config.sites) {
      const t = site.traceFailedRequestsLogging;
      if (!t.bool('enabled')) continue;
      sites.set(site.id, {
        siteId: site.id,
        siteName: site.name,
        folder: join(site.traceFailedRequestsDirectory, `W3SVC${site.id}`),
        maxLogFiles: t.num('maxLogFiles'),
        maxBytes: t.num('maxLogFileSizeKB') * 1024,
        pools: poolsOf(site),
      });
    }
    this.#sites = sites;
    // Traces of earlier runs: numbering goes on after them, `wharf list traces` shows them.
    for (const site of sites.values()) this.#folder(site);
  }

  #folder(site: SiteTracing): Folder {
    let f = this.#folders.get(site.folder);
    if (f === undefined) {
      const folder: Folder = { numbers: [], next: 1, prepared: false, queue: Promise.resolve(), xslWritten: false };
      this.#folders.set(site.folder, folder);
      folder.queue = this.#scan(site, folder).catch((err: unknown) => {
        this.#report(`scan:${site.folder}`, new ListenerError('LSN_TRACE_WRITE', `cannot read the failed-request trace folder ${site.folder}: ${(err as Error).message}`, { cause: err }));
      });
      f = folder;
    }
    return f;
  }

  /** The fr*.xml files already in a folder, with what their root element says. */
  async #scan(site: SiteTracing, f: Folder): Promise<void> {
    const names = await readdir(site.folder).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const found: [number, string][] = [];
    for (const name of names) {
      const m = FILE_NAME.exec(name);
      if (m !== null) found.push([Number(m[1]), name]);
    }
    found.sort((a, b) => a[0] - b[0]);
    f.numbers = found.map(([n]) => n);
    f.next = (f.numbers[f.numbers.length - 1] ?? 0) + 1;
    for (const [, name] of found) {
      const path = join(site.folder, name);
      const head = await readHead(path);
      if (head === undefined) continue;
      const a = (attr: string): string => new RegExp(`\\s${attr}="([^"]*)"`).exec(head)?.[1] ?? '';
      this.#written.set(path, {
        siteId: site.siteId,
        siteName: site.siteName,
        file: name,
        path,
        url: unescapeXml(a('url')),
        statusCode: a('statusCode'),
        processId: Number(a('processId')) || 0,
        failureReason: a('failureReason'),
        timeTaken: Number(a('timeTaken')) || 0,
      });
    }
  }

  /**
   * A worker of `poolName` (process `pid`) sent a trace: validated, bounded and written. A
   * record that is not valid, too large, or for a site the pool does not serve is refused and
   * reported; nothing a worker sends stops the server.
   */
  accept(poolName: string, pid: number, json: Buffer): void {
    const refuse = (why: string): void =>
      this.#report(`refused:${poolName}`, new ListenerError('LSN_TRACE_REJECTED', `a failed-request trace from worker ${pid} of application pool "${poolName}" was refused: ${why}`));
    // The site is known only after parsing: bound by the largest any site allows first.
    let largest = 0;
    for (const s of this.#sites.values()) largest = Math.max(largest, s.maxBytes === 0 ? UNLIMITED_BYTES : s.maxBytes);
    if (json.length > largest) return refuse(`${json.length} bytes, more than any site's maxLogFileSizeKB allows`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json.toString('utf8'));
    } catch {
      return refuse('it is not JSON');
    }
    const record = validateTraceRecord(parsed);
    if (typeof record === 'string') return refuse(record);
    const site = this.#sites.get(record.siteId);
    if (site === undefined) return refuse(`site ${record.siteId} does not exist or does not enable traceFailedRequestsLogging`);
    if (!site.pools.has(poolKey(poolName))) return refuse(`application pool "${poolName}" serves no application of site ${record.siteId}`);
    if (site.maxBytes !== 0 && json.length > site.maxBytes) return refuse(`${json.length} bytes, more than the site's maxLogFileSizeKB`);
    this.#enqueue(site, record, poolName, pid);
  }

  /** The trace files this process wrote that still exist, oldest first. */
  list(): TraceFileInfo[] {
    return [...this.#written.values()];
  }

  /** Resolves when every write queued so far is done (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.#folders.values()].map((f) => f.queue));
  }

  #enqueue(site: SiteTracing, record: TraceRecordMessage, poolName: string, pid: number): void {
    const f = this.#folder(site);
    f.queue = f.queue
      .then(() => this.#write(site, f, record, poolName, pid))
      .catch((err: unknown) => {
        this.#report(`write:${site.folder}`, new ListenerError('LSN_TRACE_WRITE', `cannot write a failed-request trace in ${site.folder}: ${(err as Error).message}`, { cause: err }));
      });
  }

  /** Report a problem at most once a minute per cause (a pool's code could send bad traces in a loop). */
  #report(key: string, err: ListenerError): void {
    const now = Date.now();
    const last = this.#reported.get(key);
    if (last !== undefined && now - last.at < 60_000) {
      last.suppressed++;
      return;
    }
    const more = last === undefined || last.suppressed === 0 ? '' : ` (${last.suppressed} more since the last report)`;
    this.#reported.set(key, { at: now, suppressed: 0 });
    this.#o.onError(more === '' ? err : new ListenerError(err.code, err.message + more, { cause: err.cause }));
  }

  async #write(site: SiteTracing, f: Folder, record: TraceRecordMessage, poolName: string, pid: number): Promise<void> {
    const access = logAccess();
    if (!f.prepared) {
      await prepareLogFolder(site.folder, access);
      f.prepared = true;
    }
    if (!f.xslWritten) {
      await this.#writeXsl(site.folder);
      f.xslWritten = true;
    }
    const xml = renderTrace(record, { appPoolId: poolName, processId: pid, computer: this.#o.computerName, maxBytes: site.maxBytes });
    const n = f.next++;
    const file = `fr${String(n).padStart(6, '0')}.xml`;
    const path = join(site.folder, file);
    // Written beside, then linked in whole: a reader (a log shipper, `wharf list traces`) never
    // sees half a file, and link() never replaces a file that appeared meanwhile (EEXIST).
    const partial = join(site.folder, `.${file}.partial`);
    const handle = await open(partial, 'w', access.fileMode);
    try {
      await prepareLogFile(handle, access, partial);
      await handle.writeFile(xml);
    } finally {
      await handle.close();
    }
    try {
      await link(partial, path);
    } finally {
      await unlink(partial);
    }
    f.numbers.push(n);
    this.#written.set(path, {
      siteId: site.siteId,
      siteName: site.siteName,
      file,
      path,
      url: record.url,
      statusCode: record.statusCode,
      processId: pid,
      failureReason: record.failureReason,
      timeTaken: record.timeTaken,
    });
    // maxLogFiles: the oldest go (IIS keeps the newest N per site).
    while (f.numbers.length > site.maxLogFiles) {
      const old = f.numbers.shift()!;
      const oldPath = join(site.folder, `fr${String(old).padStart(6, '0')}.xml`);
      this.#written.delete(oldPath);
      await unlink(oldPath).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
  }

  async #writeXsl(folder: string): Promise<void> {
    const xsl = (this.#xsl ??= readFileSync(FREB_XSL_PATH, 'utf8'));
    const path = join(folder, 'freb.xsl');
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === xsl) return;
    await writeFile(path, xsl, { mode: logAccess().fileMode });
    const handle = await open(path, 'r');
    try {
      await prepareLogFile(handle, logAccess(), path);
    } finally {
      await handle.close();
    }
  }
}

function poolsOf(site: SiteConfig): Set<string> {
  const pools = new Set<string>();
  for (const app of site.applications) pools.add(poolKey(app.applicationPool));
  return pools;
}

/** The first 4 KiB of a trace file (its root element), undefined when it cannot be read. */
async function readHead(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
    const buf = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, bytesRead);
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#\d+);/g, (_, e: string) => (e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : ENTITIES[e]!));
}
