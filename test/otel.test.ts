/**
 * OpenTelemetry traces as an operator sees them: Wharf started with the standard OTEL_* variables
 * sends its spans to an OTLP collector (here a small node:http receiver), a client's traceparent is
 * continued, and a hosted Node.js app receives a traceparent whose parent is one of Wharf's spans.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { eventually, freePort, startWharf, type WharfProcess } from './helpers/wharf.js';
import { send } from './helpers/node-apps.js';

interface Export {
  readonly path: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** A collector that accepts OTLP/HTTP exports (JSON or protobuf) and keeps them. */
class OtlpReceiver {
  readonly exports: Export[] = [];
  #server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req: IncomingMessage, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        this.exports.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: Buffer.concat(parts) });
        // An empty ExportTraceServiceResponse: everything accepted.
        const json = (req.headers['content-type'] ?? '').includes('json');
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' });
        res.end(json ? '{}' : '');
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server!.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  /** Every span of every OTLP/JSON export so far, flattened, with its resource's service.name. */
  spans(): Span[] {
    const out: Span[] = [];
    for (const e of this.exports) {
      if (!e.contentType.includes('json')) continue;
      const req = JSON.parse(e.body.toString('utf8')) as OtlpJsonRequest;
      for (const rs of req.resourceSpans ?? []) {
        const resource = attributes(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            out.push({
              name: s.name,
              kind: s.kind,
              traceId: hex(s.traceId),
              spanId: hex(s.spanId),
              parentSpanId: s.parentSpanId === undefined || s.parentSpanId === '' ? '' : hex(s.parentSpanId),
              attributes: attributes(s.attributes),
              status: s.status?.code ?? 0,
              service: String(resource['service.name']),
              role: String(resource['wharf.process.role']),
            });
          }
        }
      }
    }
    return out;
  }
}

interface OtlpJsonRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: { name: string; kind: number; traceId: string; spanId: string; parentSpanId?: string; attributes?: OtlpAttribute[]; status?: { code?: number } }[] }[];
  }[];
}
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean; doubleValue?: number };
}
interface Span {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, string | number | boolean>;
  status: number;
  service: string;
  role: string;
}

/** OTLP/JSON ids are hex (the specification's JSON mapping); base64 is accepted as protobuf's JSON mapping would write it. */
function hex(id: string): string {
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of list ?? []) {
    const v = a.value;
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? '';
  }
  return out;
}

function traceparent(): { header: string; traceId: string; spanId: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { header: `00-${traceId}-${spanId}-01`, traceId, spanId };
}

const SERVER = 2; // OTLP SpanKind SPAN_KIND_SERVER
const STATUS_ERROR = 2;

describe('OpenTelemetry traces over OTLP http/json', () => {
  const receiver = new OtlpReceiver();
  let wharf: WharfProcess;
  const staticTrace = traceparent();
  const appTrace = traceparent();
  let appSaw: { traceparent: string | null; tracestate: string | null };
  let spans: Span[];

  before(async () => {
    await receiver.start();
    wharf = await startWharf({
      fixture: 'otel',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'wharf-otel-test',
        // Nothing is exported before `wharf stop`: the spans that arrive are the ones the stop drained.
        OTEL_BSP_SCHEDULE_DELAY: '600000',
      },
    });
    const s = await send(wharf.port, 'static.test', { path: '/hello.txt?x=1', headers: { traceparent: staticTrace.header, tracestate: 'client=1' } });
    assert.equal(s.status, 200);
    assert.equal(s.text(), 'hello from a static file\n');
    const a = await send(wharf.port, 'app.test', { path: '/orders/7', headers: { traceparent: appTrace.header, tracestate: 'client=2' } });
    assert.equal(a.status, 200);
    appSaw = a.json() as typeof appSaw;
    const missing = await send(wharf.port, 'static.test', { path: '/missing.txt' });
    assert.equal(missing.status, 404);
    assert.equal(receiver.exports.length, 0, 'batched: nothing sent while the schedule delay runs');
    // SIGTERM, as `wharf stop` and systemd do: the main process and each worker drain their batches.
    assert.equal(await wharf.stop(), 0);
    spans = receiver.spans();
  });
  after(async () => {
    await wharf?.stop();
    await receiver.stop();
  });

  it('exports over OTLP/HTTP JSON to <endpoint>/v1/traces, from the main process and the workers, under OTEL_SERVICE_NAME', () => {
    assert.ok(receiver.exports.length > 0);
    for (const e of receiver.exports) {
      assert.equal(e.path, '/v1/traces');
      assert.match(e.contentType, /^application\/json/);
    }
    assert.deepEqual(new Set(spans.map((s) => s.service)), new Set(['wharf-otel-test']));
    assert.deepEqual(new Set(spans.map((s) => s.role)), new Set(['main', 'worker']));
  });

  it('a static file: the SERVER span continues the client\'s trace, with the HTTP semantic-convention attributes', () => {
    const server = spans.find((s) => s.traceId === staticTrace.traceId && s.kind === SERVER);
    assert.ok(server, `a server span in trace ${staticTrace.traceId}; got ${spans.map((s) => s.name + ' ' + s.traceId).join(', ')}`);
    assert.equal(server.parentSpanId, staticTrace.spanId);
    assert.equal(server.name, 'GET');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['url.path'], '/hello.txt');
    assert.equal(server.attributes['url.query'], 'x=1');
    assert.equal(server.attributes['server.address'], 'static.test');
    assert.equal(server.attributes['server.port'], wharf.port);
    assert.equal(server.attributes['client.address'], '127.0.0.1');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['wharf.response.sub_status'], 0);
    assert.equal(server.attributes['wharf.site.name'], 'Static');
    assert.equal(server.attributes['wharf.app_pool'], 'StaticPool');
    assert.equal(typeof server.attributes['wharf.worker.pid'], 'number');
  });

  it('the worker span is the child of the request span, and each module that ran is a child of the worker span', () => {
    const trace = spans.filter((s) => s.traceId === staticTrace.traceId);
    const server = trace.find((s) => s.kind === SERVER)!;
    const worker = trace.find((s) => s.name === 'worker');
    assert.ok(worker, `a worker span; got ${trace.map((s) => s.name).join(', ')}`);
    assert.equal(worker.parentSpanId, server.spanId);
    assert.equal(worker.role, 'worker');
    assert.equal(worker.attributes['wharf.worker.pid'], server.attributes['wharf.worker.pid']);
    const modules = trace.filter((s) => typeof s.attributes['wharf.module'] === 'string');
    assert.ok(modules.some((m) => m.name === 'StaticFileModule ExecuteRequestHandler'), `module spans: ${modules.map((m) => m.name).join(', ')}`);
    for (const m of modules) assert.equal(m.parentSpanId, worker.spanId, m.name);
  });

  it('the hosted app receives a traceparent in the client\'s trace whose parent is Wharf\'s worker span; tracestate passes through', () => {
    assert.ok(appSaw.traceparent, 'the app got a traceparent');
    const [, traceId, parentId, flags] = appSaw.traceparent.split('-');
    assert.equal(traceId, appTrace.traceId);
    assert.equal(flags, '01');
    assert.notEqual(parentId, appTrace.spanId, 'not the client\'s own span: Wharf\'s');
    const parent = spans.find((s) => s.spanId === parentId);
    assert.ok(parent, 'the parent the app was given is one of the exported spans');
    assert.equal(parent.name, 'worker');
    assert.equal(parent.traceId, appTrace.traceId);
    const server = spans.find((s) => s.spanId === parent.parentSpanId)!;
    assert.equal(server.kind, SERVER);
    assert.equal(server.parentSpanId, appTrace.spanId);
    assert.equal(server.attributes['wharf.app_pool'], 'AppPool');
    assert.ok(spans.some((s) => s.parentSpanId === parent.spanId && s.attributes['wharf.module'] === 'iisnode'), 'the iisnode module span');
    assert.equal(appSaw.tracestate, 'client=2');
  });

  it('a request without a traceparent starts its own trace; a 404 is not an error, and has the status and sub-status', () => {
    const server = spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === '/missing.txt');
    assert.ok(server);
    assert.equal(server.parentSpanId, '');
    assert.equal(server.attributes['http.response.status_code'], 404);
    assert.notEqual(server.status, STATUS_ERROR);
  });
});

describe('OpenTelemetry: http/protobuf, sampling, an unreachable collector', () => {
  it('http/protobuf (the default protocol) arrives at the collector with the client\'s trace id', async () => {
    const receiver = new OtlpReceiver();
    await receiver.start();
    const wharf = await startWharf({ fixture: 'otel', env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_BSP_SCHEDULE_DELAY: '100' } });
    try {
      const t = traceparent();
      assert.equal((await send(wharf.port, 'static.test', { path: '/hello.txt', headers: { traceparent: t.header } })).status, 200);
      // Exported within the schedule delay, while Wharf runs.
      const id = Buffer.from(t.traceId, 'hex');
      const e = await eventually(() => receiver.exports.filter((x) => x.body.includes(id)), 15000);
      for (const x of e) {
        assert.equal(x.path, '/v1/traces');
        assert.equal(x.contentType, 'application/x-protobuf');
      }
      // Wharf encodes OTLP/protobuf itself (src/tracing/otlp-protobuf.ts, checked byte for byte
      // against the official serializer in its unit test): the worker's module spans are in it too.
      const moduleSpan = Buffer.from('StaticFileModule ExecuteRequestHandler');
      const fromWorker = await eventually(() => receiver.exports.find((x) => x.body.includes(id) && x.body.includes(moduleSpan)), 15000);
      assert.ok(fromWorker.body.includes(Buffer.from('wharf.process.role')), 'the resource');
    } finally {
      await wharf.stop();
      await receiver.stop();
    }
  });

  it('OTEL_TRACES_SAMPLER=always_off exports nothing; the app still gets a traceparent, flagged not sampled', async () => {
    const receiver = new OtlpReceiver();
    await receiver.start();
    const wharf = await startWharf({
      fixture: 'otel',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_SAMPLER: 'always_off', OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    const t = traceparent();
    try {
      assert.equal((await send(wharf.port, 'static.test', { path: '/hello.txt', headers: { traceparent: t.header } })).status, 200);
      const a = await send(wharf.port, 'app.test', { path: '/', headers: { traceparent: t.header } });
      const saw = a.json() as { traceparent: string };
      assert.match(saw.traceparent, new RegExp(`^00-${t.traceId}-[0-9a-f]{16}-00$`));
    } finally {
      assert.equal(await wharf.stop(), 0);
      await receiver.stop();
    }
    assert.deepEqual(receiver.spans(), []);
    assert.equal(receiver.exports.length, 0);
  });

  it('a collector that cannot be reached never fails a request: one coded warning, and `wharf stop` is not held', async () => {
    const dead = await freePort();
    const wharf = await startWharf({ fixture: 'otel', env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${dead}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '50' } });
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await send(wharf.port, 'static.test', { path: '/hello.txt' })).status, 200);
        assert.equal((await send(wharf.port, 'app.test', { path: `/n/${i}` })).status, 200);
      }
      await wharf.waitForOutput(/OTEL_EXPORT: spans could not be exported/, 20000);
      // More batches failed after the first report; each process reports once (the main process
      // and the two pools' workers: at most three lines).
      for (let i = 0; i < 3; i++) assert.equal((await send(wharf.port, 'static.test', { path: '/hello.txt' })).status, 200);
      await new Promise((r) => setTimeout(r, 300));
      const lines = wharf.output().split('\n').filter((l) => l.includes('OTEL_EXPORT'));
      assert.ok(lines.length >= 1 && lines.length <= 3, lines.join('\n'));
    } finally {
      const t0 = Date.now();
      assert.equal(await wharf.stop(), 0);
      assert.ok(Date.now() - t0 < 12_000, `stopped in ${Date.now() - t0} ms`);
    }
  });
});
