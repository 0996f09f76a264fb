/**
 * The activation service driven through every worker state and timer with a fake clock, a fake
 * spawner and a recording listener side: no process starts, no test sleeps. What is asserted is
 * what an administrator would see: WAS's log lines, which workers serve, which are drained or
 * killed, the pool's state, and the wharf:worker:* / wharf:pool:* events.
 */
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { ActivationService } from './activation.js';
import { poolKey } from '../config/pool-key.js';
import type { PoolSettings } from './pool-settings.js';
import { ResourceLimits } from './resource-limits.js';
import { FakeClock } from '../../test/helpers/fake-clock.js';
import { FakeSpawner, RecordingRouting, type FakeProcess } from '../../test/helpers/fake-workers.js';

type Overrides = { [K in keyof PoolSettings]?: PoolSettings[K] extends object ? Partial<PoolSettings[K]> : PoolSettings[K] };

/** A pool as pool-settings.ts reads one with IIS's defaults, but short times. */
function pool(name: string, o: Overrides = {}): PoolSettings {
  const base: PoolSettings = {
    name,
    key: poolKey(name),
    autoStart: true,
    startMode: 'OnDemand',
    managedRuntimeVersion: '',
    runtime: process.execPath,
    managedPipelineMode: 'Integrated',
    queueLength: 1000,
    identityType: 'ApplicationPoolIdentity',
    userName: '',
    maxProcesses: 1,
    startupTimeLimitMs: 90_000,
    shutdownTimeLimitMs: 90_000,
    pingingEnabled: true,
    pingIntervalMs: 30_000,
    pingResponseTimeMs: 90_000,
    idleTimeoutMs: 0,
    idleTimeoutAction: 'Terminate',
    logIdleTimeout: true,
    recycling: {
      disallowOverlappingRotation: false,
      disallowRotationOnConfigChange: false,
      logEventOn: new Set(['Time', 'Requests', 'Schedule', 'Memory', 'IsapiUnhealthy', 'OnDemand', 'ConfigChange', 'PrivateMemory']),
      timeMs: 0,
      requests: 0,
      memoryKb: 0,
      privateMemoryKb: 0,
      schedule: [],
    },
    failure: {
      rapidFailProtection: true,
      intervalMs: 5 * 60_000,
      maxCrashes: 5,
      loadBalancerCapabilities: 'HttpLevel',
      autoShutdownExe: '',
      autoShutdownParams: '',
      orphanWorkerProcess: false,
      orphanActionExe: '',
      orphanActionParams: '',
    },
    cpu: { limit: 0, action: 'NoAction', resetIntervalMs: 300_000 },
    environment: {},
    signature: 'v1',
    preload: [],
  };
  return {
    ...base,
    ...(o as Partial<PoolSettings>),
    recycling: { ...base.recycling, ...o.recycling },
    failure: { ...base.failure, ...o.failure },
    cpu: { ...base.cpu, ...o.cpu },
  };
}

interface Rig {
  clock: FakeClock;
  spawner: FakeSpawner;
  routing: RecordingRouting;
  was: ActivationService;
  log: string[];
  events: Array<[string, Record<string, unknown>]>;
  memory: Map<number, { virtualKb: number; privateKb: number }>;
}

const CHANNELS = ['wharf:worker:start', 'wharf:worker:ready', 'wharf:worker:ping', 'wharf:worker:exit', 'wharf:pool:recycle', 'wharf:pool:state'];
let rig: Rig;
let unsubscribe: () => void;

function makeRig(spareWorker = false): Rig {
  const clock = new FakeClock();
  const spawner = new FakeSpawner();
  const routing = new RecordingRouting();
  routing.idleSince = clock.now();
  const log: string[] = [];
  const memory = new Map<number, { virtualKb: number; privateKb: number }>();
  const resources = new ResourceLimits({ clock, log: (l, m) => log.push(`${l} ${m}`), readCpuMs: () => undefined, readMemory: (pid) => memory.get(pid) });
  const was = new ActivationService({ log: (l, m) => log.push(`${l} ${m}`) }, { clock, spawner, spareWorker, resources, nodeArgs: [] });
  was.serve(routing);
  return { clock, spawner, routing, was, log, events: [], memory };
}

beforeEach(() => {
  rig = makeRig();
  const events = rig.events;
  const subs = CHANNELS.map((name) => {
    const fn = (m: unknown): void => void events.push([name, m as Record<string, unknown>]);
    diagnostics_channel.subscribe(name, fn);
    return () => diagnostics_channel.unsubscribe(name, fn);
  });
  unsubscribe = () => subs.forEach((u) => u());
});
afterEach(() => unsubscribe());

/** Let prepare() (a promise) settle: the worker is spawned after it. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const key = poolKey('P');

/** Demand a worker of pool P and make it Ready. */
async function running(): Promise<FakeProcess> {
  rig.was.demand(key);
  await settle();
  const p = rig.spawner.last;
  p.ready();
  return p;
}

function states(): string[] {
  return rig.was.workers().map((w) => `${w.pid} ${w.state}`);
}

function eventsOf(name: string): Array<Record<string, unknown>> {
  return rig.events.filter(([n]) => n === name).map(([, m]) => m);
}

describe('starting workers', () => {
  test('a demand starts one worker; Ready makes it Running and the listener is told; a second demand starts none', async () => {
    rig.was.configure([pool('P')]);
    rig.was.demand(key);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 1);
    const p = rig.spawner.last;
    assert.deepEqual(rig.routing.only('attach'), [`attach P ${p.pid}`]);
    assert.deepEqual(states(), [`${p.pid} Starting`]);
    p.ready();
    assert.deepEqual(states(), [`${p.pid} Running`]);
    assert.deepEqual(rig.routing.only('ready'), [`ready p ${p.pid}`]);
    assert.ok(rig.log.includes(`info started worker ${p.pid} for pool P`));
    assert.deepEqual(eventsOf('wharf:worker:start'), [{ poolName: 'P', pid: p.pid, fromSpare: false }]);
    assert.deepEqual(eventsOf('wharf:worker:ready'), [{ poolName: 'P', pid: p.pid }]);
  });

  test('pool names are one pool whatever their case', async () => {
    rig.was.configure([pool('MyPool')]);
    rig.was.demand(poolKey('MYPOOL'));
    await settle();
    assert.equal(rig.spawner.of('MyPool').length, 1);
    assert.equal(rig.was.poolState(poolKey('mypool')), 'Started');
  });

  test('startupTimeLimit: a worker not Ready in time is killed, the failure counts, and a retry follows after 100 ms', async () => {
    rig.was.configure([pool('P', { startupTimeLimitMs: 5000 })]);
    rig.was.demand(key);
    await settle();
    const p = rig.spawner.last;
    rig.clock.advance(4999);
    assert.deepEqual(p.signals, []);
    rig.clock.advance(1);
    assert.deepEqual(p.signals, ['SIGKILL']);
    assert.ok(rig.log.some((l) => l.includes(`worker ${p.pid} of pool P did not start within startupTimeLimit (5000 ms); killing it`)));
    assert.ok(rig.log.some((l) => l.startsWith('error') && l.includes('exited during start-up')));
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['reason'], e['failure']]), [['startup', true]]);
    rig.clock.advance(99);
    assert.equal(rig.spawner.of('P').length, 1);
    rig.clock.advance(1);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2, 'the retry started a new worker');
  });

  test('AlwaysRunning starts a worker with no request, and again after it exits', async () => {
    rig.was.configure([pool('P', { startMode: 'AlwaysRunning' })]);
    await settle();
    const p = rig.spawner.last;
    p.ready();
    p.exit(1);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2);
  });
});

describe('health', () => {
  test('pings go out every pingInterval while the worker answers; a missed pong kills it (WAS 5010) and the pool replaces it on demand', async () => {
    rig.was.configure([pool('P', { pingIntervalMs: 1000, pingResponseTimeMs: 500 })]);
    const p = await running();
    rig.clock.advance(1000);
    assert.equal(p.control.pings.length, 1);
    rig.clock.advance(20);
    p.control.pong();
    assert.deepEqual(eventsOf('wharf:worker:ping'), [{ poolName: 'P', pid: p.pid, roundTripMs: 20 }]);
    rig.clock.advance(1000);
    assert.equal(p.control.pings.length, 2);
    rig.clock.advance(499);
    assert.deepEqual(p.signals, []);
    rig.clock.advance(1);
    assert.deepEqual(p.signals, ['SIGKILL']);
    assert.ok(rig.log.includes(`warn WAS 5010: worker ${p.pid} of pool P did not answer a ping within pingResponseTime (500 ms); killing it`));
    assert.ok(rig.log.some((l) => l.includes(`WAS 5009: worker ${p.pid} of pool P terminated unexpectedly because it failed to respond to a ping`)));
    assert.deepEqual(eventsOf('wharf:worker:ping').at(-1), { poolName: 'P', pid: p.pid, roundTripMs: -1 });
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['reason'], e['failure']]), [['ping', true]]);
    assert.deepEqual(rig.routing.only('exited'), [`exited p ${p.pid}`]);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2);
  });

  test('a pong that answers no ping in flight (late or forged) changes nothing', async () => {
    rig.was.configure([pool('P', { pingIntervalMs: 1000, pingResponseTimeMs: 500 })]);
    const p = await running();
    p.control.handlers!.pong(12345);
    rig.clock.advance(1000);
    p.control.handlers!.pong(p.control.pings[0]! + 1);
    rig.clock.advance(500);
    assert.deepEqual(p.signals, ['SIGKILL']);
  });

  test('idleTimeout: a worker without requests drains after the timeout (WAS 5186); one with a request in flight does not', async () => {
    rig.was.configure([pool('P', { idleTimeoutMs: 60_000, pingingEnabled: false })]);
    const p = await running();
    rig.routing.activity.set(p.pid, { outstanding: 1, lastActivity: rig.clock.now() });
    rig.clock.advance(60_000);
    assert.deepEqual(rig.routing.only('drain'), []);
    // The request ends 10 s later: the worker is idle from then on.
    rig.routing.activity.set(p.pid, { outstanding: 0, lastActivity: rig.clock.now() + 10_000 });
    rig.clock.advance(60_000 + 9_999);
    assert.deepEqual(rig.routing.only('drain'), []);
    rig.clock.advance(60_001);
    assert.deepEqual(rig.routing.only('drain'), [`drain p ${p.pid}`]);
    assert.ok(rig.log.includes(`info WAS 5186: worker process ${p.pid} serving application pool 'P' was shut down due to inactivity (idleTimeout 1 minute)`));
    p.exit(0);
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['reason'], e['failure']]), [['idle', false]]);
    assert.ok(!rig.log.some((l) => l.includes('WAS 5009')), 'an idle exit is no failure');
  });
});

describe('recycling', () => {
  test('periodicRestart time, overlapped: the old worker serves until its replacement is Ready, then drains', async () => {
    rig.was.configure([pool('P', { recycling: { timeMs: 3_600_000 }, pingingEnabled: false })]);
    const old = await running();
    rig.clock.advance(3_600_000);
    await settle();
    assert.ok(rig.log.includes(`info WAS 5074: worker process ${old.pid} serving application pool 'P' reached its allowed processing time limit; recycling it`));
    const fresh = rig.spawner.last;
    assert.notEqual(fresh, old);
    assert.deepEqual(states(), [`${old.pid} Recycling`, `${fresh.pid} Starting`]);
    assert.deepEqual(rig.routing.only('drain'), [], 'the old worker still serves');
    fresh.ready();
    assert.deepEqual(rig.routing.only('drain'), [`drain p ${old.pid}`]);
    assert.deepEqual(states(), [`${old.pid} Draining`, `${fresh.pid} Running`]);
    assert.deepEqual(eventsOf('wharf:pool:recycle'), [{ poolName: 'P', pid: old.pid, reason: 'time' }]);
    old.exit(0);
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['pid'], e['reason'], e['failure']]), [[old.pid, 'recycle', false]]);
  });

  test('periodicRestart requests: the listener reports the limit and the worker recycles (WAS 5075)', async () => {
    rig.was.configure([pool('P', { recycling: { requests: 100 } })]);
    const old = await running();
    rig.was.requestLimitReached(key, old.pid);
    await settle();
    assert.ok(rig.log.some((l) => l.includes(`WAS 5075: worker process ${old.pid}`)));
    assert.equal(rig.spawner.of('P').length, 2);
    assert.deepEqual(eventsOf('wharf:pool:recycle').map((e) => e['reason']), ['requests']);
  });

  test('periodicRestart schedule: the worker recycles at the time of day (WAS 5076), and again the next day', async () => {
    const now = new Date(rig.clock.now());
    const sinceMidnight = now.getTime() - new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    rig.was.configure([pool('P', { recycling: { schedule: [sinceMidnight + 90_000] }, pingingEnabled: false })]);
    const first = await running();
    rig.clock.advance(89_999);
    assert.equal(rig.spawner.of('P').length, 1);
    rig.clock.advance(1);
    await settle();
    assert.ok(rig.log.some((l) => l.includes(`WAS 5076: worker process ${first.pid}`)));
    const second = rig.spawner.last;
    second.ready();
    first.exit(0);
    rig.clock.advance(24 * 3600_000);
    await settle();
    assert.ok(rig.log.some((l) => l.includes(`WAS 5076: worker process ${second.pid}`)), 'the next day too');
  });

  test('periodicRestart memory: a Running worker over its virtual memory limit recycles (WAS 5077)', async () => {
    rig.was.configure([pool('P', { recycling: { memoryKb: 500_000 }, pingingEnabled: false })]);
    const p = await running();
    rig.memory.set(p.pid, { virtualKb: 400_000, privateKb: 100 });
    rig.clock.advance(1000);
    assert.equal(rig.spawner.of('P').length, 1);
    rig.memory.set(p.pid, { virtualKb: 600_000, privateKb: 100 });
    rig.clock.advance(1000);
    await settle();
    assert.ok(rig.log.some((l) => l.includes(`WAS 5077: worker process ${p.pid}`)));
    assert.deepEqual(eventsOf('wharf:pool:recycle').map((e) => e['reason']), ['memory']);
  });

  test('disallowOverlappingRotation: the old worker drains first; its replacement starts only once it has exited', async () => {
    rig.was.configure([pool('P', { recycling: { disallowOverlappingRotation: true } })]);
    const old = await running();
    rig.was.recyclePool('p');
    assert.deepEqual(rig.routing.only('drain'), [`drain p ${old.pid}`]);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 1, 'nothing starts while the old worker drains');
    old.exit(0);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2);
  });

  test('a configuration change recycles the pool (WAS 5080) unless disallowRotationOnConfigChange', async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    rig.was.configure([pool('P', { signature: 'v2', recycling: { disallowRotationOnConfigChange: true } })]);
    assert.deepEqual(states(), [`${p.pid} Running`]);
    rig.was.configure([pool('P', { signature: 'v3' })]);
    assert.deepEqual(states(), [`${p.pid} Recycling`]);
    assert.ok(rig.log.some((l) => l.includes(`WAS 5080: worker process ${p.pid}`)));
  });

  test('a worker asking to be recycled on its control channel is recycled, logged with its reason (WAS 5078)', async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    p.control.handlers!.recycleRequest({ reason: 'watchedFiles: app.js changed' });
    assert.ok(rig.log.includes(`info WAS 5078: worker process ${p.pid} serving application pool 'P' asked to be recycled (watchedFiles: app.js changed); recycling it`));
    assert.deepEqual(states(), [`${p.pid} Recycling`]);
    assert.deepEqual(eventsOf('wharf:pool:recycle').map((e) => e['reason']), ['isapiUnhealthy']);
  });

  test('shutdownTimeLimit: a draining worker still there at the deadline is killed (WAS 5013); a hosted app may ask for less', async () => {
    rig.was.configure([pool('P', { shutdownTimeLimitMs: 20_000, pingingEnabled: false })]);
    const p = await running();
    p.control.handlers!.appHints({ processes: 0, shutdownTimeLimitMs: 5_000 }, 0);
    rig.was.stopPool('P');
    rig.clock.advance(4_999);
    assert.deepEqual(p.signals, []);
    rig.clock.advance(1);
    assert.deepEqual(p.signals, ['SIGKILL']);
    assert.ok(rig.log.includes(`warn WAS 5013: worker ${p.pid} of pool P exceeded shutdownTimeLimit (5000 ms) while shutting down; killing it`));
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['reason'], e['failure']]), [['shutdownTimeLimit', false]]);
  });
});

describe('pool state', () => {
  test('rapid-fail protection: maxCrashes failures within the interval stop the pool (WAS 5002); the listener answers 503 AppOffline', async () => {
    rig.was.configure([pool('P', { failure: { maxCrashes: 3, intervalMs: 60_000, autoShutdownExe: '/usr/local/bin/page-me', autoShutdownParams: 'P down' } })]);
    for (let i = 0; i < 3; i++) {
      const p = await running();
      rig.clock.advance(1000);
      p.exit(null, 'SIGSEGV');
    }
    assert.equal(rig.was.poolState(key), 'Stopped');
    assert.ok(rig.log.some((l) => l.startsWith("error WAS 5002: application pool 'P' is being automatically disabled")));
    assert.deepEqual(rig.routing.only('stopped'), ['stopped p AppOffline']);
    assert.deepEqual(rig.spawner.actions, [{ exe: '/usr/local/bin/page-me', args: ['P', 'down'] }]);
    assert.deepEqual(eventsOf('wharf:pool:state').map((e) => `${e['state']} ${e['reason']}`), ['Started autoStart', 'Stopping rapidFailProtection', 'Stopped drained']);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 3, 'a stopped pool starts nothing');
    rig.was.startPool('p');
    assert.deepEqual(rig.routing.only('started'), ['started p']);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 4);
  });

  test('crashes spread wider than rapidFailProtectionInterval do not stop the pool', async () => {
    rig.was.configure([pool('P', { failure: { maxCrashes: 2, intervalMs: 60_000 } })]);
    for (let i = 0; i < 3; i++) {
      const p = await running();
      rig.clock.advance(61_000);
      p.exit(1);
    }
    assert.equal(rig.was.poolState(key), 'Started');
  });

  test('without rapid-fail protection, five failed starts in a row give up on the queue (503) and the next demand tries again', async () => {
    rig.was.configure([pool('P', { failure: { rapidFailProtection: false } })]);
    for (let i = 0; i < 5; i++) {
      rig.was.demand(key);
      await settle();
      rig.spawner.last.exit(1);
      rig.clock.advance(10_000);
    }
    assert.deepEqual(rig.routing.only('gaveUp'), ['gaveUp p']);
    assert.ok(rig.log.some((l) => l.includes('workers keep failing to start')));
  });

  test('a pool removed from the configuration drains its workers', async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    rig.was.configure([]);
    assert.deepEqual(rig.routing.only('drain'), [`drain p ${p.pid}`]);
  });
});

describe('orphanWorkerProcess', () => {
  test('a hung worker is left running, forgotten by its pool, orphanActionExe runs with its pid; Wharf kills it when it stops', async () => {
    rig.was.configure([pool('P', { pingIntervalMs: 1000, pingResponseTimeMs: 500, failure: { orphanWorkerProcess: true, orphanActionExe: '/bin/dump', orphanActionParams: '-p %1%' } })]);
    const p = await running();
    rig.clock.advance(1500);
    assert.deepEqual(p.signals, [], 'left running');
    assert.deepEqual(rig.routing.only('abandon'), [`abandon p ${p.pid}`]);
    assert.deepEqual(rig.spawner.actions, [{ exe: '/bin/dump', args: ['-p', String(p.pid)] }]);
    assert.deepEqual(states(), []);
    assert.deepEqual(eventsOf('wharf:worker:exit').map((e) => [e['reason'], e['failure']]), [['orphaned', true]]);
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2, 'a replacement starts');
    rig.spawner.last.ready();
    const stopping = rig.was.stop(1000);
    assert.deepEqual(p.signals, ['SIGKILL']);
    rig.clock.advance(1000);
    await stopping;
  });
});

describe('the spare worker', () => {
  test('a spare started in advance is handed to the first pool that needs one; another spare follows a second later', async () => {
    unsubscribe();
    rig = makeRig(true);
    rig.was.configure([pool('P')]);
    rig.clock.advance(1000);
    const spares = rig.spawner.of(undefined);
    assert.equal(spares.length, 1);
    const spare = spares[0]!;
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 0, 'no fresh process');
    assert.deepEqual(rig.routing.only('attach'), [`attach P ${spare.pid} assign`]);
    assert.ok(rig.log.includes(`info started worker ${spare.pid} for pool P (pre-started spare)`));
    spare.ready();
    assert.deepEqual(states(), [`${spare.pid} Running`]);
    rig.clock.advance(1000);
    assert.equal(rig.spawner.of(undefined).length, 2);
  });

  test('spares that keep dying are given up after three', () => {
    unsubscribe();
    rig = makeRig(true);
    rig.was.configure([pool('P')]);
    for (let i = 0; i < 3; i++) {
      rig.clock.advance(5000);
      rig.spawner.last.exit(1);
    }
    rig.clock.advance(60_000);
    assert.equal(rig.spawner.of(undefined).length, 3);
    assert.ok(rig.log.some((l) => l.includes('no longer keeping a spare worker')));
  });
});

describe('the control channel', () => {
  test("a hosted app's process count grows the web garden, bounded, and the listener is told", async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    p.control.handlers!.appHints({ processes: 64, shutdownTimeLimitMs: 0 }, 1000);
    assert.deepEqual(rig.routing.only('hint'), ['hint p 64']);
    assert.ok(rig.log.includes("info application pool 'P': its Node.js application asks for 64 worker processes (nodeProcessCountPerApplication) (1000 asked, at most 64)"));
    rig.was.demand(key);
    await settle();
    assert.equal(rig.spawner.of('P').length, 2);
  });

  test('an invalid control message is logged and ignored; a Ready from a worker already Running changes nothing', async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    p.control.handlers!.invalid('unknown control message type 99');
    p.ready();
    assert.deepEqual(states(), [`${p.pid} Running`]);
    assert.ok(rig.log.includes(`warn worker ${p.pid} of pool P sent an invalid control message (unknown control message type 99); ignored`));
  });

  test('a worker whose request channel closed is killed if it does not exit within a second', async () => {
    rig.was.configure([pool('P')]);
    const p = await running();
    rig.was.requestChannelClosed(key, p.pid);
    rig.clock.advance(999);
    assert.deepEqual(p.signals, []);
    rig.clock.advance(1);
    assert.deepEqual(p.signals, ['SIGKILL']);
  });
});
