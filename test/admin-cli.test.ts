// The appcmd-style command line (docs/cli.md) against a real running server: what `wharf list …`
// prints from the live state, and what `wharf start|stop|recycle …` does to the sites, pools and
// worker processes a client can observe over real sockets.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { tempDir, FIXTURES, WHARF_BIN, eventually, freePort, get, run, startWharf, type RawResponse, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
let portB: number;

before(async () => {
  portB = await freePort();
  w = await startWharf({ fixture: 'admin', vars: { PORT_B: String(portB) }, files: { 'pools.mjs': 'pools/pools.mjs' } });
});
after(async () => {
  await w?.stop();
});

type CliResult = { code: number | null; stdout: string; stderr: string };

function wharf(...args: string[]): Promise<CliResult> {
  return run(process.execPath, [WHARF_BIN, ...args, '--config', w.configFile], 15000);
}

/** Asserts a successful command and returns its stdout lines. */
async function lines(...args: string[]): Promise<string[]> {
  const r = await wharf(...args);
  assert.equal(r.code, 0, `wharf ${args.join(' ')}: exit ${r.code}, stderr: ${r.stderr}`);
  assert.equal(r.stderr, '', `wharf ${args.join(' ')} printed on stderr`);
  return r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n');
}

const pidOf = (r: RawResponse): number => Number(r.headers['x-pid']);

/**
 * The command line of a live process as `ps` shows it, or undefined once it is gone. A worker
 * sets its title to `wharf-worker -ap "<pool>"` (IIS's `w3wp.exe -ap "<pool>"`), which replaces
 * the NUL-separated argv in /proc with that text.
 */
function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return undefined;
  }
}

/** A Wharf worker process of `pool`: its command line has `-ap <pool>`. */
function assertWorkerOf(pid: number, pool: string): void {
  const text = cmdline(pid);
  assert.ok(text !== undefined, `process ${pid} exists`);
  const m = /(?:^|\s)-ap\s+"?([^"\s]+)"?/.exec(text);
  assert.ok(m, `process ${pid} is a worker process: ${text}`);
  assert.equal(m[1], pool, `worker ${pid} serves ${pool}: ${text}`);
}

/** A process that has exited and been reaped is gone from /proc. */
function gone(pid: number): boolean {
  return !existsSync(`/proc/${pid}`);
}

/** What a client sees connecting to a port: 'connected' or the error code (ECONNREFUSED, …). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, 3000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('list sites, apps, vdirs and apppools print one appcmd line per object; /text:<property>; an unknown name is an ERROR with exit 1', async () => {
  assert.deepEqual(await lines('list', 'sites'), [
    `SITE "A" (id:1,bindings:http/127.0.0.1:${w.port}:,state:Started)`,
    `SITE "B" (id:2,bindings:http/127.0.0.1:${portB}:,state:Started)`,
  ]);
  assert.deepEqual(await lines('list', 'site', 'b'), [`SITE "B" (id:2,bindings:http/127.0.0.1:${portB}:,state:Started)`], 'identifiers ignore case');
  assert.deepEqual(await lines('list', 'apps'), [
    'APP "A/" (applicationPool:PoolOne)',
    'APP "A/two" (applicationPool:PoolTwo)',
    'APP "B/" (applicationPool:PoolTwo)',
  ]);
  assert.deepEqual(await lines('list', 'apps', '/apppool.name:PoolTwo'), ['APP "A/two" (applicationPool:PoolTwo)', 'APP "B/" (applicationPool:PoolTwo)']);
  // Written as `www`, `%SystemDrive%\inetpub\two`, `C:\inetpub\docs\` and `b`.
  const drive = w.systemDrive;
  assert.deepEqual(await lines('list', 'vdirs'), [
    `VDIR "A/" (physicalPath:${join(w.root, 'www')})`,
    `VDIR "A/two/" (physicalPath:${join(drive, 'inetpub', 'two')})`,
    `VDIR "A/two/docs" (physicalPath:${join(drive, 'inetpub', 'docs')})`,
    `VDIR "B/" (physicalPath:${join(w.root, 'b')})`,
  ]);
  assert.deepEqual(await lines('list', 'apppools'), [
    'APPPOOL "PoolOne" (MgdVersion:,MgdMode:Integrated,state:Started)',
    'APPPOOL "PoolTwo" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)',
  ]);
  assert.deepEqual(await lines('list', 'apppool', 'PoolTwo', '/text:processModel.idleTimeout'), ['00:05:00']);
  assert.deepEqual(await lines('list', 'apppools', '/text:name'), ['PoolOne', 'PoolTwo']);

  const nope = await wharf('list', 'site', 'Nope');
  assert.equal(nope.code, 1);
  assert.equal(nope.stdout, '');
  assert.equal(nope.stderr, 'ERROR ( message:Cannot find SITE object with identifier "Nope". )\n');
  const nopePool = await wharf('stop', 'apppool', 'Nope');
  assert.equal(nopePool.code, 1);
  assert.equal(nopePool.stdout, '');
  assert.equal(nopePool.stderr, 'ERROR ( message:Cannot find APPPOOL object with identifier "Nope". )\n');
});

test('list wps: nothing before any request; then one line per real worker process, filtered by /apppool.name', async () => {
  // Neither pool is AlwaysRunning: no worker until a request needs one.
  const none = await wharf('list', 'wps');
  assert.deepEqual(none, { code: 0, stdout: '', stderr: '' });

  const one = await get(w.port, '/x.app');
  const two = await get(w.port, '/two/x.app');
  const b = await get(portB, '/x.app');
  for (const r of [one, two, b]) assert.equal(r.status, 200);
  assert.equal(one.headers['x-pool'], 'PoolOne');
  assert.equal(two.headers['x-pool'], 'PoolTwo');
  assert.equal(b.headers['x-pool'], 'PoolTwo');
  assert.equal(pidOf(two), pidOf(b), 'site B and A/two share PoolTwo\'s worker');

  const wps = await lines('list', 'wps');
  assert.deepEqual([...wps].sort(), [`WP "${pidOf(one)}" (apppool:PoolOne)`, `WP "${pidOf(two)}" (apppool:PoolTwo)`].sort());
  assertWorkerOf(pidOf(one), 'PoolOne');
  assertWorkerOf(pidOf(two), 'PoolTwo');
  assert.notEqual(pidOf(one), w.child.pid, 'a worker is not the main process');

  assert.deepEqual(await lines('list', 'wps', '/apppool.name:PoolTwo'), [`WP "${pidOf(two)}" (apppool:PoolTwo)`]);
  assert.deepEqual(await lines('list', 'wp', String(pidOf(one))), [`WP "${pidOf(one)}" (apppool:PoolOne)`]);
});

test('list requests shows requests in flight; /elapsed:N shows them once they have run N ms', async () => {
  // The requests run 4.5 s (the client gives up at 5): a slow moment of the machine (CI under load
  // has taken 3 s to reach the /elapsed check) still finds them in flight.
  const sent = Date.now();
  const slow = [get(w.port, '/sleep.app?ms=4500'), get(w.port, '/two/sleep.app?ms=4500')];
  const line = /^REQUEST "([0-9a-f]{16})" \(url:GET (\/(?:two\/)?sleep\.app\?ms=4500),time:(\d+) msec,client:127\.0\.0\.1[^)]*\)$/;
  try {
    const listed = await eventually(async () => {
      const l = await lines('list', 'requests');
      return l.length === 2 ? l : undefined;
    }, 2000);
    const parsed = listed.map((l) => {
      const m = line.exec(l);
      assert.ok(m, `appcmd's REQUEST line: ${l}`);
      return { id: m[1]!, url: m[2]!, time: Number(m[3]) };
    });
    assert.deepEqual(parsed.map((p) => p.url).sort(), ['/sleep.app?ms=4500', '/two/sleep.app?ms=4500']);
    assert.notEqual(parsed[0]!.id, parsed[1]!.id);
    for (const p of parsed) assert.ok(p.time <= Date.now() - sent + 50, `time:${p.time} msec is no more than the request's age`);

    // Filters on generated properties: the pool and the worker process.
    const byPool = await lines('list', 'requests', '/apppool.name:PoolTwo');
    assert.equal(byPool.length, 1);
    assert.match(byPool[0]!, /url:GET \/two\/sleep\.app\?ms=4500,/);

    // Young requests do not pass /elapsed:1500 …
    const young = await wharf('list', 'requests', '/elapsed:1500');
    const age = Date.now() - sent;
    assert.equal(young.code, 0, young.stderr);
    if (age < 1400) assert.equal(young.stdout, '', `at ${age} ms no request has run 1500 ms`);
    else process.stderr.write(`(admin-cli: the machine is slow, /elapsed:1500 first checked at ${age} ms)\n`);
    // … and both do once they are older than that.
    const old = await eventually(async () => {
      const l = await lines('list', 'requests', '/elapsed:1500');
      return l.length === 2 ? l : undefined;
    }, 2500);
    for (const l of old) {
      const m = line.exec(l);
      assert.ok(m, l);
      assert.ok(Number(m[3]) >= 1500, `time:${m[3]} msec passes /elapsed:1500`);
    }
  } finally {
    const done = await Promise.all(slow);
    for (const r of done) assert.equal(r.status, 200);
  }
  assert.deepEqual(await lines('list', 'requests'), [], 'finished requests are no longer listed');
});

test('stop site B closes its port while A serves; start site B opens it again', async () => {
  assert.equal((await get(portB, '/hello.txt')).status, 200);
  const stopped = await wharf('stop', 'site', 'B');
  assert.deepEqual(stopped, { code: 0, stdout: '"B" successfully stopped.\n', stderr: '' });

  assert.equal(await connectOutcome(portB), 'ECONNREFUSED', 'nothing listens on B\'s port');
  const a = await get(w.port, '/hello.txt');
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), 'one\n');
  assert.deepEqual(await lines('list', 'sites'), [
    `SITE "A" (id:1,bindings:http/127.0.0.1:${w.port}:,state:Started)`,
    `SITE "B" (id:2,bindings:http/127.0.0.1:${portB}:,state:Stopped)`,
  ]);
  assert.deepEqual(await lines('list', 'sites', '/state:Stopped', '/text:name'), ['B']);

  const again = await wharf('stop', 'site', 'B');
  assert.equal(again.code, 1);
  assert.equal(again.stdout, '');
  assert.match(again.stderr, /^ERROR \( message:.*"B".*already stopped.* \)\n$/);

  const started = await wharf('start', 'site', 'b');
  assert.deepEqual(started, { code: 0, stdout: '"B" successfully started.\n', stderr: '' });
  const back = await get(portB, '/hello.txt');
  assert.equal(back.status, 200);
  assert.equal(back.body.toString(), 'b\n');
  assert.deepEqual(await lines('list', 'site', 'B'), [`SITE "B" (id:2,bindings:http/127.0.0.1:${portB}:,state:Started)`]);
});

test('stop apppool PoolOne: 503 Disabled and its worker exits, PoolTwo serves; start brings it back', async () => {
  const before = await get(w.port, '/x.app');
  assert.equal(before.status, 200);
  const worker = pidOf(before);
  assertWorkerOf(worker, 'PoolOne');

  const stopped = await wharf('stop', 'apppool', 'PoolOne');
  assert.deepEqual(stopped, { code: 0, stdout: '"PoolOne" successfully stopped.\n', stderr: '' });
  const down = await get(w.port, '/x.app?stopped');
  assert.equal(down.status, 503);
  await eventually(() => w.httpErrLines().some((l) => l.includes('/x.app') && l.includes(' 503 ') && l.includes(' Disabled ')), 5000);
  await eventually(() => gone(worker), 8000);
  assert.deepEqual(await lines('list', 'apppools', '/text:state'), ['Stopped', 'Started']);
  assert.deepEqual(await lines('list', 'wps', '/apppool.name:PoolOne'), []);

  const two = await get(w.port, '/two/x.app');
  assert.equal(two.status, 200);
  assert.equal(two.headers['x-pool'], 'PoolTwo');
  assert.equal((await get(portB, '/x.app')).status, 200);

  const started = await wharf('start', 'apppool', 'PoolOne');
  assert.deepEqual(started, { code: 0, stdout: '"PoolOne" successfully started.\n', stderr: '' });
  const up = await get(w.port, '/x.app');
  assert.equal(up.status, 200);
  assert.equal(up.headers['x-pool'], 'PoolOne');
  assert.notEqual(pidOf(up), worker, 'a new worker process');
  assertWorkerOf(pidOf(up), 'PoolOne');
  assert.deepEqual(await lines('list', 'apppool', 'PoolOne'), ['APPPOOL "PoolOne" (MgdVersion:,MgdMode:Integrated,state:Started)']);
});

test('recycle apppool PoolTwo: a new worker takes over, no request fails meanwhile', async () => {
  const first = await get(w.port, '/two/x.app');
  assert.equal(first.status, 200);
  const oldPid = pidOf(first);

  const statuses: number[] = [];
  const pids = new Set<number>();
  let looping = true;
  const loop = (async () => {
    while (looping) {
      for (const r of await Promise.all([get(w.port, '/two/x.app'), get(portB, '/x.app')])) {
        statuses.push(r.status);
        if (r.status === 200) pids.add(pidOf(r));
      }
    }
  })();
  try {
    await sleep(100);
    const recycled = await wharf('recycle', 'apppool', 'PoolTwo');
    assert.deepEqual(recycled, { code: 0, stdout: '"PoolTwo" successfully recycled.\n', stderr: '' });
    const newPid = await eventually(async () => {
      const r = await get(w.port, '/two/x.app');
      return r.status === 200 && pidOf(r) !== oldPid ? pidOf(r) : undefined;
    }, 8000);
    assertWorkerOf(newPid, 'PoolTwo');
    await eventually(() => gone(oldPid), 8000);
    assert.deepEqual(await lines('list', 'wps', '/apppool.name:PoolTwo'), [`WP "${newPid}" (apppool:PoolTwo)`]);
  } finally {
    looping = false;
    await loop;
  }
  assert.ok(statuses.length > 4, `requests ran during the recycle (${statuses.length})`);
  assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every request during the recycle got 200');
  assert.ok(pids.size >= 2, `the loop saw the old and the new worker: ${[...pids].join(', ')}`);
});

test('the admin socket is private: mode 0600, in a directory only its owner can list or write', async () => {
  const m = /admin socket (\/\S+) \(/.exec(w.output());
  assert.ok(m, `the server says where its admin socket is:\n${w.output()}`);
  const path = m[1]!;
  const st = lstatSync(path);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o7777, 0o600);
  const shown = await run('stat', ['-c', '%A', path]);
  assert.equal(shown.stdout, 'srw-------\n');
  // docs/cli.md says 0700; as root with pool identities Wharf makes /run/wharf 0711 so that each
  // pool's user can reach its runtime folder below it (src/was/identity.ts). Either way nobody
  // else can list the folder or put a socket of their own there.
  const dir = statSync(dirname(path));
  assert.equal(dir.uid, process.getuid!());
  assert.equal(dir.mode & 0o066, 0, `mode ${(dir.mode & 0o777).toString(8)}`);
});

test('a --config no server runs for: exit 1, "Wharf is not running for <file>"', async () => {
  const dir = tempDir('wharf-nobody-');
  chmodSync(dir, 0o755);
  const file = join(dir, 'applicationHost.config');
  copyFileSync(join(FIXTURES, 'admin', 'applicationHost.config'), file);
  for (const args of [['list', 'sites'], ['stop', 'site', 'A'], ['recycle', 'apppool', 'PoolTwo']]) {
    const r = await run(process.execPath, [WHARF_BIN, ...args, '--config', file], 15000);
    assert.equal(r.code, 1, `wharf ${args.join(' ')}`);
    assert.equal(r.stdout, '');
    assert.ok(
      r.stderr.startsWith(`ERROR ( message:Wharf is not running for ${file}: nothing answers on its admin socket `),
      `wharf ${args.join(' ')}: ${r.stderr}`,
    );
    assert.ok(r.stderr.endsWith(' )\n'), r.stderr);
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
  }
  // The running server was not the one answering.
  assert.equal((await get(w.port, '/hello.txt')).status, 200);
});
