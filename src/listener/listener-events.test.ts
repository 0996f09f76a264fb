/**
 * The listener's diagnostics events in a real scenario: the Listener in this process, listening
 * on a real port, with a worker speaking the real channel protocol over a real socket pair (the
 * worker's answers are scripted, its channel is not). Subscribers see what metrics, tracing and
 * the logs will see.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { createServer, connect, type Socket } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAppHost } from '../config/index.js';
import type { AppHostConfig } from '../config/types.js';
import { WorkerChannel } from '../ipc/channel.js';
import type { ConfigMessage, RequestHeadMessage, WorkerInbound } from '../ipc/messages.js';
import { CHANNELS } from '../diagnostics.js';
import { eventually, freePort, get, rawRequest, tempDir } from '../../test/helpers/wharf.js';
import { Listener } from './listener.js';
import { poolKey } from '../config/pool-key.js';
import { poolSettings } from '../was/pool-settings.js';

/** A connected pair of unix sockets, like the socketpair a worker inherits. */
async function socketPair(dir: string, name: string): Promise<[Socket, Socket]> {
  const path = join(dir, name);
  return new Promise((resolve) => {
    let b: Socket;
    const server = createServer((a) => {
      server.close();
      resolve([a, b]);
    });
    server.listen(path, () => {
      b = connect(path);
    });
  });
}

/** A worker whose pipeline is a script: /hang never answers, /cached allows the listener's cache. */
class ScriptedWorker implements WorkerInbound {
  readonly heads: RequestHeadMessage[] = [];
  readonly channel: WorkerChannel;
  readonly #ready: () => void;
  /** `ready`: what WAS does when the worker says Ready on its control channel. */
  constructor(socket: Socket, ready: () => void) {
    this.#ready = ready;
    this.channel = new WorkerChannel(socket, this);
  }
  init(_msg: ConfigMessage): void {
    this.#ready();
  }
  config(): void {}
  requestHead(stream: number, head: RequestHeadMessage): void {
    this.heads.push(head);
    if (head.path === '/hang') return;
    if (head.path.startsWith('/bad')) {
      // A status no HTTP response has: the listener must refuse the frame, not forward it.
      this.channel.sendResponseHead(stream, { status: 1000, reason: 'Nope', headers: [] });
      return;
    }
    if (head.path === '/cached') {
      this.channel.sendResponseCacheable(stream, { policy: 'timePeriod', durationMs: 60_000, dependencies: [], frequentHitThreshold: 1, frequentHitTimePeriodMs: 60_000 });
    }
    const body = Buffer.from('hello ' + head.path);
    this.channel.sendResponseComplete(
      stream,
      { status: 200, reason: 'OK', headers: ['Content-Type', 'text/plain', 'Content-Length', String(body.length)] },
      [body],
      body.length,
      { subStatus: 0, win32Status: 0, username: '', close: false, abort: false, log: true },
    );
  }
  requestBody(): void {}
  requestEnd(): void {}
  requestAbort(): void {}
  responsePause(): void {}
  responseResume(): void {}
  ping(): void {}
  shutdown(): void {}
  closed(): void {}
}

interface Seen {
  readonly channel: string;
  readonly message: Record<string, unknown>;
}

describe('listener events', () => {
  const dir = tempDir('wharf-events-');
  let port = 0;
  let listener: Listener;
  let config: AppHostConfig;
  let message: ConfigMessage;
  const seen: Seen[] = [];
  /** The listener's error lines (an invalid exchange transition would be one). */
  const errors: string[] = [];
  const workers: ScriptedWorker[] = [];
  const sockets: Socket[] = [];
  const subscribers: Array<[string, (m: unknown, name: string | symbol) => void]> = [];
  /** What requestDispatch's subscriber hands the worker (a tracer's span context). */
  const GIVEN_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  async function attach(pool: string, pid: number): Promise<ScriptedWorker> {
    const [a, b] = await socketPair(dir, `w${pid}`);
    sockets.push(a, b);
    const w = new ScriptedWorker(b, () => listener.workerReady(poolKey(pool), pid));
    workers.push(w);
    listener.attachWorker(poolKey(pool), pool, pid, a);
    return w;
  }

  before(async () => {
    port = await freePort();
    const file = join(dir, 'applicationHost.config');
    const text = `<configuration>
<system.applicationHost>
  <applicationPools>
    <add name="Fast" />
    <add name="Slow" />
    <add name="Off" />
    <add name="Bad" />
    <add name="Never" />
  </applicationPools>
  <sites>
    <site name="Events" id="3">
      <application path="/" applicationPool="Fast"><virtualDirectory path="/" physicalPath="${dir}" /></application>
      <application path="/slow" applicationPool="Slow"><virtualDirectory path="/" physicalPath="${dir}" /></application>
      <application path="/off" applicationPool="Off"><virtualDirectory path="/" physicalPath="${dir}" /></application>
      <application path="/bad" applicationPool="Bad"><virtualDirectory path="/" physicalPath="${dir}" /></application>
      <application path="/never" applicationPool="Never"><virtualDirectory path="/" physicalPath="${dir}" /></application>
      <bindings><binding protocol="http" bindingInformation="127.0.0.1:${port}:localhost" /></bindings>
      <logFile directory="${join(dir, 'logs')}" />
    </site>
  </sites>
</system.applicationHost>
<system.webServer />
</configuration>`;
    config = loadAppHost(file, text, { systemDrive: dir, variables: {} });
    message = { generation: 1, poolName: '', configFile: file, configText: text, systemDrive: dir, variables: {} };
    for (const ch of CHANNELS) {
      const name = String(ch.name);
      const fn = (m: unknown): void => {
        seen.push({ channel: name, message: m as Record<string, unknown> });
        if (name === 'wharf:request:dispatch') (m as { traceparent: string }).traceparent = GIVEN_TRACEPARENT;
      };
      diagnostics_channel.subscribe(name, fn);
      subscribers.push([name, fn]);
    }
    listener = new Listener({
      logger: { info() {}, warn() {}, error: (m) => errors.push(m) },
      httpErrDirectory: join(dir, 'httperr'),
      // The Slow pool's worker starts when a request waits for it, as WAS would start it.
      supply: {
        demand: (pool) => {
          if (pool === poolKey('Slow')) void attach('Slow', 202);
          if (pool === poolKey('Bad')) void attach('Bad', 300 + workers.length);
        },
        requestLimitReached() {},
        requestChannelClosed() {},
      },
    });
    await listener.apply(config, message, poolSettings(config));
    await attach('Fast', 101);
    listener.pool(poolKey('Off'))!.stop('Disabled');
  });

  after(async () => {
    for (const [name, fn] of subscribers) diagnostics_channel.unsubscribe(name, fn);
    await listener.close(1000);
    for (const s of sockets) s.destroy();
  });

  /** Events of one request, by its key, in publishing order. */
  function eventsOf(key: unknown): Seen[] {
    return seen.filter((e) => e.message['key'] === key);
  }
  function one(channel: string, where: (m: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
    const found = seen.filter((e) => e.channel === channel && where(e.message));
    assert.equal(found.length, 1, `one ${channel} event, got ${found.length}`);
    return found[0]!.message;
  }

  it('a worker-answered request: start, dispatch (whose traceparent the worker gets), end; the connection counts for its site', async () => {
    await eventually(() => listener.pool(poolKey('Fast'))!.workers.length === 1);
    const clientTrace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await get(port, '/hello?x=1', { traceparent: clientTrace });
    assert.equal(res.status, 200);
    const start = one('wharf:request:start', (m) => m['rawUrl'] === '/hello?x=1');
    assert.deepEqual(
      { siteId: start['siteId'], siteName: start['siteName'], method: start['method'], host: start['host'], clientIp: start['clientIp'], localPort: start['localPort'], traceparent: start['traceparent'] },
      { siteId: 3, siteName: 'Events', method: 'GET', host: 'localhost', clientIp: '127.0.0.1', localPort: port, traceparent: clientTrace },
    );
    const key = start['key'];
    const end = await eventually(() => eventsOf(key).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual(
      eventsOf(key).map((e) => e.channel),
      ['wharf:request:start', 'wharf:cache:miss', 'wharf:request:dispatch', 'wharf:request:end'],
    );
    const dispatch = one('wharf:request:dispatch', (m) => m['key'] === key);
    assert.equal(dispatch['poolName'], 'Fast');
    assert.equal(dispatch['pid'], 101);
    assert.equal(dispatch['replay'], false);
    // The worker received the subscriber's traceparent beside the client's own header.
    const head = workers[0]!.heads.find((h) => h.rawUrl === '/hello?x=1')!;
    assert.equal(head.traceparent, GIVEN_TRACEPARENT);
    assert.ok(head.rawHeaders.includes(clientTrace));
    const m = end.message;
    assert.equal(m['siteId'], 3);
    assert.equal(m['poolName'], 'Fast');
    assert.equal(m['status'], 200);
    assert.equal(m['answeredBy'], 'worker');
    assert.equal(m['aborted'], false);
    assert.ok((m['bytesSent'] as number) > 'hello /hello'.length);
    assert.ok((m['durationMs'] as number) >= 0);
    const open = await eventually(() => seen.find((e) => e.channel === 'wharf:connection:open' && e.message['localPort'] === port));
    assert.equal(open.message['siteId'], 3);
    // Connection: close: the connection closes and counts off for the same site.
    const close = await eventually(() => seen.find((e) => e.channel === 'wharf:connection:close' && e.message['key'] === open.message['key']));
    assert.equal(close.message['siteId'], 3);
  });

  it('the response cache: miss and store, then a hit answered by the cache; a new configuration flushes it', async () => {
    assert.equal((await get(port, '/cached')).status, 200);
    const store = await eventually(() => seen.find((e) => e.channel === 'wharf:cache:store'));
    assert.equal(store.message['cacheKey'], '3 localhost /cached');
    assert.equal(store.message['entries'], 1);
    const second = await get(port, '/cached');
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), 'hello /cached');
    const hit = one('wharf:cache:hit');
    assert.equal(hit['cacheKey'], '3 localhost /cached');
    const end = await eventually(() => eventsOf(hit['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.equal(end.message['answeredBy'], 'cache');
    assert.equal(end.message['status'], 200);
    // The cache answered: no dispatch for that request.
    assert.ok(!eventsOf(hit['key']).some((e) => e.channel === 'wharf:request:dispatch'));
    await listener.apply(config, { ...message, generation: 2 }, poolSettings(config));
    const removed = one('wharf:cache:remove');
    assert.deepEqual({ reason: removed['reason'], entries: removed['entries'] }, { reason: 'flushed', entries: 0 });
  });

  it('a request that waits for its pool\'s first worker: queue enter, then leave as dispatched', async () => {
    const res = await get(port, '/slow/page');
    assert.equal(res.status, 200);
    const enter = one('wharf:queue:enter', (m) => m['poolName'] === 'Slow');
    assert.equal(enter['length'], 1);
    const leave = one('wharf:queue:leave', (m) => m['poolName'] === 'Slow');
    assert.equal(leave['key'], enter['key']);
    assert.deepEqual({ outcome: leave['outcome'], length: leave['length'] }, { outcome: 'dispatched', length: 0 });
    assert.ok((leave['waitedMs'] as number) >= 0);
    assert.deepEqual(
      eventsOf(enter['key']).map((e) => e.channel),
      ['wharf:request:start', 'wharf:cache:miss', 'wharf:queue:enter', 'wharf:queue:leave', 'wharf:request:dispatch', 'wharf:request:end'],
    );
  });

  it('a client that leaves while its request waits: queue leave as cancelled, requestEnd aborted, answeredBy listener', async () => {
    // The Never pool gets no worker: its requests wait until they leave.
    const client = connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /never/a HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const enter = await eventually(() => seen.find((e) => e.channel === 'wharf:queue:enter' && e.message['poolName'] === 'Never'));
    assert.equal(enter.message['length'], 1);
    client.destroy();
    const leave = await eventually(() => seen.find((e) => e.channel === 'wharf:queue:leave' && e.message['key'] === enter.message['key']));
    assert.deepEqual({ outcome: leave.message['outcome'], length: leave.message['length'] }, { outcome: 'cancelled', length: 0 });
    const end = await eventually(() => eventsOf(enter.message['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual(
      { aborted: end.message['aborted'], answeredBy: end.message['answeredBy'], status: end.message['status'], poolName: end.message['poolName'] },
      { aborted: true, answeredBy: 'listener', status: 0, poolName: 'Never' },
    );
  });

  it('a pool stopped while a request waits: queue leave as rejected, and the 503', async () => {
    const before = seen.length;
    const answer = rawRequest(port, 'GET /never/b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    const enter = await eventually(() => seen.slice(before).find((e) => e.channel === 'wharf:queue:enter' && e.message['poolName'] === 'Never'));
    listener.pool(poolKey('Never'))!.stop('Disabled');
    assert.match(await answer, /^HTTP\/1\.1 503 /);
    const leave = one('wharf:queue:leave', (m) => m['key'] === enter.message['key']);
    assert.deepEqual({ outcome: leave['outcome'], length: leave['length'] }, { outcome: 'rejected', length: 0 });
    const end = await eventually(() => eventsOf(enter.message['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual({ status: end.message['status'], answeredBy: end.message['answeredBy'], aborted: end.message['aborted'] }, { status: 503, answeredBy: 'listener', aborted: false });
  });

  it('a stopped pool: queue reject and a 503 answered by the listener, with its httperr record', async () => {
    const res = await get(port, '/off/x');
    assert.equal(res.status, 503);
    const reject = one('wharf:queue:reject');
    assert.deepEqual({ poolName: reject['poolName'], reason: reject['reason'] }, { poolName: 'Off', reason: 'Disabled' });
    const end = await eventually(() => eventsOf(reject['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual(
      { status: end.message['status'], answeredBy: end.message['answeredBy'], aborted: end.message['aborted'] },
      { status: 503, answeredBy: 'listener', aborted: false },
    );
    const err = eventsOf(reject['key']).find((e) => e.channel === 'wharf:listener:httperr')!;
    assert.deepEqual({ reason: err.message['reason'], status: err.message['status'], queueName: err.message['queueName'] }, { reason: 'Disabled', status: 503, queueName: 'Off' });
  });

  it('a request for an unknown host: start and end with site 0, answered by the listener', async () => {
    const res = await get(port, '/', { Host: 'nobody.example' });
    assert.equal(res.status, 400);
    const start = one('wharf:request:start', (m) => m['host'] === 'nobody.example');
    assert.equal(start['siteId'], 0);
    const end = await eventually(() => eventsOf(start['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual(
      { siteId: end.message['siteId'], status: end.message['status'], answeredBy: end.message['answeredBy'] },
      { siteId: 0, status: 400, answeredBy: 'listener' },
    );
  });

  it('a client that goes away while the worker is busy: requestEnd says aborted', async () => {
    await rawRequest(port, 'GET /hang HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: () => true, timeoutMs: 200 }).catch(() => '');
    const start = await eventually(() => seen.find((e) => e.channel === 'wharf:request:start' && e.message['rawUrl'] === '/hang'));
    const end = await eventually(() => eventsOf(start.message['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual(
      { aborted: end.message['aborted'], answeredBy: end.message['answeredBy'], status: end.message['status'] },
      { aborted: true, answeredBy: 'worker', status: 0 },
    );
    const dropped = eventsOf(start.message['key']).find((e) => e.channel === 'wharf:listener:httperr')!;
    assert.equal(dropped.message['reason'], 'Connection_Dropped');
  });

  it('a worker that sends a status out of range: its channel closes (IPC_INVALID_MESSAGE), the request is replayed once, then answered 502', async () => {
    const res = await get(port, '/bad/x');
    assert.equal(res.status, 502);
    const invalid = errors.filter((e) => e.includes('IPC_INVALID_MESSAGE'));
    assert.equal(invalid.length, 2, errors.join('\n'));
    assert.match(invalid[0]!, /^\[Bad pid \d+\] IPC_INVALID_MESSAGE: worker sent status 1000/);
    const start = one('wharf:request:start', (m) => m['rawUrl'] === '/bad/x');
    const dispatches = eventsOf(start['key']).filter((e) => e.channel === 'wharf:request:dispatch').map((e) => e.message['replay']);
    assert.deepEqual(dispatches, [false, true]);
    const end = await eventually(() => eventsOf(start['key']).find((e) => e.channel === 'wharf:request:end'));
    assert.deepEqual({ status: end.message['status'], answeredBy: end.message['answeredBy'] }, { status: 502, answeredBy: 'listener' });
  });

  it('every request ends exactly once', async () => {
    assert.deepEqual(errors.filter((e) => !e.includes('IPC_INVALID_MESSAGE')), []);
    await listener.flushLogs();
    const starts = seen.filter((e) => e.channel === 'wharf:request:start');
    for (const s of starts) assert.equal(eventsOf(s.message['key']).filter((e) => e.channel === 'wharf:request:end').length, 1);
    // And the W3C log, a requestEnd subscriber, has the worker's and the cache's answers.
    const folder = join(dir, 'logs', 'W3SVC3');
    const text = await eventually(() => {
      try {
        const files = readdirSync(folder);
        return files.map((f) => readFileSync(join(folder, f), 'utf8')).join('');
      } catch {
        return undefined;
      }
    });
    assert.match(text, /GET \/hello x=1 /);
    assert.equal(text.match(/GET \/cached /g)?.length, 2);
  });
});

