import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSystem, loadAppHost } from '../config/index.js';
import type { RequestHeadMessage, ResponseEndMessage } from '../ipc/messages.js';
import { StatCache } from './stat-cache.js';
import type { ResponseTransport } from './http-context.js';
import type { HttpContext, ModuleDefinition, Notification } from './module-api.js';
import { ModuleRegistry } from './module-registry.js';
import { Pipeline } from './pipeline.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const calls: string[] = [];
function tracer(name: string, behaviour: Partial<Record<Notification, (ctx: HttpContext) => void>> = {}): ModuleDefinition {
  const notifications: Partial<Record<Notification, (ctx: HttpContext) => void | Promise<void>>> = {};
  for (const n of ['BeginRequest', 'AuthenticateRequest', 'AuthorizeRequest', 'ResolveRequestCache', 'MapRequestHandler', 'AcquireRequestState', 'PreExecuteRequestHandler', 'ExecuteRequestHandler', 'ReleaseRequestState', 'UpdateRequestCache', 'LogRequest', 'EndRequest', 'SendResponse'] as const) {
    notifications[n] = (ctx) => {
      calls.push(`${name}:${n}`);
      behaviour[n]?.(ctx);
    };
  }
  return { name, notifications };
}

function setup(options: { handlers: string; modules: ModuleDefinition[]; moduleNames: string[]; extraApplication?: string }) {
  const dir = tracked(mkdtempSync(join(tmpdir(), 'wharf-pipeline-')));
  mkdirSync(join(dir, 'www', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'www', 'a.txt'), 'A');
  writeFileSync(join(dir, 'www', 'sub', 'inner.txt'), 'INNER');
  const text = `<?xml version="1.0"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="P" /><add name="Q" /></applicationPools>
    <sites>
      <site name="S" id="1">
        <application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="www" /></application>
        ${options.extraApplication ?? ''}
        <bindings><binding protocol="http" bindingInformation="*:8080:" /></bindings>
      </site>
    </sites>
  </system.applicationHost>
  <system.webServer>
    <modules>${options.moduleNames.map((n) => `<add name="${n}" />`).join('')}</modules>
    <handlers accessPolicy="Read, Script">${options.handlers}</handlers>
  </system.webServer>
</configuration>`;
  const file = join(dir, 'applicationHost.config');
  writeFileSync(file, text);
  const appHost = loadAppHost(file, text, { systemDrive: dir });
  const registry = new ModuleRegistry(() => undefined);
  for (const m of options.modules) registry.register(m);
  const logs: string[] = [];
  const pipeline = new Pipeline({
    poolName: 'P',
    pool: { managedRuntimeVersion: '', managedPipelineMode: 'Integrated' },
    registry,
    config: new ConfigSystem(appHost, { systemDrive: dir }),
    statCache: new StatCache(),
    log: (_l, m) => logs.push(m),
  });
  return { pipeline, logs };
}

interface Captured {
  status: number;
  headers: string[];
  body: string;
  end: ResponseEndMessage | undefined;
}

async function serve(pipeline: Pipeline, path: string, method = 'GET', rawHeaders: string[] = ['Host', 'x']): Promise<Captured> {
  const c: Captured = { status: 0, headers: [], body: '', end: undefined };
  const transport: ResponseTransport = {
    head: (status, _reason, headers) => {
      c.status = status;
      c.headers = headers;
    },
    body: (chunk) => {
      c.body += chunk.toString();
      return true;
    },
    writable: () => Promise.resolve(),
    end: (info) => (c.end = info),
    complete: (status, _reason, headers, body, _bytes, info) => {
      c.status = status;
      c.headers = headers;
      c.body += Buffer.concat(body).toString();
      c.end = info;
    },
  };
  const head: RequestHeadMessage = {
    method,
    rawUrl: path,
    path,
    query: '',
    protocol: 'HTTP/1.1',
    siteId: 1,
    remoteAddress: '10.0.0.9',
    remotePort: 4000,
    localAddress: '10.0.0.1',
    localPort: 8080,
    contentLength: 0,
    rawHeaders,
  };
  await pipeline.run(head, transport, undefined);
  return c;
}

const writer: ModuleDefinition = {
  name: 'Writer',
  executeHandler(ctx) {
    ctx.response.setHeader('Content-Type', 'text/plain');
    ctx.response.write('handled ' + ctx.request.path);
  },
};

test('notifications run in IIS order; SendResponse fires once, after EndRequest, before the head leaves', async () => {
  calls.length = 0;
  const { pipeline } = setup({
    handlers: '<add name="W" path="*" verb="*" modules="Writer" />',
    modules: [tracer('T'), writer],
    moduleNames: ['T', 'Writer'],
  });
  const r = await serve(pipeline, '/x');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'handled /x');
  assert.deepEqual(r.headers, ['Content-Type', 'text/plain', 'Content-Length', '10']);
  assert.deepEqual(calls, [
    'T:BeginRequest',
    'T:AuthenticateRequest',
    'T:AuthorizeRequest',
    'T:ResolveRequestCache',
    'T:MapRequestHandler',
    'T:AcquireRequestState',
    'T:PreExecuteRequestHandler',
    'T:ExecuteRequestHandler',
    'T:ReleaseRequestState',
    'T:UpdateRequestCache',
    'T:LogRequest',
    'T:EndRequest',
    'T:SendResponse',
  ]);
});

test('a module that finishes the request skips the rest, but LogRequest and EndRequest still run', async () => {
  calls.length = 0;
  const stopper = tracer('Stop', {
    AuthenticateRequest: (ctx) => {
      ctx.setStatus(401, 2);
      ctx.finish();
    },
  });
  const { pipeline } = setup({
    handlers: '<add name="W" path="*" verb="*" modules="Writer" />',
    modules: [stopper, tracer('After'), writer],
    moduleNames: ['Stop', 'After', 'Writer'],
  });
  const r = await serve(pipeline, '/x');
  assert.equal(r.status, 401);
  assert.equal(r.end?.subStatus, 2);
  assert.ok(!calls.includes('After:AuthenticateRequest'), 'modules after the finisher in the same stage are skipped');
  assert.ok(!calls.some((c) => c.endsWith(':ExecuteRequestHandler')));
  assert.ok(calls.includes('After:LogRequest') && calls.includes('After:EndRequest') && calls.includes('Stop:EndRequest'));
});

test('a module that throws gives 500.0, logs the error, and EndRequest still runs', async () => {
  calls.length = 0;
  const thrower: ModuleDefinition = {
    name: 'Thrower',
    notifications: {
      BeginRequest() {
        throw new Error('boom');
      },
    },
  };
  const { pipeline, logs } = setup({
    handlers: '<add name="W" path="*" verb="*" modules="Writer" />',
    modules: [thrower, tracer('T'), writer],
    moduleNames: ['Thrower', 'T', 'Writer'],
  });
  const r = await serve(pipeline, '/x');
  assert.equal(r.status, 500);
  assert.equal(r.end?.subStatus, 0);
  assert.ok(logs.some((l) => l.includes('Thrower failed in BeginRequest') && l.includes('boom')));
  assert.ok(calls.includes('T:EndRequest'));
  assert.ok(!calls.includes('T:AuthenticateRequest'));
});

test('handler mapping: first match wins, 404.4 without a handler, 405 for a verb, 500.21 for a missing module, 404.0 for a missing file', async () => {
  const { pipeline } = setup({
    handlers: [
      '<add name="Txt" path="*.txt" verb="GET,HEAD" modules="Writer" resourceType="File" />',
      '<add name="Asp" path="*.aspx" verb="*" type="System.Web.UI.PageHandlerFactory" modules="ManagedPipelineHandler" />',
      '<add name="Ext" path="*." verb="GET" modules="Writer" />',
    ].join(''),
    modules: [writer],
    moduleNames: ['Writer'],
  });
  assert.equal((await serve(pipeline, '/a.txt')).body, 'handled /a.txt');
  const noHandler = await serve(pipeline, '/a.css');
  assert.deepEqual([noHandler.status, noHandler.end?.subStatus], [404, 4]);
  const verb = await serve(pipeline, '/a.txt', 'POST');
  assert.deepEqual([verb.status, verb.end?.subStatus], [405, 0]);
  const bad = await serve(pipeline, '/page.aspx');
  assert.deepEqual([bad.status, bad.end?.subStatus], [500, 21]);
  const missing = await serve(pipeline, '/nope.txt');
  assert.deepEqual([missing.status, missing.end?.subStatus, missing.end?.win32Status], [404, 0, 2]);
  assert.equal((await serve(pipeline, '/extensionless')).body, 'handled /extensionless');
});

test('a child request runs the pipeline for another URL and writes into the same response', async () => {
  const parent: ModuleDefinition = {
    name: 'Parent',
    async executeHandler(ctx) {
      if (ctx.request.path === '/') {
        await ctx.executeChildRequest('/sub/inner.txt');
        ctx.finish();
      }
    },
  };
  const reader: ModuleDefinition = {
    name: 'Reader',
    executeHandler(ctx) {
      ctx.response.write(`child ${ctx.request.path} ${ctx.isChildRequest}`);
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="Root" path="*" verb="*" modules="Parent,Reader" />',
    modules: [parent, reader],
    moduleNames: ['Parent', 'Reader'],
  });
  const r = await serve(pipeline, '/');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'child /sub/inner.txt true');
});

test('keepStatus child: starts at 200 with nothing produced, the head keeps the parent status even when the child flushes', async () => {
  let child: { status: number; subStatus: number } | undefined;
  const errorPage: ModuleDefinition = {
    name: 'ErrorPage',
    notifications: {
      async SendResponse(ctx) {
        if (ctx.response.statusCode !== 404) return;
        ctx.response.clearBody();
        child = await ctx.executeChildRequest('/sub/inner.txt?q=1', { keepStatus: true, ownUrl: true });
      },
    },
  };
  const writerThenStatus: ModuleDefinition = {
    name: 'Page',
    async executeHandler(ctx) {
      if (ctx.request.path === '/missing') {
        ctx.setStatus(404, 2);
        ctx.finish();
        return;
      }
      // The child sees a fresh 200 and its own URL, writes, streams, then sets a status of its own.
      ctx.response.write(`${ctx.response.statusCode} ${ctx.request.rawUrl} ${ctx.request.queryString}`);
      await ctx.response.flush();
      ctx.response.statusCode = 201;
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="Page" path="*" verb="*" modules="Page" />',
    modules: [writerThenStatus, errorPage],
    moduleNames: ['Page', 'ErrorPage'],
  });
  const r = await serve(pipeline, '/missing');
  assert.equal(r.status, 404);
  assert.equal(r.body, '200 /sub/inner.txt?q=1 q=1');
  assert.equal(r.end?.subStatus, 2);
  assert.deepEqual(child, { status: 201, subStatus: 0 });
});

test('a child request for an application of another pool is not run: 403.18', async () => {
  const parent: ModuleDefinition = {
    name: 'Parent',
    async executeHandler(ctx) {
      const result = await ctx.executeChildRequest('/other/x.txt');
      ctx.response.setHeader('X-Child', `${result.status}.${result.subStatus}`);
      ctx.finish();
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="Root" path="*" verb="*" modules="Parent" />',
    modules: [parent],
    moduleNames: ['Parent'],
    extraApplication: '<application path="/other" applicationPool="Q"><virtualDirectory path="/" physicalPath="www" /></application>',
  });
  const r = await serve(pipeline, '/');
  assert.equal(r.status, 403);
  assert.equal(r.end?.subStatus, 18);
  assert.deepEqual(r.headers.slice(r.headers.indexOf('X-Child'), r.headers.indexOf('X-Child') + 2), ['X-Child', '403.18']);
});

test('MapRequestHandler modules run before the core looks for the file: a module can answer for a missing one', async () => {
  const redirector: ModuleDefinition = {
    name: 'Redirector',
    notifications: {
      MapRequestHandler(ctx) {
        if (!ctx.request.path.startsWith('/gone/')) return;
        ctx.response.statusCode = 301;
        ctx.response.setHeader('Location', '/new');
        ctx.finish();
      },
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="Txt" path="*.txt" verb="*" modules="Writer" resourceType="File" />',
    modules: [redirector, writer],
    moduleNames: ['Redirector', 'Writer'],
  });
  const moved = await serve(pipeline, '/gone/x.txt');
  assert.equal(moved.status, 301);
  const missing = await serve(pipeline, '/nope.txt');
  assert.deepEqual([missing.status, missing.end?.subStatus], [404, 0]);
});

test('responseBufferLimit: 0 streams from the first write (no Content-Length); the default buffers and counts', async () => {
  const events: string[] = [];
  const streamer: ModuleDefinition = {
    name: 'Streamer',
    async executeHandler(ctx) {
      for (const part of ['a', 'b', 'c']) {
        if (!ctx.response.write(part)) await ctx.response.drained();
        events.push(`wrote ${part} headersSent=${ctx.response.headersSent}`);
      }
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="Stream" path="stream" verb="*" modules="Streamer" responseBufferLimit="0" /><add name="Buffered" path="*" verb="*" modules="Streamer" />',
    modules: [streamer],
    moduleNames: ['Streamer'],
  });
  const streamed = await serve(pipeline, '/stream');
  assert.equal(streamed.body, 'abc');
  assert.ok(!streamed.headers.includes('Content-Length'));
  assert.deepEqual(events, ['wrote a headersSent=true', 'wrote b headersSent=true', 'wrote c headersSent=true']);
  events.length = 0;
  const buffered = await serve(pipeline, '/other');
  assert.equal(buffered.body, 'abc');
  assert.deepEqual(buffered.headers, ['Content-Length', '3']);
  assert.deepEqual(events, ['wrote a headersSent=false', 'wrote b headersSent=false', 'wrote c headersSent=false']);
});

test('rewriteUrl: the rest of the pipeline serves the new URL with its configuration; X-Original-URL names the client\'s', async () => {
  const refusals: (string | undefined)[] = [];
  const rewriter: ModuleDefinition = {
    name: 'Rewriter',
    notifications: {
      BeginRequest(ctx) {
        if (ctx.request.path === '/bad') {
          for (const p of ['/sub/../../etc/passwd', 'relative.txt', '/a\u0000b', '/sub/./inner.txt']) refusals.push(ctx.rewriteUrl(p, '')?.description);
        }
        if (ctx.request.path === '/pretty') refusals.push(ctx.rewriteUrl('/sub/inner.txt', 'q=1')?.description);
      },
    },
  };
  const reporter: ModuleDefinition = {
    name: 'Reporter',
    executeHandler(ctx) {
      ctx.response.setHeader('Content-Type', 'application/json');
      ctx.response.write(
        JSON.stringify({
          path: ctx.request.path,
          query: ctx.request.queryString,
          raw: ctx.request.rawUrl,
          physical: ctx.physicalPath.endsWith(join('www', 'sub', 'inner.txt')),
          original: ctx.request.headers['x-original-url'],
          url: ctx.getServerVariable('URL'),
        }),
      );
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="R" path="*.txt" verb="*" modules="Reporter" /><add name="W" path="*" verb="*" modules="Writer" />',
    modules: [rewriter, reporter, writer],
    moduleNames: ['Rewriter', 'Reporter', 'Writer'],
  });
  // The client's own X-Original-URL is replaced, not trusted.
  const r = await serve(pipeline, '/pretty', 'GET', ['Host', 'x', 'X-Original-URL', '/admin']);
  assert.deepEqual(JSON.parse(r.body), { path: '/sub/inner.txt', query: 'q=1', raw: '/pretty', physical: true, original: '/pretty', url: '/sub/inner.txt' });
  // No rewrite: the handler for the URL itself (Writer), no X-Original-URL.
  assert.equal((await serve(pipeline, '/plain')).body, 'handled /plain');
  // Only canonical paths are taken: nothing can climb out of the site or skip canonicalisation.
  assert.equal((await serve(pipeline, '/bad')).body, 'handled /bad');
  assert.equal(refusals[0], undefined);
  assert.equal(refusals.length, 5);
  for (const r of refusals.slice(1)) assert.match(r ?? '', /is not a canonical URL path/);
});

test('a script map matches an earlier URL segment, as IIS maps /test.dll/myinfo: the rest is PATH_INFO', async () => {
  const reporter: ModuleDefinition = {
    name: 'Reporter',
    executeHandler(ctx) {
      ctx.response.write(
        JSON.stringify({
          path: ctx.request.path,
          script: ctx.scriptPath,
          file: ctx.physicalPath.endsWith(join('www', 'sub', 'inner.txt')),
          scriptName: ctx.getServerVariable('SCRIPT_NAME'),
          pathInfo: ctx.getServerVariable('PATH_INFO'),
        }),
      );
    },
  };
  const { pipeline } = setup({
    handlers:
      '<add name="R" path="*.txt" verb="*" modules="Reporter" resourceType="File" allowPathInfo="true" />' +
      '<add name="W" path="*" verb="*" modules="Writer" />',
    modules: [reporter, writer],
    moduleNames: ['Reporter', 'Writer'],
  });
  const r = await serve(pipeline, '/sub/inner.txt/users/7');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { path: '/sub/inner.txt/users/7', script: '/sub/inner.txt', file: true, scriptName: '/sub/inner.txt', pathInfo: '/users/7' });
  // The script must exist (resourceType File): 404 otherwise.
  assert.equal((await serve(pipeline, '/sub/missing.txt/x')).status, 404);
  // A folder that is not a script map's match stays with the * handler.
  assert.equal((await serve(pipeline, '/sub/other/x')).body, 'handled /sub/other/x');
});

test('the pipeline publishes its events (diagnostics channels) with the request context as key', async () => {
  const { pipelineStart, pipelineEnd, notificationStart, notificationEnd, moduleStart, moduleEnd, handlerChanged, statusSet, moduleTrace } = await import('../diagnostics.js');
  const seen: string[] = [];
  const keys = new Set<object>();
  const record = (name: string, describe: (m: never) => string) => (m: unknown) => {
    keys.add((m as { key: object }).key);
    seen.push(`${name} ${describe(m as never)}`);
  };
  const subs: [import('../diagnostics.js').TypedChannel<never>, (m: unknown) => void][] = [
    [pipelineStart as never, record('start', (m: { url: string }) => m.url)],
    [pipelineEnd as never, record('end', (m: { status: number; subStatus: number }) => `${m.status}.${m.subStatus}`)],
    [notificationStart as never, record('notify', (m: { notification: string }) => m.notification)],
    [notificationEnd as never, record('notified', (m: { notification: string }) => m.notification)],
    [moduleStart as never, record('module', (m: { module: string; notification: string }) => `${m.module}@${m.notification}`)],
    [moduleEnd as never, record('moduleEnd', (m: { module: string; notification: string }) => `${m.module}@${m.notification}`)],
    [handlerChanged as never, record('handler', (m: { oldHandler: string; newHandler: string; modules: string }) => `${m.oldHandler}->${m.newHandler}(${m.modules})`)],
    [statusSet as never, record('status', (m: { module: string; notification: string; status: number; subStatus: number; reason: string }) => `${m.status}.${m.subStatus} ${m.reason} by ${m.module}@${m.notification}`)],
    [moduleTrace as never, record('trace', (m: { module: string; opcode: string; data: Record<string, unknown> }) => `${m.module} ${m.opcode} ${JSON.stringify(m.data)}`)],
  ];
  const failing: ModuleDefinition = {
    name: 'Failing',
    executeHandler: async (ctx) => {
      if (ctx.tracing) ctx.trace({ area: 'Module', opcode: 'MY_EVENT', level: 3, data: { Answer: 42 } });
      await new Promise((resolve) => setImmediate(resolve));
      ctx.setStatus(503, 7, { description: 'down' });
      ctx.finish();
    },
  };
  const { pipeline } = setup({
    handlers: '<add name="F" path="*" verb="*" modules="Failing" />',
    modules: [{ name: 'Begin', notifications: { BeginRequest: () => undefined } }, failing],
    moduleNames: ['Begin', 'Failing'],
  });
  for (const [ch, fn] of subs) ch.subscribe(fn);
  try {
    const r = await serve(pipeline, '/slow');
    assert.equal(r.status, 503);
  } finally {
    for (const [ch, fn] of subs) ch.unsubscribe(fn);
  }
  assert.deepEqual(seen, [
    'start /slow',
    'notify BeginRequest',
    'module Begin@BeginRequest',
    'moduleEnd Begin@BeginRequest',
    'notified BeginRequest',
    'handler ->F(Failing)',
    'notify ExecuteRequestHandler',
    'module Failing@ExecuteRequestHandler',
    'trace Failing MY_EVENT {"Answer":42}',
    'status 503.7 Service Unavailable by Failing@ExecuteRequestHandler',
    'moduleEnd Failing@ExecuteRequestHandler',
    'notified ExecuteRequestHandler',
    'end 503.7',
  ]);
  assert.equal(keys.size, 1, 'every event of the request carries one key');
  // Nobody subscribed: the module sees tracing off and nothing is published.
  seen.length = 0;
  await serve(pipeline, '/again');
  assert.deepEqual(seen, []);
});
