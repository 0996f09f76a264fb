/**
 * One request's trip through a FastCGI application: the CGI variables and body out, the CGI head
 * and body back, streamed both ways with backpressure, and IIS's answers when it goes wrong.
 *
 * Nothing is lost to a dying process: a request whose response has not started reaching the
 * client is replayed on another process when replaying it is safe (a safe method, or nothing of
 * it was sent yet), until three processes have died under it (see exchange()).
 */
import { TRACE_LEVEL, type HttpContext } from '../../worker/module-api.js';
import { spoolBody } from '../cgi/body-spool.js';
import { localRedirect } from '../cgi/cgi-exchange.js';
import { applyCgiHead, CgiHeadError, CgiHeadParser, type CgiHead } from '../cgi/response-head.js';
import { FastCgiRefusal, newestInstanceId, type FastCgiApplication, type Lease } from './application.js';
import type { FcgiRequestEvents } from './connection.js';
import { ProtocolStatus } from './records.js';

/** Methods whose replay cannot do anything the first try did not (RFC 9110 §9.2.1). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** Processes that may die under one request before it fails (counted as exchange() says). */
const MAX_TRIES = 3;
/** Error text kept from the application's stderr for the error page. */
const MAX_STDERR_KEPT = 16 * 1024;

/** How the request body reaches the application. */
export interface BodySource {
  readonly length: number;
  /** Chunks, again for each try when `replayable`. */
  chunks(): AsyncIterable<Buffer>;
  /** The whole body can be sent again (it is held, not streamed from the client). */
  readonly replayable: boolean;
  dispose(): Promise<void>;
}

export const NO_BODY: BodySource = {
  length: 0,
  async *chunks() {},
  replayable: true,
  dispose: () => Promise.resolve(),
};

/** The client's body as it arrives (Content-Length known): sent once. */
export function streamedBody(ctx: HttpContext): BodySource {
  return { length: ctx.request.contentLength, chunks: () => ctx.request.body(), replayable: false, dispose: () => Promise.resolve() };
}

/**
 * A body without a Content-Length (chunked) read whole first, as CGI needs CONTENT_LENGTH: the
 * CGI module's spool (in memory, then an unlinked private file), read again for each try. Its
 * size is capped by requestFiltering's maxAllowedContentLength (404.13), enforced while it is read.
 */
export async function spooledBody(ctx: HttpContext): Promise<BodySource> {
  const spool = await spoolBody(ctx.request.body());
  const { chunks, file } = spool;
  return {
    length: spool.length,
    chunks: chunks !== undefined ? async function* () { yield* chunks; } : () => file!.createReadStream({ start: 0, autoClose: false, highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>,
    replayable: true,
    dispose: () => (file === undefined ? Promise.resolve() : file.close()),
  };
}

type Outcome = { kind: 'done' } | { kind: 'retry'; why: string } | { kind: 'failed'; why: string; hresult: number };

/** What the exchange needs beyond the request: the application and what to call it in errors. */
export interface ExchangeTarget {
  readonly app: FastCgiApplication;
  readonly params: Buffer;
  readonly body: BodySource;
}

/**
 * Run the request, retrying on another process when that is safe. Answers errors itself.
 *
 * A request fails after MAX_TRIES processes died under it. One event often ends several processes
 * at once (`pkill php-cgi`, the OOM killer, a kill of the whole pool's processes), and a replay may
 * land on one of them before its death is seen: a death counts as another try only when the
 * process was started after the request's previous one died. A request that kills every process
 * it reaches still ends, after at most MAX_TRIES + maxInstances tries.
 */
export async function exchange(ctx: HttpContext, target: ExchangeTarget): Promise<void> {
  const { app } = target;
  let lastWhy = '';
  const client = new ClientWatch();
  ctx.response.onClientAbort(client.gone);
  let counted = 0;
  /** The newest process id when the request's previous process died. */
  let horizon = 0;
  const maxAttempts = MAX_TRIES + app.settings.maxInstances;
  for (let attempt = 1; ; attempt++) {
    let lease: Lease;
    try {
      const got = app.acquire();
      lease = got instanceof Promise ? await got : got;
    } catch (err) {
      if (!(err instanceof FastCgiRefusal)) throw err;
      if (ctx.response.headersSent) ctx.response.abort();
      else ctx.setStatus(err.status, err.subStatus, { description: err.message, hresult: err.hresult });
      return;
    }
    // The client hung up while the request waited in the queue: nobody reads the answer, so the
    // application is not asked (a wrk run ending with 50 requests queued sent 50 for nothing).
    if (client.isGone) {
      app.release(lease, false);
      return;
    }
    const run = new FastCgiRun(ctx, target, lease);
    client.run = run;
    const outcome = await run.done;
    client.run = undefined;
    if (run.bodyError !== undefined) throw run.bodyError;
    if (outcome.kind === 'done') {
      const redirect = run.localRedirect;
      if (redirect !== undefined) await localRedirect(ctx, redirect);
      return;
    }
    if (outcome.kind === 'retry') {
      if (lease.instance.id > horizon) counted++;
      horizon = newestInstanceId();
      if (counted < MAX_TRIES && attempt < maxAttempts) {
        lastWhy = outcome.why;
        ctx.log('warn', `${app.settings.fullPath}: ${outcome.why}; the request is sent to another process (try ${attempt + 1})`);
        continue;
      }
    }
    const why = outcome.why;
    const hresult = outcome.kind === 'failed' ? outcome.hresult : 0x800700ff;
    if (ctx.response.headersSent) {
      ctx.log('warn', `${app.settings.fullPath}: ${why} after the response had started: the connection is closed`);
      ctx.response.abort();
    } else {
      ctx.response.clear();
      ctx.setStatus(500, 0, { description: `${app.settings.fullPath} - ${why}${lastWhy !== '' && lastWhy !== why ? ` (before that: ${lastWhy})` : ''}`, hresult });
    }
    return;
  }
}

/** Whether the client went away, told to the try under way. */
class ClientWatch {
  isGone = false;
  run: FastCgiRun | undefined;
  readonly gone = (): void => {
    this.isGone = true;
    this.run?.clientGone();
  };
}

/** One try on one connection. */
class FastCgiRun implements FcgiRequestEvents {
  readonly done: Promise<Outcome>;
  #resolve!: (o: Outcome) => void;
  readonly #ctx: HttpContext;
  readonly #target: ExchangeTarget;
  readonly #lease: Lease;
  readonly #id: number;
  #parser: CgiHeadParser | undefined = new CgiHeadParser();
  #head: CgiHead | undefined;
  #stderr = '';
  #stderrBytes = 0;
  #settled = false;
  /** Bytes of the body of this try written to the response. */
  #wrote = false;
  /** Some of the request body went to the application. */
  #bodyStarted = false;
  #waitingDrain = false;
  #clientGone = false;
  localRedirect: string | undefined;
  /** Reading the client's body failed: the pipeline answers it (404.13 for a body too large). */
  bodyError: Error | undefined;

  constructor(ctx: HttpContext, target: ExchangeTarget, lease: Lease) {
    this.#ctx = ctx;
    this.#target = target;
    this.#lease = lease;
    this.done = new Promise((r) => (this.#resolve = r));
    lease.onTimeout = (kind) => this.#timedOut(kind);
    if (ctx.tracing) {
      const inst = lease.instance;
      const s = target.app.settings;
      ctx.trace({
        area: 'FastCGI',
        opcode: 'FASTCGI_ASSIGN_PROCESS',
        level: TRACE_LEVEL.Verbose,
        data: { CommandLine: [s.fullPath, ...s.arguments].join(' '), IsNewProcess: inst.served === 1, ProcessId: inst.child?.pid ?? 0, RequestNumber: inst.served },
      });
    }
    const hasBody = target.body.length > 0;
    this.#id = lease.conn.begin(this, target.params, hasBody);
    if (hasBody) void this.#sendBody();
  }

  /**
   * The client went away: its answer is dropped from here on. FCGI_ABORT_REQUEST goes only to an
   * application that multiplexes. One that serves a connection one request at a time (PHP) reads
   * the next record only as the start of its next request, and closes the connection on an abort
   * record there: that cost a php-cgi process (killed and restarted) per client that hung up. The
   * request runs to its end instead, bounded by activityTimeout and requestTimeout, as it would
   * have anyway (PHP does not read its connection while a GET runs).
   */
  clientGone(): void {
    this.#clientGone = true;
    if (this.#lease.conn.capacity > 1) this.#lease.conn.abort(this.#id);
  }

  async #sendBody(): Promise<void> {
    const conn = this.#lease.conn;
    try {
      for await (const chunk of this.#target.body.chunks()) {
        if (this.#settled || conn.closed) return;
        this.#bodyStarted = true;
        if (!conn.stdin(this.#id, chunk)) await conn.drained();
      }
      if (!this.#settled) conn.endStdin(this.#id);
    } catch (err) {
      // The client's body failed (too large, the client went away): the request cannot go on.
      if (this.#settled) return;
      this.bodyError = err as Error;
      this.#settle({ kind: 'failed', why: `the request body could not be read: ${(err as Error).message}`, hresult: 0x80070000 + 64 }, true);
    }
  }

  stdout(data: Buffer): void {
    this.#lease.lastActivity = Date.now();
    if (this.#settled) return;
    const res = this.#ctx.response;
    if (this.#parser !== undefined) {
      let got: ReturnType<CgiHeadParser['push']>;
      try {
        got = this.#parser.push(data);
      } catch (err) {
        this.#parser = undefined;
        this.#badHead((err as CgiHeadError).message);
        return;
      }
      if (got === undefined) return;
      this.#parser = undefined;
      this.#head = got.head;
      if (got.head.localRedirect !== undefined) {
        this.localRedirect = got.head.localRedirect;
        return; // its body (if any) is dropped; the URL is served when the application is done
      }
      if (this.#stderr !== '' && this.#target.app.settings.stderrMode !== 'IgnoreAndReturn200') return;
      applyCgiHead(res, got.head);
      if (got.rest.length === 0) return;
      data = got.rest;
    }
    if (this.localRedirect !== undefined || this.#clientGone) return;
    if (this.#stderr !== '' && this.#target.app.settings.stderrMode !== 'IgnoreAndReturn200') return;
    this.#wrote = true;
    if (!res.write(data) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.#lease.conn.pause();
      void res.drained().then(() => {
        this.#waitingDrain = false;
        this.#lease.conn.resume();
      });
    }
  }

  stderr(data: Buffer): void {
    this.#lease.lastActivity = Date.now();
    const text = this.#traceMessages(data.toString('utf8'));
    if (text.trim() === '') return;
    for (const line of text.split('\n')) if (line.trim() !== '') this.#ctx.log('warn', `${this.#target.app.settings.fullPath} stderr: ${line.slice(0, 4096)}`);
    if (this.#settled) return;
    const mode = this.#target.app.settings.stderrMode;
    if (mode === 'IgnoreAndReturn200') return;
    if (this.#stderrBytes < MAX_STDERR_KEPT) this.#stderr += text.slice(0, MAX_STDERR_KEPT - this.#stderrBytes);
    this.#stderrBytes += data.length;
    if (mode === 'TerminateProcess') {
      this.#settle({ kind: 'failed', why: `The FastCGI process wrote to stderr and was terminated (stderrMode TerminateProcess): ${this.#stderr.trim()}`, hresult: 0x80004005 }, true);
    }
  }

  end(appStatus: number, protocolStatus: number): void {
    if (this.#settled) return;
    if (protocolStatus === ProtocolStatus.Overloaded || protocolStatus === ProtocolStatus.CantMultiplexConnection) {
      // Refused before it ran: safe to send elsewhere whatever the method.
      this.#settle(this.#wrote ? { kind: 'failed', why: 'the FastCGI application refused the request (overloaded)', hresult: 0x80004005 } : { kind: 'retry', why: 'the FastCGI application refused the request (overloaded)' }, false);
      return;
    }
    const ctx = this.#ctx;
    const mode = this.#target.app.settings.stderrMode;
    if (this.#stderr !== '' && mode !== 'IgnoreAndReturn200' && !ctx.response.headersSent) {
      ctx.response.clear();
      ctx.setStatus(500, 0, {
        description: mode === 'ReturnGeneric500' ? 'The FastCGI application wrote to its error stream (stderrMode ReturnGeneric500).' : `${this.#target.app.settings.fullPath} - ${this.#stderr.trim()}`,
        hresult: 0x80004005,
      });
      this.#settle({ kind: 'done' }, false);
      return;
    }
    if (this.#head === undefined) {
      this.#badHead(this.#parser !== undefined && this.#parser.buffered > 0 ? 'the response ended inside its headers' : `the FastCGI application ended the request without a response (exit status ${appStatus})`);
      return;
    }
    this.#settle({ kind: 'done' }, false);
  }

  broken(reason: string): void {
    if (this.#settled) return;
    const ctx = this.#ctx;
    // A request that changes things and was sent may have run: only a safe one is sent again,
    // and only while nothing of its answer has reached the client.
    const replayable = SAFE_METHODS.has(ctx.request.method) && (this.#target.body.replayable || !this.#bodyStarted) && !this.#clientGone && ctx.response.clear();
    if (replayable) {
      this.#settle({ kind: 'retry', why: `The FastCGI process exited unexpectedly (${reason})` }, true);
      return;
    }
    this.#settle({ kind: 'failed', why: `The FastCGI process exited unexpectedly (${reason})`, hresult: 0x800700ff }, true);
  }

  /**
   * IIS 7.5's trace messages on stderr, `IIS_TRACE_INFO:…:IIS_TRACE_END` (or _WARNING, _ERROR):
   * they become Failed Request Tracing events of the FastCGI area, not errors. The rest is returned.
   */
  #traceMessages(text: string): string {
    if (text.indexOf('IIS_TRACE_') === -1) return text;
    return text.replace(/IIS_TRACE_(INFO|WARNING|ERROR):([\s\S]*?):IIS_TRACE_END/g, (_m, level: string, message: string) => {
      const ctx = this.#ctx;
      if (ctx.tracing) {
        ctx.trace({
          area: 'FastCGI',
          opcode: `FASTCGI_TRACE_${level}`,
          level: level === 'ERROR' ? TRACE_LEVEL.Error : level === 'WARNING' ? TRACE_LEVEL.Warning : TRACE_LEVEL.Information,
          data: { Message: message },
        });
      }
      return '';
    });
  }

  #timedOut(kind: 'activity' | 'request'): void {
    if (this.#settled) return;
    const s = this.#target.app.settings;
    const why =
      kind === 'activity'
        ? `The FastCGI process exceeded configured activity timeout (activityTimeout ${s.activityTimeoutMs / 1000} s)`
        : `The FastCGI process exceeded configured request timeout (requestTimeout ${s.requestTimeoutMs / 1000} s)`;
    this.#settle({ kind: 'failed', why, hresult: 0x80070102 }, true);
  }

  #badHead(why: string): void {
    this.#settle({ kind: 'failed', why: `The FastCGI process returned a malformed response: ${why}`, hresult: 0x8007000d }, true);
  }

  /**
   * The try's end. `broken`: its process is ended (release does it). A try that ends its own
   * process (timeout, malformed answer, TerminateProcess) settles first: ending the process
   * breaks the requests still open on it, and a broken GET would be replayed.
   */
  #settle(outcome: Outcome, broken: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#lease.onTimeout = undefined;
    if (this.#waitingDrain) this.#lease.conn.resume();
    if (broken) this.#lease.conn.forget(this.#id);
    this.#target.app.release(this.#lease, broken);
    this.#resolve(outcome);
  }
}
