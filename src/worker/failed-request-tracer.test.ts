import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSystem, loadAppHost } from '../config/index.js';
import type { AppHostConfig } from '../config/types.js';
import { handlerChanged, moduleEnd, moduleStart, moduleTrace, pipelineEnd, pipelineStart, statusSet } from '../diagnostics.js';
import type { RequestHeadMessage, TraceRecordMessage } from '../ipc/messages.js';
import { FailedRequestTracer, fitEvents, type TraceTimers } from './failed-request-tracer.js';
import type { ResponseTransport } from './http-context.js';
import type { ModuleDefinition } from './module-api.js';
import { ModuleRegistry } from './module-registry.js';
import { Pipeline } from './pipeline.js';
import { StatCache } from './stat-cache.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Timers the test fires by hand: timeTaken without waiting for the clock. */
class ManualTimers implements TraceTimers {
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  #next = 1;
  set(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  fireAll(): void {
    for (const [id, t] of [...this.pending]) {
      this.pending.delete(id);
      t.fn();
    }
  }
}

/** A gate a module waits on, opened by the test. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

let gated = gate();
let sawModuleSubscribers: boolean[] = [];

const handler: ModuleDefinition = {
  name: 'TestHandler',
  executeHandler(ctx) {
    sawModuleSubscribers.push(moduleStart.hasSubscribers);
    const p = ctx.request.path;
    if (p.endsWith('/missing.htm')) {
      ctx.setStatus(404, 0, { hresult: 0x80070002, description: 'not here' });
      ctx.finish();
      return;
    }
    if (p.endsWith('/warn')) {
      if (ctx.tracing) ctx.trace({ area: 'Module', opcode: 'MY_WARNING', level: 3, data: { Why: 'because' } });
      ctx.response.write('fine');
      return;
    }
    if (p.endsWith('/chatty')) {
      for (let i = 0; i < 150; i++) if (ctx.tracing) ctx.trace({ area: 'Module', opcode: 'MY_STEP', level: 4, data: { Step: i } });
      ctx.response.write('talked');
      return;
    }
    if (p.endsWith('/slow') || p.endsWith('/slow-all')) return gated.wait.then(() => void ctx.response.write('late'));
    ctx.response.write('ok');
  },
};
const begin: ModuleDefinition = { name: 'BeginModule', notifications: { BeginRequest: () => undefined } };

function setup(rules: string, enabled = true, options: { webConfig?: string; configNow?: () => number; maxKB?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-freb-tracer-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'www'));
  if (options.webConfig !== undefined) writeFileSync(join(dir, 'www', 'web.config'), options.webConfig);
  const text = `<?xml version="1.0"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="P" /></applicationPools>
    <sites>
      <site name="S" id="4">
        <application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="www" /></application>
        <bindings><binding protocol="http" bindingInformation="*:8080:" /></bindings>
        <traceFailedRequestsLogging enabled="${enabled}" maxLogFileSizeKB="${options.maxKB ?? 64}" />
      </site>
    </sites>
  </system.applicationHost>
  <system.webServer>
    <modules><add name="BeginModule" /><add name="TestHandler" /></modules>
    <handlers accessPolicy="Read, Script"><add name="T" path="*" verb="*" modules="TestHandler" /></handlers>
    <tracing><traceFailedRequests>${rules}</traceFailedRequests></tracing>
  </system.webServer>
</configuration>`;
  const file = join(dir, 'applicationHost.config');
  writeFileSync(file, text);
  const appHost = loadAppHost(file, text, { systemDrive: dir });
  const registry = new ModuleRegistry(() => undefined);
  registry.register(begin);
  registry.register(handler);
  const pipeline = new Pipeline({
    poolName: 'P',
    pool: { managedRuntimeVersion: '', managedPipelineMode: 'Integrated' },
    registry,
    config: new ConfigSystem(appHost, { systemDrive: dir, ...(options.configNow !== undefined ? { now: options.configNow } : {}) }),
    statCache: new StatCache(),
    log: () => undefined,
  });
  const records: TraceRecordMessage[] = [];
  const logs: string[] = [];
  const timers = new ManualTimers();
  let clock = 1000;
  const tracer = new FailedRequestTracer({ poolName: () => 'P', send: (r) => records.push(r), log: (_l, m) => logs.push(m), now: () => (clock += 5), timeOrigin: 0, timers });
  tracer.configure(appHost);
  after(() => tracer.close());
  return { pipeline, records, logs, timers, tracer, dir, appHost };
}

function serve(pipeline: Pipeline, path: string): Promise<void> {
  const transport: ResponseTransport = {
    head: () => undefined,
    body: () => true,
    writable: () => Promise.resolve(),
    end: () => undefined,
    complete: () => undefined,
  };
  const head: RequestHeadMessage = {
    method: 'GET',
    rawUrl: path,
    path,
    query: '',
    protocol: 'HTTP/1.1',
    siteId: 4,
    remoteAddress: '10.0.0.9',
    remotePort: 4000,
    localAddress: '10.0.0.1',
    localPort: 8080,
    contentLength: 0,
    rawHeaders: ['Host', 'shop.test'],
  };
  return pipeline.run(head, transport, undefined);
}

const opcodes = (r: TraceRecordMessage): string[] => r.events.map((e) => e.opcode);

test('a URL no rule covers is not traced, and the module channels stay unsubscribed while it runs', async () => {
  const { pipeline, records, tracer } = setup('<add path="*.htm"><failureDefinitions statusCodes="404" /></add>');
  sawModuleSubscribers = [];
  await serve(pipeline, '/missing.aspx');
  assert.deepEqual(records, []);
  assert.deepEqual(sawModuleSubscribers, [false], 'only wharf:pipeline:start is listened to');
  tracer.close();
  assert.equal(pipelineStart.hasSubscribers, false);
});

test('a covered request that fails its status definition is sent with the events its areas and verbosity keep', async () => {
  const { pipeline, records, tracer } = setup(`
    <add path="*.htm">
      <traceAreas><add provider="WWW Server" areas="RequestNotifications" verbosity="Verbose" /></traceAreas>
      <failureDefinitions statusCodes="404.0,500-599" />
    </add>`);
  sawModuleSubscribers = [];
  await serve(pipeline, '/index.htm');
  assert.equal(records.length, 0, 'a 200 is not a failure');
  await serve(pipeline, '/missing.htm');
  assert.deepEqual(sawModuleSubscribers, [true, true], 'module events are listened to while a traced request runs');
  tracer.close();
  assert.equal(records.length, 1);
  const r = records[0]!;
  assert.equal(r.siteId, 4);
  assert.equal(r.url, 'http://shop.test:8080/missing.htm');
  assert.equal(r.failureReason, 'STATUS_CODE');
  assert.equal(r.statusCode, '404');
  assert.match(r.activityId, /^\{[0-9A-F-]{36}\}$/);
  assert.deepEqual(opcodes(r), [
    'GENERAL_REQUEST_START',
    'GENERAL_ENDPOINT_INFORMATION',
    'GENERAL_REQUEST_HEADERS',
    'NOTIFY_MODULE_START',
    'NOTIFY_MODULE_END',
    'HANDLER_CHANGED',
    'NOTIFY_MODULE_START',
    'MODULE_SET_RESPONSE_ERROR_STATUS',
    'SET_RESPONSE_ERROR_DESCRIPTION',
    'NOTIFY_MODULE_END',
    'GENERAL_REQUEST_END',
  ]);
  const status = r.events.find((e) => e.opcode === 'MODULE_SET_RESPONSE_ERROR_STATUS')!;
  assert.deepEqual(status.data.slice(0, 5), [
    ['ModuleName', 'TestHandler', ''],
    ['Notification', '128', 'EXECUTE_REQUEST_HANDLER'],
    ['HttpStatus', '404', ''],
    ['HttpReason', 'Not Found', ''],
    ['HttpSubStatus', '0', ''],
  ]);
  assert.deepEqual(status.data[5], ['ErrorCode', String(0x80070002), '0x80070002']);
});

test('verbosity: an event at the failure verbosity fails the request, whatever its status', async () => {
  const { pipeline, records, tracer } = setup(`
    <add path="*">
      <traceAreas><add provider="WWW Server" areas="Module" verbosity="Warning" /></traceAreas>
      <failureDefinitions verbosity="Warning" />
    </add>`);
  await serve(pipeline, '/ok');
  assert.equal(records.length, 0);
  await serve(pipeline, '/warn');
  tracer.close();
  assert.equal(records.length, 1);
  assert.equal(records[0]!.failureReason, 'VERBOSITY');
  assert.equal(records[0]!.statusCode, '200');
  // Warning verbosity: the Verbose module notifications are left out; the module's own event is kept.
  assert.deepEqual(opcodes(records[0]!), ['GENERAL_REQUEST_START', 'MY_WARNING', 'GENERAL_REQUEST_END']);
  assert.deepEqual(records[0]!.events[1]!.data, [['ModuleName', 'TestHandler', ''], ['Why', 'because', '']]);
});

test('timeTaken: the trace is sent when the time elapses, with the events so far; the end sends nothing more', async () => {
  const { pipeline, records, timers, tracer } = setup(`
    <add path="slow"><failureDefinitions timeTaken="00:00:05" /></add>
    <add path="slow-all"><failureDefinitions timeTaken="00:00:05" traceAllAfterTimeout="true" /></add>`);
  gated = gate();
  const running = serve(pipeline, '/slow');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal([...timers.pending.values()][0]?.ms, 5000);
  assert.equal(records.length, 0);
  timers.fireAll();
  assert.equal(records.length, 1, 'written while the request runs');
  assert.equal(records[0]!.failureReason, 'TIME_TAKEN');
  assert.ok(!opcodes(records[0]!).includes('GENERAL_REQUEST_END'));
  gated.open();
  await running;
  assert.equal(records.length, 1);

  // traceAllAfterTimeout: nothing when the time elapses, the whole request at its end.
  gated = gate();
  const all = serve(pipeline, '/slow-all');
  await new Promise((resolve) => setImmediate(resolve));
  timers.fireAll();
  assert.equal(records.length, 1);
  gated.open();
  await all;
  tracer.close();
  assert.equal(records.length, 2);
  assert.equal(records[1]!.failureReason, 'TIME_TAKEN');
  assert.equal(opcodes(records[1]!).at(-1), 'GENERAL_REQUEST_END');
  assert.equal(timers.pending.size, 0, 'no timer left behind');
});

test('a site without traceFailedRequestsLogging enabled is not listened to; rule problems are logged once', async () => {
  const off = setup('<add path="*"><failureDefinitions statusCodes="404" /></add>', false);
  assert.equal(pipelineStart.hasSubscribers, false);
  await serve(off.pipeline, '/missing.htm');
  assert.deepEqual(off.records, []);
  const bad = setup('<add path="*"><failureDefinitions statusCodes="404,4o4" /></add>');
  await serve(bad.pipeline, '/missing.htm');
  await serve(bad.pipeline, '/missing.htm');
  bad.tracer.close();
  assert.equal(bad.records.length, 2, 'the valid part of the rule applies');
  assert.equal(bad.logs.length, 1);
  assert.match(bad.logs[0]!, /^MOD_TRACE_RULE: .*"4o4"/);
});

test('fitEvents keeps the events that fit the size and the request end', () => {
  const ev = (opcode: string, size: number) => ({ opcode, area: 'General', level: 0, time: 0, data: [['X', 'y'.repeat(size), ''] as const] });
  const events = [ev('GENERAL_REQUEST_START', 10), ...Array.from({ length: 50 }, () => ev('BIG', 1000)), ev('GENERAL_REQUEST_END', 10)];
  const kept = fitEvents(events, 16 * 1024);
  assert.ok(kept.length < events.length && kept.length > 2);
  assert.equal(kept[0]!.opcode, 'GENERAL_REQUEST_START');
  assert.equal(kept.at(-1)!.opcode, 'GENERAL_REQUEST_END');
  assert.equal(fitEvents(events, 10 * 1024 * 1024).length, events.length);
});

/** A web.config for the site's root with one traceFailedRequests rule. */
const webConfigRule = (path: string, codes: string): string =>
  `<configuration><system.webServer><tracing><traceFailedRequests><add path="${path}"><failureDefinitions statusCodes="${codes}" /></add></traceFailedRequests></tracing></system.webServer></configuration>`;

const watched = (): boolean[] => [moduleStart, moduleEnd, handlerChanged, statusSet, moduleTrace, pipelineEnd].map((c) => c.hasSubscribers);

test('the rule chosen for a URL follows a web.config change (the per-configuration cache is not stale)', async () => {
  let clock = 0;
  const { pipeline, records, tracer, dir } = setup('', true, { webConfig: webConfigRule('*.htm', '404'), configNow: () => clock });
  await serve(pipeline, '/missing.htm');
  assert.equal(records.length, 1, 'the web.config rule covers the URL');
  // The rule now covers other URLs only: once the configuration system sees the change (it
  // revalidates a URL's files after a second), the URL is no longer traced.
  writeFileSync(join(dir, 'www', 'web.config'), webConfigRule('*.aspx', '200'));
  clock += 5000;
  await serve(pipeline, '/missing.htm');
  assert.equal(records.length, 1, 'not covered any more');
  await serve(pipeline, '/ok.aspx');
  assert.equal(records.length, 2, 'the new rule applies');
  assert.equal(records[1]!.statusCode, '200');
  // And back, with another status: the new definition applies.
  writeFileSync(join(dir, 'www', 'web.config'), webConfigRule('*.htm', '404,500'));
  clock += 5000;
  await serve(pipeline, '/missing.htm');
  tracer.close();
  assert.equal(records.length, 3);
  assert.equal(records[2]!.url, 'http://shop.test:8080/missing.htm');
});

test('a new configuration generation applies to the next request: logging turned off stops tracing and every channel is left', async () => {
  const on = setup('<add path="*"><failureDefinitions statusCodes="404" /></add>');
  await serve(on.pipeline, '/missing.htm');
  assert.equal(on.records.length, 1);
  // The worker's next generation: same tracer, a site whose traceFailedRequestsLogging is off.
  const off = setup('<add path="*"><failureDefinitions statusCodes="404" /></add>', false);
  off.tracer.close();
  on.tracer.configure(off.appHost as AppHostConfig);
  await serve(off.pipeline, '/missing.htm');
  assert.equal(on.records.length, 1);
  assert.equal(pipelineStart.hasSubscribers, false);
  assert.deepEqual(watched(), [false, false, false, false, false, false]);
});

test('the event channels stay subscribed between traced requests and are left when a request no rule covers starts', async () => {
  const { pipeline, records, tracer } = setup('<add path="*.htm"><failureDefinitions statusCodes="404" /></add>');
  assert.deepEqual(watched(), [false, false, false, false, false, false], 'nothing before a traced request');
  await serve(pipeline, '/index.htm');
  await serve(pipeline, '/index.htm');
  assert.deepEqual(watched(), [true, true, true, true, true, true], 'kept for the next traced request');
  sawModuleSubscribers = [];
  await serve(pipeline, '/other.aspx');
  assert.deepEqual(sawModuleSubscribers, [false], 'a request no rule covers publishes nothing');
  assert.deepEqual(watched(), [false, false, false, false, false, false]);
  await serve(pipeline, '/missing.htm');
  tracer.close();
  assert.equal(records.length, 1, 'tracing resumes with the next covered request');
  assert.deepEqual(watched(), [false, false, false, false, false, false], 'close leaves every channel');
});

test('each trace has only its own request\'s events and its own activity id (event arrays are reused)', async () => {
  const { pipeline, records, tracer } = setup(`
    <add path="*">
      <traceAreas><add provider="WWW Server" areas="*" verbosity="Verbose" /></traceAreas>
      <failureDefinitions statusCodes="404" />
    </add>`);
  await serve(pipeline, '/missing.htm');
  await serve(pipeline, '/index.htm');
  await serve(pipeline, '/missing.htm');
  tracer.close();
  assert.equal(records.length, 2);
  assert.deepEqual(opcodes(records[1]!), opcodes(records[0]!));
  assert.equal(opcodes(records[0]!).filter((o) => o === 'NOTIFY_MODULE_START').length, 2, 'BeginModule and TestHandler, once each');
  assert.notEqual(records[0]!.activityId, records[1]!.activityId);
});

test('many traced requests in flight at once (more than are scanned) each get their own trace', async () => {
  const { pipeline, records, tracer } = setup(`
    <add path="*">
      <traceAreas><add provider="WWW Server" areas="RequestNotifications" verbosity="Verbose" /></traceAreas>
      <failureDefinitions statusCodes="200" />
    </add>`);
  gated = gate();
  const running: Promise<void>[] = [];
  for (let i = 0; i < 100; i++) running.push(serve(pipeline, `/r${i}/slow`));
  await new Promise((resolve) => setImmediate(resolve));
  gated.open();
  await Promise.all(running);
  tracer.close();
  assert.equal(records.length, 100);
  const urls = new Set(records.map((r) => r.url));
  for (let i = 0; i < 100; i++) assert.ok(urls.has(`http://shop.test:8080/r${i}/slow`), `request ${i} traced`);
  for (const r of records) {
    assert.deepEqual(
      opcodes(r).filter((o) => o.startsWith('NOTIFY_MODULE')),
      ['NOTIFY_MODULE_START', 'NOTIFY_MODULE_END', 'NOTIFY_MODULE_START', 'NOTIFY_MODULE_END'],
      `${r.url}: its own module events only`,
    );
  }
  assert.deepEqual(watched(), [false, false, false, false, false, false]);
});

test('a request with more events than the first buffer holds keeps them all, in order, and the next request starts clean', async () => {
  const { pipeline, records, tracer } = setup(`
    <add path="*">
      <traceAreas><add provider="WWW Server" areas="Module,RequestNotifications" verbosity="Verbose" /></traceAreas>
      <failureDefinitions statusCodes="200" />
    </add>`, true, { maxKB: 1024 });
  await serve(pipeline, '/chatty');
  await serve(pipeline, '/quiet');
  tracer.close();
  assert.equal(records.length, 2);
  const steps = records[0]!.events.filter((e) => e.opcode === 'MY_STEP').map((e) => e.data[1]);
  assert.deepEqual(steps, Array.from({ length: 150 }, (_, i) => ['Step', String(i), '']));
  assert.ok(!opcodes(records[1]!).includes('MY_STEP'));
  assert.deepEqual(
    opcodes(records[1]!).filter((o) => o.startsWith('NOTIFY_MODULE')),
    ['NOTIFY_MODULE_START', 'NOTIFY_MODULE_END', 'NOTIFY_MODULE_START', 'NOTIFY_MODULE_END'],
  );
});
