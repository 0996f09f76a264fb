/**
 * One SSI page being sent: its directives run in document order and the output streams as it is
 * made (text between directives goes out as it is read; a write the channel does not take at once
 * waits for drained()). An error in a directive puts its message in the directive's place and the
 * page goes on, as in IIS; only the limits below stop a page, with a last message.
 *
 * The work one request can cause is bounded by SSI_LIMITS, counted across the page, everything it
 * includes and the SSI pages its `#exec cgi` runs (they write into the same response and share
 * one SsiBudget).
 */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, posix, relative, resolve, sep } from 'node:path';
import type { HttpContext, HttpResponse } from '../../worker/module-api.js';
import { canonicalizePath, encodeUrlPath } from '../../http/url-path.js';
import { runCommand, type RunningCommand } from './exec-command.js';
import { parseSsi, type SsiParameter } from './ssi-parser.js';
import { checkTimeFormat, DEFAULT_TIME_FORMAT, formatTime } from './ssi-time-format.js';

export const SERVER_SIDE_INCLUDE_SECTION = 'system.webServer/serverSideInclude';
const CGI_SECTION = 'system.webServer/cgi';

/** What one request may cost (docs/configuration.md, "Server-side includes"). */
export const SSI_LIMITS = {
  /** Files open at once: the page, what it includes, what those include … (and #exec cgi pages). */
  maxDepth: 8,
  /** Directives processed for the response. */
  maxDirectives: 4096,
  /** Body bytes the page may produce (text, included files, echoes, command and #exec cgi output). */
  maxOutputBytes: 64 * 1024 * 1024,
  /** Size of one file SSI reads and parses (the page or an included file). */
  maxDocumentBytes: 16 * 1024 * 1024,
  /** Output of one `#exec cmd`. */
  maxCommandBytes: 4 * 1024 * 1024,
} as const;

/** IIS caps #config strings (errmsg) at 1024 bytes. */
const MAX_CONFIG_STRING = 1024;

/** Shared by a page and the SSI pages its #exec cgi child requests run. */
export class SsiBudget {
  outputBytes = 0;
  directives = 0;
  /** Real paths of the documents being processed, outermost first (cycle detection, depth). */
  readonly stack: string[] = [];
  /** A limit was reached or the client left: nothing more is processed or sent. */
  stopped = false;
}

/** A document being processed. */
export interface SsiFrame {
  /** Real path (symbolic links resolved): what cycles are detected on. */
  readonly realPath: string;
  /** Its URL path (decoded): the base of a relative `virtual`, and how messages name it. */
  readonly url: string;
  /** The folder a `file` path is relative to (as mapped, before links are resolved). */
  readonly dir: string;
  /** Physical root of its virtual directory: no `file` include may leave it. */
  readonly root: string;
}

export interface SsiRunOptions {
  /** `#exec cmd` is allowed at all (SSIEnableCmdDirective). */
  readonly cmdEnabled: boolean;
  /** The top document's last write time (LAST_MODIFIED). */
  readonly mtimeMs: number;
}

/** A file that may be read: where it is, really, and where it sits in URL space. */
interface Located {
  readonly realPath: string;
  readonly physicalPath: string;
  readonly url: string;
  readonly root: string;
}

type ContainResult = { readonly real: string } | { readonly problem: 'missing' | 'outside' | 'denied' };

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function inside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * Where `physical` really is, provided it lies in `root` both as written (no `..` above it) and
 * once symbolic links are resolved (no link leading out), as StaticFileModule serves files.
 */
export async function containedPath(physical: string, root: string): Promise<ContainResult> {
  const rel = relative(root, physical);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return { problem: 'outside' };
  let real: string;
  try {
    real = await realpath(physical);
  } catch (err) {
    const code = errnoOf(err);
    return { problem: code === 'EACCES' || code === 'EPERM' ? 'denied' : 'missing' };
  }
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return { problem: 'missing' };
  }
  return inside(real, realRoot) ? { real } : { problem: 'outside' };
}

export type ReadResult = { readonly bytes: Buffer; readonly mtimeMs: number } | { readonly problem: 'missing' | 'denied' | 'not-file' | 'too-large' };

/** The content of a regular file of at most `max` bytes. */
export async function readDocument(realPath: string, max: number): Promise<ReadResult> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO that stands where a file should must not block the worker.
    handle = await open(realPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = errnoOf(err);
    return { problem: code === 'EACCES' || code === 'EPERM' ? 'denied' : 'missing' };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return { problem: 'not-file' };
    if (st.size > max) return { problem: 'too-large' };
    const bytes = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await handle.read(bytes, got, bytes.length - got, got);
      if (bytesRead === 0) break; // it shrank meanwhile: send what there is
      got += bytesRead;
    }
    return { bytes: got === bytes.length ? bytes : bytes.subarray(0, got), mtimeMs: st.mtimeMs };
  } finally {
    await handle.close();
  }
}

/** QUERY_STRING_UNESCAPED: the query string with its %XX escapes decoded (UTF-8; an invalid escape stays as written). */
export function unescapeQuery(query: string): string {
  if (!query.includes('%')) return query;
  return query.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run;
    }
  });
}

const numberFormat = new Intl.NumberFormat('en-US');

/** #fsize: with sizefmt abbrev (IIS's default) kilobytes, rounded up; with bytes, bytes; thousands separated by commas as IIS writes them. */
export function formatSize(size: number, sizefmt: 'abbrev' | 'bytes'): string {
  return numberFormat.format(sizefmt === 'bytes' ? size : Math.ceil(size / 1024));
}

/** Request headers a `#exec cgi` child must not see: its answer goes into the page whole and as it is. */
const CHILD_DROPPED_HEADERS = new Set(['range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'accept-encoding']);

function childHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!CHILD_DROPPED_HEADERS.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

/** A message as HTML text: IIS's messages go in the page's text, where only &, < and > matter. */
function escapeText(text: string): string {
  return text.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** The message that replaces a failed directive, unless #config errmsg set one. */
function errorText(url: string, message: string): string {
  return `<b>Error processing SSI file '${escapeText(url)}'</b>: ${escapeText(message)}.`;
}

/** Thrown inside a run when a limit stops it (its message was written). */
class Stopped extends Error {}

export class SsiRun {
  readonly #ctx: HttpContext;
  readonly #res: HttpResponse;
  readonly #budget: SsiBudget;
  readonly #options: SsiRunOptions;
  readonly #execDisabled: boolean;
  #errmsg = '';
  #timefmt = DEFAULT_TIME_FORMAT;
  #sizefmt: 'abbrev' | 'bytes' = 'abbrev';
  #command: RunningCommand | undefined;
  /** The top document (DOCUMENT_NAME). */
  #topPath = '';

  constructor(ctx: HttpContext, budget: SsiBudget, options: SsiRunOptions) {
    this.#ctx = ctx;
    this.#res = ctx.response;
    this.#budget = budget;
    this.#options = options;
    // ssiExecDisable as configured for the page's URL (IIS: "under this path").
    this.#execDisabled = ctx.config.section(SERVER_SIDE_INCLUDE_SECTION).bool('ssiExecDisable');
  }

  /** The client left: stop at the next step, and end a running command. */
  stop(): void {
    this.#budget.stopped = true;
    this.#command?.stop();
  }

  /** Process the page. Never throws for what a document contains. */
  async run(top: SsiFrame, source: Buffer, physicalPath: string): Promise<void> {
    this.#topPath = physicalPath;
    if (this.#budget.stack.includes(top.realPath)) {
      // An #exec cgi that runs a page already being processed (a.shtml → b.shtml → a.shtml).
      await this.#error(top, `the page is already being processed by an #exec cgi above it; it is not run again`);
      return;
    }
    if (this.#budget.stack.length >= SSI_LIMITS.maxDepth) {
      await this.#error(top, `SSI documents nest deeper than ${SSI_LIMITS.maxDepth} levels; this one is not processed`);
      return;
    }
    try {
      await this.#document(top, source);
    } catch (err) {
      if (!(err instanceof Stopped)) throw err;
    }
  }

  async #document(frame: SsiFrame, source: Buffer): Promise<void> {
    const budget = this.#budget;
    budget.stack.push(frame.realPath);
    try {
      for (const seg of parseSsi(source)) {
        if (budget.stopped) throw new Stopped();
        if (seg.kind === 'text') {
          const p = this.#emit(frame, source.subarray(seg.start, seg.end));
          if (p !== undefined) await p;
          continue;
        }
        if (++budget.directives > SSI_LIMITS.maxDirectives) {
          await this.#stopWith(frame, `the page has more than ${SSI_LIMITS.maxDirectives} SSI directives; processing stops here`);
        }
        if (seg.kind === 'malformed') await this.#error(frame, seg.reason);
        else await this.#directive(frame, seg.name, seg.parameters);
      }
    } finally {
      budget.stack.pop();
    }
  }

  // ---- output -------------------------------------------------------------------------------

  /** Write page bytes within the output budget; a promise when the channel wants a pause. */
  #emit(frame: SsiFrame, bytes: Buffer | string): void | Promise<void> {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    if (buf.length === 0) return;
    const budget = this.#budget;
    if (budget.outputBytes + buf.length > SSI_LIMITS.maxOutputBytes) {
      return this.#stopWith(frame, `the page's output would be larger than ${SSI_LIMITS.maxOutputBytes} bytes; processing stops here`);
    }
    budget.outputBytes += buf.length;
    if (!this.#res.write(buf)) return this.#res.drained();
  }

  /** A directive failed: IIS's message in its place (or #config errmsg), and the page goes on. */
  #error(frame: SsiFrame, message: string): void | Promise<void> {
    return this.#emit(frame, this.#errmsg !== '' ? this.#errmsg : errorText(frame.url, message));
  }

  /** A limit was reached: a last message (outside the budget it exceeds), then nothing more. */
  async #stopWith(frame: SsiFrame, message: string): Promise<never> {
    const budget = this.#budget;
    if (!budget.stopped) {
      budget.stopped = true;
      if (!this.#res.write(this.#errmsg !== '' ? this.#errmsg : errorText(frame.url, message))) await this.#res.drained();
      this.#ctx.log('warn', `${frame.url}: ${message}`);
    }
    throw new Stopped();
  }

  // ---- directives ---------------------------------------------------------------------------

  async #directive(frame: SsiFrame, name: string, parameters: readonly SsiParameter[]): Promise<void> {
    const want = WANTED[name]!;
    if (parameters.length === 0) return this.#error(frame, `#${name} needs ${want.map((t) => `${t}="…"`).join(' or ')}`);
    for (const p of parameters) {
      if (this.#budget.stopped) throw new Stopped();
      if (!want.includes(p.name)) {
        await this.#error(frame, `#${name} does not take the tag '${p.name}' (it takes ${want.join(', ')})`);
        continue;
      }
      switch (name) {
        case 'include':
          await this.#include(frame, p.name as 'file' | 'virtual', p.value);
          break;
        case 'echo':
          await this.#echo(frame, p.value);
          break;
        case 'fsize':
        case 'flastmod':
          await this.#fileInfo(frame, name, p.name as 'file' | 'virtual', p.value);
          break;
        case 'config':
          await this.#config(frame, p.name, p.value);
          break;
        case 'exec':
          if (p.name === 'cgi') await this.#execCgi(frame, p.value);
          else await this.#execCmd(frame, p.value);
          break;
      }
    }
  }

  async #include(frame: SsiFrame, kind: 'file' | 'virtual', value: string): Promise<void> {
    if (this.#budget.stack.length >= SSI_LIMITS.maxDepth) {
      return this.#error(frame, `includes nest deeper than ${SSI_LIMITS.maxDepth} levels; '${value}' is not included`);
    }
    const found = await this.#locate(frame, kind, value);
    if (typeof found === 'string') return this.#error(frame, found);
    if (this.#budget.stack.includes(found.realPath)) {
      return this.#error(frame, `'${value}' is already being included (a file may not include itself, directly or through others)`);
    }
    const doc = await readDocument(found.realPath, SSI_LIMITS.maxDocumentBytes);
    if ('problem' in doc) return this.#error(frame, this.#readProblem(value, doc.problem));
    // Included files go through SSI too, whatever their extension ("included files will go
    // through the interpreter of the calling page", IIS 6 SDK "#include").
    await this.#document({ realPath: found.realPath, url: found.url, dir: dirname(found.physicalPath), root: found.root }, doc.bytes);
  }

  #readProblem(value: string, problem: 'missing' | 'denied' | 'not-file' | 'too-large' | 'outside'): string {
    switch (problem) {
      case 'missing':
        return `cannot find the file '${value}'`;
      case 'denied':
        return `cannot read the file '${value}': access is denied`;
      case 'not-file':
        return `'${value}' is not a file`;
      case 'too-large':
        return `the file '${value}' is larger than ${SSI_LIMITS.maxDocumentBytes} bytes`;
      case 'outside':
        return `'${value}' is outside the virtual directory of the including file (a path above its root, or a symbolic link leading out): it is not read`;
    }
  }

  /** A `file` (relative to the including file's folder) or `virtual` (a URL path of this application) argument. */
  async #locate(frame: SsiFrame, kind: 'file' | 'virtual', value: string): Promise<Located | string> {
    if (value === '') return `${kind}="" names no file`;
    if (kind === 'file') {
      const v = value.replace(/\\/g, '/');
      if (v.startsWith('/') || /^[A-Za-z]:/.test(v)) {
        return `file="${value}" must be a path relative to the including file's folder; use virtual="…" for a URL path`;
      }
      const physical = resolve(frame.dir, v);
      const c = await containedPath(physical, frame.root);
      if ('problem' in c) return this.#readProblem(value, c.problem);
      return { realPath: c.real, physicalPath: physical, url: posix.normalize(posix.join(posix.dirname(frame.url), v)), root: frame.root };
    }
    const target = this.#urlPath(frame, value);
    if (typeof target === 'string') return target;
    const mapped = this.#ctx.mapUrl(target.path);
    if (mapped === undefined) return `virtual="${value}" is not a valid URL path`;
    if (!mapped.ok) return `the configuration for '${target.path}' is invalid: ${mapped.error.describe()}`;
    const mine = this.#ctx.config.application;
    const app = mapped.config.application;
    if (app.path !== mine.path) {
      return `'${target.path}' belongs to the application '${app.path}'; SSI includes only files of its own application ('${mine.path}')`;
    }
    const root = mapped.config.virtualDirectory.physicalPath;
    const c = await containedPath(mapped.config.physicalPath, root);
    if ('problem' in c) return this.#readProblem(value, c.problem);
    return { realPath: c.real, physicalPath: mapped.config.physicalPath, url: target.path, root };
  }

  /** A URL argument, absolute or relative to the current document's URL, decoded and canonical. */
  #urlPath(frame: SsiFrame, value: string): { path: string; query: string | undefined } | string {
    const q = value.indexOf('?');
    const raw = (q === -1 ? value : value.slice(0, q)).replace(/\\/g, '/');
    const absolute = raw.startsWith('/') ? raw : posix.join(posix.dirname(frame.url), raw);
    const path = canonicalizePath(absolute);
    if (path === undefined) return `'${value}' is not a valid URL path of this site (it may not climb above the site's root)`;
    return { path, query: q === -1 ? undefined : value.slice(q + 1) };
  }

  async #echo(frame: SsiFrame, name: string): Promise<void> {
    if (name === '') return this.#error(frame, '#echo var="" names no variable');
    // IIS writes values as they are: no HTML escaping (the page's author decides where they go).
    const p = this.#emit(frame, this.#variable(name));
    if (p !== undefined) await p;
  }

  #variable(name: string): string {
    const ctx = this.#ctx;
    switch (name.toUpperCase()) {
      case 'DOCUMENT_NAME':
        return basename(this.#topPath);
      case 'DOCUMENT_URI':
        return ctx.request.path;
      case 'DATE_LOCAL':
        return formatTime(new Date(), this.#timefmt, false);
      case 'DATE_GMT':
        return formatTime(new Date(), this.#timefmt, true);
      case 'LAST_MODIFIED':
        return formatTime(new Date(this.#options.mtimeMs), this.#timefmt, false);
      case 'QUERY_STRING_UNESCAPED':
        return unescapeQuery(ctx.request.queryString);
      default:
        return ctx.getServerVariable(name);
    }
  }

  async #fileInfo(frame: SsiFrame, name: 'fsize' | 'flastmod', kind: 'file' | 'virtual', value: string): Promise<void> {
    const found = await this.#locate(frame, kind, value);
    if (typeof found === 'string') return this.#error(frame, found);
    const info = await this.#ctx.stat(found.realPath);
    if (info === undefined) return this.#error(frame, this.#readProblem(value, 'missing'));
    if (!info.isFile) return this.#error(frame, this.#readProblem(value, 'not-file'));
    const text = name === 'fsize' ? formatSize(info.size, this.#sizefmt) : formatTime(new Date(info.mtimeMs), this.#timefmt, false);
    const p = this.#emit(frame, text);
    if (p !== undefined) await p;
  }

  async #config(frame: SsiFrame, tag: string, value: string): Promise<void> {
    switch (tag) {
      case 'errmsg':
        // "To restore the default error message, call the directive with an empty string."
        if (Buffer.byteLength(value) > MAX_CONFIG_STRING) return this.#error(frame, `errmsg is longer than ${MAX_CONFIG_STRING} bytes`);
        this.#errmsg = value;
        return;
      case 'timefmt': {
        const problem = checkTimeFormat(value);
        if (problem !== undefined) return this.#error(frame, problem);
        this.#timefmt = value === '' ? DEFAULT_TIME_FORMAT : value;
        return;
      }
      case 'sizefmt': {
        const v = value.toLowerCase();
        if (v !== 'bytes' && v !== 'abbrev') return this.#error(frame, `sizefmt must be "bytes" or "abbrev", not "${value}"`);
        this.#sizefmt = v;
        return;
      }
    }
  }

  /** `#exec cgi`: the URL runs as a child request of this site (IIS ExecuteRequest) and its body goes here. */
  async #execCgi(frame: SsiFrame, value: string): Promise<void> {
    if (this.#execDisabled) return this.#error(frame, EXEC_DISABLED);
    const target = this.#urlPath(frame, value);
    if (typeof target === 'string') return this.#error(frame, target);
    const ctx = this.#ctx;
    const mapped = ctx.mapUrl(target.path);
    if (mapped === undefined) return this.#error(frame, `cgi="${value}" is not a valid URL path`);
    if (!mapped.ok) return this.#error(frame, `the configuration for '${target.path}' is invalid: ${mapped.error.describe()}`);
    const pool = mapped.config.application.applicationPool;
    if (pool !== ctx.appPoolName) {
      return this.#error(frame, `'${target.path}' runs in the application pool '${pool}'; #exec cgi runs only URLs of this page's pool ('${ctx.appPoolName}')`);
    }
    const res = this.#res;
    // The child writes into this response: the page so far leaves first, so that nothing the
    // child does to the status or the buffered body can touch it.
    if (!res.headersSent) await res.flush();
    const before = res.bodyLength;
    const url = encodeUrlPath(target.path) + (target.query === undefined ? '' : `?${target.query}`);
    let result;
    try {
      result = await ctx.executeChildRequest(url, { ownUrl: true, keepStatus: true, rawHeaders: childHeaders(ctx.request.rawHeaders) });
    } catch (err) {
      return this.#error(frame, `the #exec cgi request for '${target.path}' failed: ${(err as Error).message}`);
    }
    this.#budget.outputBytes += res.bodyLength - before;
    if (result.status >= 400) {
      await this.#error(frame, `the #exec cgi request for '${target.path}' was answered ${result.status}.${result.subStatus}`);
    }
    if (this.#budget.outputBytes > SSI_LIMITS.maxOutputBytes) {
      await this.#stopWith(frame, `the page's output is larger than ${SSI_LIMITS.maxOutputBytes} bytes; processing stops here`);
    }
  }

  /** `#exec cmd`: only with SSIEnableCmdDirective (IIS 7+), never where ssiExecDisable is true. */
  async #execCmd(frame: SsiFrame, command: string): Promise<void> {
    if (this.#execDisabled) return this.#error(frame, EXEC_DISABLED);
    // IIS 7's own words (the serverSideInclude reference).
    if (!this.#options.cmdEnabled) return this.#error(frame, 'The CMD option is not enabled for #EXEC calls');
    if (command.trim() === '') return this.#error(frame, 'cmd="" names no command');
    const room = SSI_LIMITS.maxOutputBytes - this.#budget.outputBytes;
    const maxBytes = Math.min(SSI_LIMITS.maxCommandBytes, room);
    // The CGI timeout bounds every process a request starts (IIS: cgi timeout, 15 minutes).
    const timeoutMs = this.#ctx.config.section(CGI_SECTION).num('timeout');
    const running = runCommand({ command, cwd: frame.dir, timeoutMs, maxBytes, onOutput: (chunk) => this.#emit(frame, chunk) });
    this.#command = running;
    const outcome = await running.done;
    this.#command = undefined;
    switch (outcome.kind) {
      case 'exited':
        return;
      case 'stopped':
        throw new Stopped();
      case 'failed':
        return this.#error(frame, `the command could not be started: ${outcome.message}`);
      case 'timeout':
        return this.#error(frame, `the command did not finish within ${timeoutMs / 1000} seconds (cgi timeout); it was stopped`);
      case 'too-much-output':
        if (maxBytes === room) await this.#stopWith(frame, `the page's output would be larger than ${SSI_LIMITS.maxOutputBytes} bytes; processing stops here`);
        return this.#error(frame, `the command wrote more than ${SSI_LIMITS.maxCommandBytes} bytes; the rest was dropped and the command stopped`);
    }
  }
}

const EXEC_DISABLED = '#EXEC calls have been disabled for this virtual path (serverSideInclude ssiExecDisable="true")';

/** The tags each directive takes. */
const WANTED: Readonly<Record<string, readonly string[]>> = {
  include: ['file', 'virtual'],
  echo: ['var'],
  fsize: ['file', 'virtual'],
  flastmod: ['file', 'virtual'],
  config: ['errmsg', 'timefmt', 'sizefmt'],
  exec: ['cgi', 'cmd'],
};
