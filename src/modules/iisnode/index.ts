/**
 * The `iisnode` handler module: requests mapped to it are served by an unmodified Node.js
 * application hosted in this worker process (src/modules/iisnode/in-process-host.ts), under every
 * protection of the pool — its identity, pings, recycling, rapid-fail and queues.
 *
 * Mapped like iisnode (`<add name="iisnode" path="server.js" verb="*" modules="iisnode"/>`: the
 * requested file is the entry), or in Wharf's concise form, which names the entry and takes every
 * URL of the application:
 *
 *     <add name="node" path="*" verb="*" modules="iisnode" scriptProcessor="server.js" />
 *
 * `<iisnode>` attributes that apply are read per request (docs/configuration.md, "Node.js
 * applications"); app_offline.htm in the application's root stops the app and answers 503.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import type { AppServer } from './in-process-host.js';
import type { FileInfo, HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { escapeHtml } from '../html-response.js';
import { AppExchange, serializeRequestHead } from './app-exchange.js';
import { SocketPool } from './app-socket.js';
import { hostedApp, startApp, type HostedApp } from './in-process-host.js';
import { promotedServerVariables } from './promote-server-vars.js';
import { appOfflineChanged, attachWorker, sendAppHints, watchApplication } from './app-watch.js';

/** ANCM's startupTimeLimit default: the app has this long to call listen() once loaded. */
const STARTUP_TIME_LIMIT_MS = 120_000;

let inflight = 0;
/** Keep-alive sockets into the hosted app's server. */
let pool: SocketPool | undefined;

function isUpgrade(ctx: HttpContext): boolean {
  const h = ctx.request.headers;
  return h['upgrade'] !== undefined && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(h['connection'] ?? '');
}

export const IisNodeModule: ModuleDefinition = {
  name: 'iisnode',
  executeHandler(ctx) {
    return serve(ctx);
  },
  attach: attachWorker,
};

/** Where a handler's app lives for one application: computed once, not per request. */
interface AppTarget {
  readonly root: string;
  readonly offline: string;
  /** The entry named by scriptProcessor; undefined: the requested file is the entry (iisnode's form). */
  readonly entry: string | undefined;
}
const targets = new WeakMap<object, Map<object, AppTarget>>();

function targetOf(ctx: HttpContext): AppTarget {
  const handler = ctx.handler!;
  const application = ctx.config.application;
  let perHandler = targets.get(handler);
  if (perHandler === undefined) targets.set(handler, (perHandler = new Map()));
  let t = perHandler.get(application);
  if (t === undefined) {
    const root = application.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? ctx.config.virtualDirectory.physicalPath;
    const named = handler.scriptProcessor.trim().replace(/^"(.*)"$/, '$1').replace(/\\/g, '/');
    t = { root, offline: join(root, 'app_offline.htm'), entry: named === '' ? undefined : isAbsolute(named) ? named : resolve(root, named) };
    perHandler.set(application, t);
  }
  return t;
}

/**
 * The common case stays synchronous (STYLE.md §8): a fresh cached stat of app_offline.htm, the
 * app listening, the app answering within the request's own tick. Everything else goes async.
 */
function serve(ctx: HttpContext): void | Promise<void> {
  const t = targetOf(ctx);
  const offline = ctx.statCached(t.offline);
  if (offline === undefined) return ctx.stat(t.offline).then((info) => serveChecked(ctx, t, info ?? null));
  return serveChecked(ctx, t, offline);
}

function serveChecked(ctx: HttpContext, t: AppTarget, offline: FileInfo | null): void | Promise<void> {
  if (offline !== null && offline.isFile) return serveOffline(ctx, t.offline);
  const entry = t.entry ?? ctx.physicalPath;
  const app = hostedApp();
  const settings = ctx.config.section('system.webServer/iisnode');
  if (app === undefined || app.entry !== entry || app.state !== 'listening' || app.server === undefined) return startAndServe(ctx, entry, settings);
  return dispatch(ctx, app.server, settings);
}

/** app_offline.htm: the app is stopped and every request gets the file as 503 (ANCM's rule). */
async function serveOffline(ctx: HttpContext, file: string): Promise<void> {
  appOfflineChanged(true);
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    body = Buffer.from('');
  }
  const res = ctx.response;
  res.clear();
  res.statusCode = 503;
  res.trySkipCustomErrors = true;
  res.setHeader('Content-Type', 'text/html');
  res.write(body);
  ctx.finish();
}

/** The app is not listening yet (or another one is hosted): start it and wait, or answer 500.3x. */
async function startAndServe(ctx: HttpContext, entry: string, settings: ConfigElement): Promise<void> {
  let app = hostedApp();
  if (app === undefined) {
    const info = await ctx.stat(entry);
    if (info === undefined || !info.isFile) {
      ctx.setStatus(500, 30, {
        description: `The Node.js application's entry ${entry} does not exist (handler ${ctx.handler?.name ?? ''}).`,
        hresult: 0x80070002,
      });
      ctx.finish();
      return;
    }
    app = startApp(entry, { startupTimeLimitMs: STARTUP_TIME_LIMIT_MS, environment: appEnvironment(settings) });
    if (app !== undefined) {
      watchApplication(ctx, entry, settings);
      sendAppHints(settings);
      reportCommandLine(ctx, settings);
    }
  } else if (app.entry !== entry) {
    app = undefined;
  }
  if (app === undefined) {
    const other = hostedApp()?.entry ?? '';
    ctx.setStatus(500, 35, {
      description: `This worker process of pool ${ctx.appPoolName} already hosts the Node.js application ${other}; ${entry} cannot be hosted beside it. Give each application a pool of its own.`,
    });
    ctx.finish();
    return;
  }
  if (app.state === 'loading') await app.settled();
  if (app.state !== 'listening' || app.server === undefined) {
    startFailure(ctx, app, settings);
    return;
  }
  await dispatch(ctx, app.server, settings);
}

function dispatch(ctx: HttpContext, server: AppServer, settings: ConfigElement): void | Promise<void> {
  const limit = settings.num('maxConcurrentRequestsPerProcess');
  if (limit > 0 && inflight >= limit) {
    ctx.setStatus(503, 2, { description: `The Node.js application is already serving ${limit} requests (iisnode maxConcurrentRequestsPerProcess).` });
    ctx.finish();
    return;
  }
  const upgrade = isUpgrade(ctx);
  const ex = new AppExchange(ctx, (pool ??= new SocketPool(server)), upgrade);
  inflight++;
  try {
    ex.start(serializeRequestHead(ctx, extraHeaders(ctx, settings), upgrade));
  } catch (err) {
    inflight--; // a request that never reached the app must not hold a maxConcurrentRequestsPerProcess slot
    throw err;
  }
  if (ex.settled) return finished(ctx);
  return ex.done.then(() => {
    finished(ctx);
    if (ex.bodyError !== undefined) throw ex.bodyError;
  });
}

function finished(ctx: HttpContext): void {
  inflight--;
  ctx.finish();
}

/**
 * iisnode's nodeProcessCommandLine starts node.exe per application. Wharf hosts the app inside
 * the pool's worker, whose node is the pool's managedRuntimeVersion (applicationHost.config):
 * a web.config must not choose what the server starts before it takes the pool's identity. A
 * command line naming another node is reported once, with what to set instead.
 */
function reportCommandLine(ctx: HttpContext, settings: ConfigElement): void {
  if (!settings.isSet('nodeProcessCommandLine')) return;
  const line = settings.str('nodeProcessCommandLine').trim();
  const exe = (/^"([^"]*)"/.exec(line)?.[1] ?? line.split(/\s+/)[0] ?? '').trim();
  if (exe === '' || /\\|^[a-z]:|%/i.test(exe) || exe === process.execPath || exe === 'node') return;
  ctx.log(
    'warn',
    `iisnode nodeProcessCommandLine "${line}" is not used: the application runs inside pool ${ctx.appPoolName}'s worker on ${process.execPath}; ` +
      `set managedRuntimeVersion="${exe.startsWith('/') ? exe : '/path/to/node'}" on the pool in applicationHost.config to run it on another node`,
  );
}

/** NODE_ENV from `node_env` when it is set to something other than its unexpanded default. */
function appEnvironment(settings: ConfigElement): Record<string, string> {
  const env: Record<string, string> = {};
  const nodeEnv = settings.str('node_env');
  if (nodeEnv !== '' && !/^%node_env%$/i.test(nodeEnv)) env['NODE_ENV'] = nodeEnv;
  return env;
}

function extraHeaders(ctx: HttpContext, settings: ConfigElement): string[] {
  const out: string[] = [];
  const promote = settings.str('promoteServerVars');
  if (promote !== '') promotedServerVariables(ctx, promote, out);
  if (settings.bool('enableXFF')) {
    const prev = ctx.request.headers['x-forwarded-for'];
    out.push('X-Forwarded-For', prev === undefined ? ctx.request.remoteAddress : `${prev}, ${ctx.request.remoteAddress}`);
  }
  return out;
}

/**
 * The app could not start: 500.30 (its entry threw) or 500.37 (no listen() in time). Details —
 * the error and its stack — go to local clients, or to everyone when the site sets iisnode
 * devErrorsEnabled="true" explicitly (iisnode's default of true would show stacks to the world).
 */
function startFailure(ctx: HttpContext, app: HostedApp, settings: ConfigElement): void {
  const f = app.failure ?? { subStatus: 30 as const, message: 'the application closed its server', stack: '' };
  const description =
    f.subStatus === 37
      ? `The Node.js application ${app.entry} did not start listening: ${f.message}.`
      : `The Node.js application ${app.entry} failed to start: ${f.message}`;
  ctx.setStatus(500, f.subStatus, { description });
  const devErrors = settings.isSet('devErrorsEnabled') && settings.bool('devErrorsEnabled');
  if (devErrors || (ctx.request.isLocal && f.stack !== '')) {
    const res = ctx.response;
    res.trySkipCustomErrors = true;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.write(
      `<!DOCTYPE html>\n<html><head><title>HTTP Error 500.${f.subStatus} - Node.js application start failure</title></head>\n` +
        `<body><h1>HTTP Error 500.${f.subStatus} - Node.js application start failure</h1>\n<p>${escapeHtml(description)}</p>\n` +
        `<pre>${escapeHtml(f.stack || f.message)}</pre>\n<p>Pool ${escapeHtml(ctx.appPoolName)}; the application's output is in the pool's log (wharf logs apppool).</p></body></html>\n`,
    );
  }
  ctx.finish();
}
