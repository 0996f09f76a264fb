/**
 * In-process hosting of one unmodified Node.js application per worker (ASP.NET Core's in-process
 * model: one app per pool). The application's entry is loaded as its own main module — CommonJS
 * through Node's loader with `require.main === module`, ESM through `import()` — with its folder
 * as the working directory and `process.argv[1]` naming it. Whatever it passes to `listen()` (a
 * port, `process.env.PORT`, a pipe, nothing), the first `http.Server` or `https.Server` it starts
 * listening is captured instead of bound: the listener owns the sockets (and TLS), and requests
 * reach the server through AppSocket. An app that starts an http server and an https one while it
 * loads (the usual "redirect port 80 to 443" pair) gets its https one served and the other kept
 * idle: the site's bindings, not the app, decide the schemes. Other servers the app creates later
 * (a second port, a raw `net` server) listen for real.
 */
import { createRequire } from 'node:module';
import { Server as HttpServer } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { Server as NetServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ModuleError } from '../../errors.js';

export type AppState = 'loading' | 'listening' | 'failed' | 'closed';

/** A server Wharf feeds requests to: Node's HTTP server, or its HTTPS one (TLS ends at the listener). */
export type AppServer = HttpServer | HttpsServer;

export interface AppStartFailure {
  /** IIS sub-status: 30 start failure (the entry threw), 37 not listening within the start-up time limit. */
  readonly subStatus: 30 | 37;
  readonly message: string;
  readonly stack: string;
}

export class HostedApp {
  readonly entry: string;
  state: AppState = 'loading';
  server: AppServer | undefined;
  failure: AppStartFailure | undefined;
  readonly #waiters: Array<() => void> = [];

  constructor(entry: string) {
    this.entry = entry;
  }

  /** Resolves once the app listens, failed or closed. */
  settled(): Promise<void> {
    if (this.state !== 'loading') return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  settle(state: Exclude<AppState, 'loading'>): void {
    if (this.state !== 'loading' && state !== 'closed') return;
    this.state = state;
    for (const w of this.#waiters.splice(0)) w();
  }
}

let current: HostedApp | undefined;
let patched = false;
const realListen = NetServer.prototype.listen;

/** The app this worker hosts, if one was started. */
export function hostedApp(): HostedApp | undefined {
  return current;
}

export interface StartOptions {
  /** Milliseconds to wait for `listen()` after the entry was loaded (ANCM startupTimeLimit). */
  readonly startupTimeLimitMs: number;
  /** Variables the app starts with (NODE_ENV from iisnode node_env …), set before it loads. */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * Start the worker's application from `entry` (an absolute file). A worker hosts one: asking for
 * another entry returns undefined (the caller answers 500.35).
 */
export function startApp(entry: string, options: StartOptions): HostedApp | undefined {
  if (current !== undefined) return current.entry === entry ? current : undefined;
  const app = new HostedApp(entry);
  current = app;
  patchListen();
  Object.assign(process.env, options.environment);
  const timer = setTimeout(() => {
    if (app.state !== 'loading') return;
    app.failure = {
      subStatus: 37,
      message: `the application did not call listen() on an http.Server within ${Math.round(options.startupTimeLimitMs / 1000)} s of being loaded`,
      stack: '',
    };
    // Into the pool's output log, beside what the app printed while starting.
    process.stderr.write(`wharf: ${app.entry}: ${app.failure.message} (500.37)\n`);
    app.settle('failed');
  }, options.startupTimeLimitMs);
  timer.unref();
  // Load on a fresh tick: the request that started the app is not part of its start-up stack.
  setImmediate(() => {
    void load(app).catch((err: unknown) => {
      clearTimeout(timer);
      const e = err instanceof Error ? err : new ModuleError('MOD_FAILED', String(err));
      app.failure = { subStatus: 30, message: e.message, stack: e.stack ?? e.message };
      // What `node entry` would print before exiting, into the pool's output log; the worker
      // stays up and answers 500.30 until it is recycled.
      process.stderr.write(`${app.failure.stack}\nwharf: ${app.entry} failed to start (500.30)\n`);
      app.settle('failed');
    });
  });
  return app;
}

async function load(app: HostedApp): Promise<void> {
  const entry = app.entry;
  process.chdir(dirname(entry));
  process.argv[1] = entry;
  if (isEsm(entry)) {
    await import(pathToFileURL(entry).href);
    return;
  }
  // CommonJS as the main module: `require.main === module` holds, as under `node entry.js`.
  const Module = createRequire(import.meta.url)('node:module') as {
    _load(request: string, parent: unknown, isMain: boolean): unknown;
  };
  Module._load(entry, null, true);
}

/** How node itself would load the file: .mjs / .cjs by extension, .js by the nearest package.json "type". */
function isEsm(file: string): boolean {
  const ext = extname(file).toLowerCase();
  if (ext === '.mjs') return true;
  if (ext === '.cjs') return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: unknown };
      return pkg.type === 'module';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    if (dirname(dir) === dir) return false;
  }
}

function patchListen(): void {
  if (patched) return;
  patched = true;
  NetServer.prototype.listen = function listen(this: NetServer, ...args: unknown[]): NetServer {
    const app = current;
    const https = this instanceof HttpsServer;
    if (app === undefined || !(https || this instanceof HttpServer)) return realListen.apply(this, args as Parameters<typeof realListen>);
    if (app.server === undefined) {
      capture(app, this as AppServer, args);
      return this;
    }
    // While it loads, an https server wins over the http one (that then only looks listening).
    if (https && app.state === 'loading' && !(app.server instanceof HttpsServer)) {
      app.server = this as HttpsServer;
      fakeListening(app, this as AppServer, args);
      return this;
    }
    return realListen.apply(this, args as Parameters<typeof realListen>);
  } as typeof NetServer.prototype.listen;
}

/** Take the server instead of binding it: it looks listening to the app, on the port it asked for. */
function capture(app: HostedApp, server: AppServer, args: unknown[]): void {
  app.server = server;
  process.nextTick(() => app.settle('listening'));
  fakeListening(app, server, args);
}

/** Make a server look listening (address, close, 'listening' and the callback) without binding it. */
function fakeListening(app: HostedApp, server: AppServer, args: unknown[]): void {
  const last = args[args.length - 1];
  const callback = typeof last === 'function' ? (last as () => void) : undefined;
  const port = requestedPort(args[0]);
  let listening = true;
  Object.defineProperty(server, 'listening', { configurable: true, get: () => listening });
  server.address = () => ({ address: '::', family: 'IPv6', port });
  server.close = function close(this: AppServer, cb?: (err?: Error) => void): AppServer {
    listening = false;
    if (app.server === server && app.state !== 'closed') app.settle('closed');
    server.closeIdleConnections?.();
    process.nextTick(() => {
      server.emit('close');
      cb?.();
    });
    return server;
  };
  if (callback !== undefined) server.once('listening', callback);
  process.nextTick(() => server.emit('listening'));
}

function requestedPort(first: unknown): number {
  const n = typeof first === 'object' && first !== null ? (first as { port?: unknown }).port : first;
  const port = typeof n === 'string' ? Number(n) : n;
  return typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? port : 0;
}
