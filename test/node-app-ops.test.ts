/**
 * A hosted Node.js app under its pool's rules: its console output in the pool's log files and
 * `wharf logs`, a crash and a hang handled by WAS with no failed request for another pool's
 * clients, watchedFiles recycling overlapped, app_offline.htm taking the app offline and back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { ensureAppInstalled, send, type Reply } from './helpers/node-apps.js';

describe('hosted Node.js apps under their pool rules', () => {
  let wharf: WharfProcess;
  const ops = (path: string): Promise<Reply> => send(wharf.port, 'ops.test', { path });
  const pidOf = async (): Promise<number> => ((await ops('/env')).json() as { pid: number }).pid;

  /** Requests to the other pool, back to back, until stopped: every answer must be a 200. */
  function otherClients(): { stop(): Promise<{ ok: number; failed: string[] }> } {
    let running = true;
    let ok = 0;
    const failed: string[] = [];
    const loops = Array.from({ length: 4 }, async () => {
      while (running) {
        try {
          const r = await send(wharf.port, 'other.test', { path: '/json' });
          if (r.status === 200) ok++;
          else failed.push(`status ${r.status}`);
        } catch (err) {
          failed.push((err as Error).message);
        }
      }
    });
    return {
      stop: async () => {
        running = false;
        await Promise.all(loops);
        return { ok, failed };
      },
    };
  }

  before(async () => {
    ensureAppInstalled('plain');
    ensureAppInstalled('express');
    wharf = await startWharf({ fixture: 'node-ops', files: { 'www-ops': 'apps/plain', 'www-other': 'apps/express', 'www-garden': 'apps/plain' } });
  });
  after(async () => {
    await wharf?.stop();
  });

  it("the app's stdout and stderr go to the pool's log file and to `wharf logs apppool`", async () => {
    assert.equal((await ops('/log?m=first')).status, 200);
    await eventually(() => /pid \d+ stdout: app stdout line first/.test(logText()) && /pid \d+ stderr: app stderr line first/.test(logText()));
    const r = await run(process.execPath, [WHARF_BIN, 'logs', 'apppool', 'OpsPool', '/lines:50', '--config', wharf.configFile], 15000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /stdout: app stdout line first\n/);
    assert.match(r.stdout, /stderr: app stderr line first\n/);
  });

  it('an unhandled exception ends the worker; a new one serves, other pools never notice', async () => {
    const before = await pidOf();
    const others = otherClients();
    assert.equal((await ops('/crash')).status, 200);
    await eventually(() => !alive(before));
    const after = await pidOf();
    assert.notEqual(after, before);
    const o = await others.stop();
    assert.deepEqual(o.failed, []);
    assert.ok(o.ok > 0);
    await eventually(() => logText().includes('Error: the app crashed on purpose'));
  });

  it('a hung app (a busy loop) is killed by the ping check and replaced; other pools never notice', async () => {
    const before = await pidOf();
    const others = otherClients();
    const hung = await ops('/hang?ms=20000');
    // The in-flight GET was replayed once on the new worker, which hung too: a clean 502.
    assert.equal(hung.status, 502);
    assert.ok(!alive(before));
    const o = await others.stop();
    assert.deepEqual(o.failed, []);
    assert.equal((await ops('/json')).status, 200);
    assert.notEqual(await pidOf(), before);
  });

  it('a change to a watched file recycles the app, overlapped: every request is answered', async () => {
    const before = await pidOf();
    let failures = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const r = await ops('/json').catch(() => undefined);
        if (r?.status !== 200) failures++;
      }
    })();
    writeFileSync(join(wharf.root, 'www-ops', 'config', 'settings.json'), '{"version": 2}');
    await eventually(async () => (await pidOf()) !== before, 10000);
    running = false;
    await loop;
    assert.equal(failures, 0);
    await eventually(() => wharf.output().includes('asked to be recycled (watchedFiles:'));
    // A file outside watchedFiles does not recycle.
    const now = await pidOf();
    writeFileSync(join(wharf.root, 'www-ops', 'notes.txt'), 'not watched');
    utimesSync(join(wharf.root, 'www-ops', 'notes.txt'), new Date(), new Date());
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await pidOf(), now);
  });

  it('app_offline.htm stops the app and answers 503 with the file; removing it starts the app again', async () => {
    const before = await pidOf();
    const offline = join(wharf.root, 'www-ops', 'app_offline.htm');
    writeFileSync(offline, '<h1>Down for maintenance</h1>');
    await eventually(async () => (await ops('/json')).status === 503, 5000);
    const r = await ops('/users/1');
    assert.equal(r.status, 503);
    assert.equal(r.text(), '<h1>Down for maintenance</h1>');
    assert.match(String(r.headers['content-type']), /^text\/html/);
    // The app itself was stopped: its worker went away (a new one serves the file).
    await eventually(() => !alive(before), 10000);
    rmSync(offline);
    await eventually(async () => (await ops('/json')).status === 200, 5000);
    assert.notEqual(await pidOf(), before);
  });

  it("iisnode's nodeProcessCountPerApplication runs that many copies of the app; gracefulShutdownTimeout bounds a recycle's drain", async () => {
    const garden = (path: string): Promise<Reply> => send(wharf.port, 'garden.test', { path });
    assert.equal((await garden('/json')).status, 200);
    // The pool's maxProcesses is 1; the app's web.config asks for 2: a second copy starts while
    // the first is busy, and both serve.
    const pids = new Set<number>();
    await eventually(async () => {
      const wave = await Promise.all(Array.from({ length: 4 }, () => garden('/slow?ms=200')));
      for (const r of wave) {
        assert.equal(r.status, 200);
        pids.add((r.json() as { pid: number }).pid);
      }
      return pids.size >= 2;
    }, 15000);
    assert.equal(pids.size, 2, 'never more than the 2 processes asked for');
    assert.match(wharf.output(), /application pool 'GardenPool': its Node\.js application asks for 2 worker processes/);
    // A request still running 1.5 s into a recycle: its old process is killed then (not after the
    // pool's 90 s, when it would have answered itself at 4 s), and the GET, to which nothing was
    // written yet, is replayed on a new process, which answers it.
    const long = garden('/slow?ms=4000');
    await new Promise((r) => setTimeout(r, 300));
    const recycled = await run(process.execPath, [WHARF_BIN, 'recycle', 'apppool', 'GardenPool', '--config', wharf.configFile]);
    assert.equal(recycled.code, 0, recycled.stderr);
    await eventually(() => /exceeded shutdownTimeLimit \(1500 ms\)/.test(wharf.output()), 15000);
    const answer = await long;
    assert.equal(answer.status, 200);
    assert.ok(!pids.has((answer.json() as { pid: number }).pid), 'answered by a new process, after the old one was killed');
  });

  function logText(): string {
    const dir = join(wharf.systemDrive, 'inetpub', 'logs', 'AppPools', 'OpsPool');
    if (!existsSync(dir)) return '';
    return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')).join('');
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 100));
  }
}
