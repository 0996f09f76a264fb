/**
 * One request served by one CGI program (RFC 3875): the program is started with the request's
 * meta-variables as its environment, the body on its stdin, and its stdout parsed for the header
 * block, then streamed to the client. Both directions keep backpressure: the program blocks on a
 * full pipe while the client reads slowly, and is fed only as fast as it reads.
 *
 * The outcomes IIS gives a CGI program: its answer; 502.1 when `cgi timeout` passes before the
 * head went out (the program and its group are killed); 502.2 when it ends without a valid head;
 * a local redirect (`Location: /path` alone) served as a GET child request.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ModuleError } from '../../errors.js';
import type { HttpContext } from '../../worker/module-api.js';
import { requestFilterFor } from '../request-filtering/index.js';
import { spoolBody, type SpooledBody } from './body-spool.js';
import { cgiProcesses } from './cgi-processes.js';
import { cgiEnvironment } from './environment.js';
import { applyCgiHead, CgiHeadError, CgiHeadParser, type CgiHead } from './response-head.js';
import { readOutputLines } from '../../output-lines.js';

/** What to run for this request (index.ts decides). */
export interface CgiRun {
  /** The program's Linux path. */
  readonly program: string;
  readonly args: readonly string[];
  /** How messages name it (the scriptProcessor, or the script's path). */
  readonly shown: string;
  /** `cgi timeout`, in milliseconds. */
  readonly timeoutMs: number;
  /** The URL Rewrite module is in this request's <modules> (IIS_UrlRewriteModule is set). */
  readonly urlRewrite: boolean;
}

/** The search path CGI programs get: the worker's, else the usual system one. */
const CGI_PATH = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin';

/** Longest stderr line logged, and most lines logged per request: a chatty program cannot flood the log. */
const MAX_STDERR_LINE = 1024;
const MAX_STDERR_LINES = 100;

/** How much of a program's output a 502.2 page quotes. */
const QUOTED_OUTPUT = 256;

/** Request headers a local redirect's GET does not carry: it has no body. */
const BODY_HEADERS = new Set(['content-length', 'content-type', 'transfer-encoding', 'expect']);

/** ERROR_TIMEOUT (1460): the Win32 code logged for a CGI timeout. */
const WIN32_TIMEOUT = 1460;

/** The longest delay setTimeout keeps (a longer one would fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

type Outcome = 'running' | 'timedOut' | 'clientGone';

export async function runCgi(ctx: HttpContext, run: CgiRun): Promise<void> {
  const req = ctx.request;
  let length = req.contentLength > 0 ? req.contentLength : 0;
  let spooled: SpooledBody | undefined;
  if (req.hasBody && req.contentLength < 0) {
    // CONTENT_LENGTH must be known before the program starts: read the chunked body whole first,
    // capped as requestFiltering caps it (past the cap: MOD_BODY_TOO_LARGE, answered 404.13).
    req.limitBody(requestFilterFor(ctx).maxAllowedContentLength);
    try {
      spooled = await spoolBody(req.body());
    } catch (err) {
      if (err instanceof ModuleError && err.code === 'MOD_CLIENT_DISCONNECTED') return clientLeft(ctx);
      throw err;
    }
    length = spooled.length;
  }
  const env = cgiEnvironment(ctx, { redirectStatus: true, contentLength: length, urlRewrite: run.urlRewrite });
  env['PATH'] = CGI_PATH;

  let child: ChildProcess;
  try {
    child = spawn(run.program, run.args, {
      cwd: dirname(ctx.physicalPath),
      env,
      // A spooled body is the program's stdin as it is; no body: /dev/null.
      stdio: [spooled?.file !== undefined ? spooled.file.fd : length > 0 ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      // Its own process group, so that a timeout or a departed client ends its children too.
      detached: true,
    });
  } catch (err) {
    await spooled?.file?.close();
    return cannotStart(ctx, run, err as NodeJS.ErrnoException);
  }
  await spooled?.file?.close();
  const pid = child.pid;
  if (pid === undefined) {
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
    return cannotStart(ctx, run, err);
  }
  child.on('error', () => undefined);
  cgiProcesses.add(pid);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      // The program is gone: whatever it left running in its group goes too.
      cgiProcesses.release(pid);
      resolve(signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? '?'}`);
    }),
  );

  let outcome: Outcome = 'running';
  const stop = (why: Outcome): void => {
    if (outcome !== 'running') return;
    outcome = why;
    cgiProcesses.kill(pid);
    // The program itself too, should it have left its group (setsid); not yet reaped, its pid is still its own.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    // Stop reading: a process that left the group could hold stdout open.
    child.stdout!.destroy();
  };
  // setTimeout takes at most 2^31-1 ms (24.8 days); the schema allows up to 2^31-1 seconds.
  const timer = setTimeout(() => stop('timedOut'), Math.min(run.timeoutMs, MAX_TIMER_MS));
  ctx.response.onClientAbort(() => stop('clientGone'));

  logStderr(ctx, child.stderr!, run, pid);
  if (child.stdin !== null) {
    child.stdin.on('error', () => undefined);
    // A body that fails to arrive (the client went away: MOD_CLIENT_DISCONNECTED) ends the program.
    void feed(child.stdin, spooled?.chunks ?? req.body()).catch(() => stop('clientGone'));
  }

  let head: CgiHead | undefined;
  let headError: string | undefined;
  let seen = Buffer.alloc(0);
  let completed = false;
  try {
    const parser = new CgiHeadParser();
    for await (const data of readChunks(child.stdout!)) {
      if (outcome !== 'running') break;
      let chunk = data;
      if (head === undefined) {
        if (seen.length < QUOTED_OUTPUT) seen = Buffer.concat([seen, chunk.subarray(0, QUOTED_OUTPUT - seen.length)]);
        let r: ReturnType<CgiHeadParser['push']>;
        try {
          r = parser.push(chunk);
        } catch (err) {
          if (!(err instanceof CgiHeadError)) throw err;
          headError = err.message;
          cgiProcesses.kill(pid);
          break;
        }
        if (r === undefined) continue;
        head = r.head;
        if (head.localRedirect === undefined) applyCgiHead(ctx.response, head);
        chunk = r.rest;
      }
      // A local redirect's body is not sent (§6.2.2: it has none); the program is read to its end.
      if (head.localRedirect !== undefined || chunk.length === 0) continue;
      if (!ctx.response.write(chunk)) await ctx.response.drained();
    }
    completed = true;
  } finally {
    clearTimeout(timer);
    // A write that threw (or anything unexpected): the program must not outlive the request.
    if (!completed) cgiProcesses.kill(pid);
  }
  const how = await exited;

  switch (outcome as Outcome) {
    case 'clientGone':
      return clientLeft(ctx);
    case 'timedOut':
      return timedOut(ctx, run, pid);
    case 'running':
      break;
  }
  if (head === undefined) {
    const why = headError ?? `it ${how} without a complete set of response headers (a header block ended by a blank line)`;
    return badHead(ctx, run, why, seen);
  }
  if (head.localRedirect !== undefined) return localRedirect(ctx, head.localRedirect);
  ctx.finish();
}

/** The stream's chunks; a stream destroyed by a timeout or a departed client just ends. */
async function* readChunks(stream: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  }
}

/** Feed the body to the program's stdin as fast as it reads; a program that stops reading (EPIPE) gets no more. */
async function feed(stdin: Writable, body: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) {
    if (stdin.destroyed || !stdin.writable) return;
    if (!stdin.write(chunk)) {
      const open = await new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => (): void => {
          stdin.off('drain', onDrain);
          stdin.off('close', onClose);
          resolve(ok);
        };
        const onDrain = done(true);
        const onClose = done(false);
        stdin.once('drain', onDrain);
        stdin.once('close', onClose);
      });
      if (!open) return;
    }
  }
  stdin.end();
}

/** stderr to the pool's log, line by line, bounded in line length and count. */
function logStderr(ctx: HttpContext, stderr: Readable, run: CgiRun, pid: number): void {
  let lines = 0;
  readOutputLines(stderr, MAX_STDERR_LINE, (line) => {
    lines++;
    if (lines <= MAX_STDERR_LINES) {
      const cut = line.length > MAX_STDERR_LINE ? `${line.slice(0, MAX_STDERR_LINE)}… (${line.length} characters)` : line;
      ctx.log('warn', `CGI ${run.shown} (pid ${pid}) for ${ctx.request.path}: ${cut}`);
    } else if (lines === MAX_STDERR_LINES + 1) {
      ctx.log('warn', `CGI ${run.shown} (pid ${pid}): more than ${MAX_STDERR_LINES} lines on stderr; the rest is not logged`);
    }
  });
  stderr.on('error', () => undefined);
}

function clientLeft(ctx: HttpContext): void {
  ctx.response.abort();
  ctx.finish();
}

/** The program could not be started (missing, not executable, a bad `#!` interpreter). */
function cannotStart(ctx: HttpContext, run: CgiRun, err: NodeJS.ErrnoException): void {
  const hresult = err.code === 'ENOENT' ? 0x80070002 : err.code === 'EACCES' ? 0x80070005 : 0x80004005;
  ctx.log('error', `CGI ${run.shown} for ${ctx.request.path} could not be started: ${err.message}`);
  ctx.setStatus(500, 0, { hresult, description: `The CGI program ${run.shown} could not be started: ${err.message}.` });
  ctx.finish();
}

function timedOut(ctx: HttpContext, run: CgiRun, pid: number): void {
  const limit = formatDuration(run.timeoutMs);
  ctx.response.win32Status = WIN32_TIMEOUT;
  if (ctx.response.headersSent) {
    // Part of the answer is out: the client can only see it cut short.
    ctx.log('warn', `CGI ${run.shown} (pid ${pid}) for ${ctx.request.path} exceeded the cgi timeout (${limit}) after its response had started; killed, response cut`);
    ctx.response.abort();
  } else {
    ctx.log('warn', `CGI ${run.shown} (pid ${pid}) for ${ctx.request.path} exceeded the cgi timeout (${limit}); killed with its process group: 502.1`);
    ctx.response.clear();
    ctx.setStatus(502, 1, {
      hresult: 0x800705b4,
      description: `The CGI program ${run.shown} did not finish within the cgi timeout (${limit}); it was killed with its process group.`,
    });
  }
  ctx.finish();
}

function badHead(ctx: HttpContext, run: CgiRun, why: string, output: Buffer): void {
  const quoted = output.length === 0 ? 'It wrote nothing.' : `It wrote: "${printable(output.toString('latin1'))}${output.length >= QUOTED_OUTPUT ? '…' : ''}".`;
  ctx.log('warn', `CGI ${run.shown} for ${ctx.request.path}: 502.2: ${why}`);
  ctx.response.clear();
  ctx.setStatus(502, 2, { description: `The CGI program ${run.shown} misbehaved: ${why}. ${quoted}` });
  ctx.finish();
}

/** RFC 3875 §6.2.2: serve the local path instead, as a GET without the request's body. */
export async function localRedirect(ctx: HttpContext, location: string): Promise<void> {
  const raw = ctx.request.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!BODY_HEADERS.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  ctx.response.clear();
  // The location's own query, none included: without '?' the child would get this request's.
  const url = location.includes('?') ? location : location + '?';
  await ctx.executeChildRequest(url, { ownUrl: true, method: 'GET', rawHeaders: headers });
  ctx.finish();
}

function printable(s: string): string {
  return s.replace(/\r?\n/g, '⏎').replace(/[^\x20-\x7e⏎]/g, '?');
}

/** `00:15:00` style, as the cgi timeout is written. */
function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}
