import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs, otherUser } from '../../test/helpers/skip.js';
import { AdminError } from '../errors.js';
import { adminCall } from './client.js';
import { adminDone, adminNotFound } from './objects.js';
import { MAX_REQUEST_LINE_BYTES, startAdminServer, type AdminServer } from './socket.js';
import type { AdminObject, AdminObjectKind, AdminTarget } from './types.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const POOL: AdminObject = {
  kind: 'APPPOOL',
  id: 'DefaultAppPool',
  summary: [['MgdVersion', 'v4.0'], ['MgdMode', 'Integrated'], ['state', 'Started']],
  properties: { 'APPPOOL.NAME': 'DefaultAppPool', state: 'Started' },
};

/** A small in-test server state: one pool, one site; a pool named "Boom" makes the target throw a plain Error. */
function target(): AdminTarget & { calls: string[] } {
  const calls: string[] = [];
  const pool = (verb: 'start' | 'stop' | 'recycle') => (name: string): string => {
    calls.push(`${verb} ${name}`);
    if (name === 'Boom') throw new Error('the activation service is confused');
    if (name.toLowerCase() !== 'defaultapppool') throw adminNotFound('APPPOOL', name);
    return adminDone(verb, 'DefaultAppPool');
  };
  const site = (verb: 'start' | 'stop') => (name: string): string => {
    calls.push(`${verb} site ${name}`);
    if (name !== 'Default Web Site') throw adminNotFound('SITE', name);
    return adminDone(verb, name);
  };
  return {
    calls,
    list: (kind: AdminObjectKind) => (kind === 'APPPOOL' ? [POOL] : []),
    startAppPool: pool('start'),
    stopAppPool: pool('stop'),
    recycleAppPool: pool('recycle'),
    startSite: site('start'),
    stopSite: site('stop'),
    poolOutput: (name: string, lines: number) => {
      calls.push(`logs apppool ${name} ${lines}`);
      return { lines: [], file: '', folder: '/x' };
    },
    status: () => ({
      pid: process.pid,
      startedAt: '2026-12-05T00:00:00.000Z',
      uptimeMs: 1000,
      configFile: '/etc/wharf/applicationHost.config',
      generation: 2,
      systemDrive: '/var/lib/wharf',
      adminSocket: '/run/wharf/x.sock',
      drainMs: 90000,
      sites: [],
      appPools: [POOL],
      workerProcesses: 0,
      requestsInFlight: 0,
    }),
    metrics: async () => {
      calls.push('metrics');
      return '# HELP wharf_config_generation x\n# TYPE wharf_config_generation gauge\nwharf_config_generation 2\n';
    },
    shutdown: () => {
      calls.push('shutdown asked');
      return { pid: process.pid, drainMs: 90000, begin: () => calls.push('shutdown begun') };
    },
  };
}

function socketDir(): string {
  // Short: a Unix socket path has at most 107 bytes.
  return join(tracked(mkdtempSync(join(tmpdir(), 'wh-'))), 'run');
}

const quiet = { warnings: [] as string[], warn(m: string): void { this.warnings.push(m); } };

async function withServer(fn: (path: string, server: AdminServer, t: ReturnType<typeof target>) => Promise<void>): Promise<void> {
  const path = join(socketDir(), 'admin.sock');
  const t = target();
  const server = await startAdminServer(path, t, quiet);
  try {
    await fn(path, server, t);
  } finally {
    await server.close();
  }
}

/** Writes raw bytes on one connection and collects `count` answer lines (or what came before close). */
function exchange(path: string, data: string | Buffer, count: number): Promise<{ lines: unknown[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let text = '';
    const lines: unknown[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`only ${lines.length} answers: ${text}`));
    }, 5000);
    s.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      let nl: number;
      while ((nl = text.indexOf('\n')) !== -1) {
        lines.push(JSON.parse(text.slice(0, nl)));
        text = text.slice(nl + 1);
      }
      if (lines.length >= count) {
        clearTimeout(timer);
        s.end();
        resolve({ lines, closed: false });
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ lines, closed: true });
    });
    s.on('error', () => undefined);
    s.write(data);
  });
}

test('round trip: list, start/stop/recycle answers, hello names the pid', async () => {
  await withServer(async (path, _server, t) => {
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'APPPOOL' }), { ok: true, objects: [POOL] });
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'WP' }), { ok: true, objects: [] });
    assert.deepEqual(await adminCall(path, { op: 'recycle', kind: 'APPPOOL', name: 'defaultapppool' }), { ok: true, message: '"DefaultAppPool" successfully recycled.' });
    assert.deepEqual(await adminCall(path, { op: 'stop', kind: 'SITE', name: 'Default Web Site' }), { ok: true, message: '"Default Web Site" successfully stopped.' });
    assert.deepEqual(await adminCall(path, { op: 'hello' }), { ok: true, pid: process.pid });
    assert.deepEqual(await adminCall(path, { op: 'metrics' }), {
      ok: true,
      metrics: '# HELP wharf_config_generation x\n# TYPE wharf_config_generation gauge\nwharf_config_generation 2\n',
    });
    assert.deepEqual(t.calls, ['recycle defaultapppool', 'stop site Default Web Site', 'metrics']);
  });
});

test('status answers the server as a whole; shutdown answers first and begins the drain (which closes the socket) only then', async () => {
  const path = join(socketDir(), 'admin.sock');
  const t = target();
  const server = await startAdminServer(path, { ...t, shutdown: () => ({ ...t.shutdown(), begin: () => void server.close().then(() => t.calls.push('closed')) }) }, quiet);
  try {
    const status = await adminCall(path, { op: 'status' });
    assert.equal(status.ok && status.status?.generation, 2);
    assert.equal(status.ok && status.status?.configFile, '/etc/wharf/applicationHost.config');
    // The real drain closes the admin socket and its connections first thing: begun any earlier,
    // the answer would be lost.
    assert.deepEqual(await adminCall(path, { op: 'shutdown' }), { ok: true, pid: process.pid, drainMs: 90000, message: `Wharf (pid ${process.pid}) is stopping.` });
    while (!t.calls.includes('closed')) await new Promise((r) => setTimeout(r, 10));
    assert.equal(existsSync(path), false);
  } finally {
    await server.close();
  }
});

test('the socket is 0600 in a 0700 directory, and close() removes it', async () => {
  const path = join(socketDir(), 'admin.sock');
  const server = await startAdminServer(path, target(), quiet);
  assert.ok(lstatSync(path).isSocket());
  assert.equal(lstatSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
  await server.close();
  assert.equal(existsSync(path), false);
  await server.close(); // twice is fine
});

test('a thrown AdminError keeps its code; any other exception is ADM_REQUEST, logged, and the server carries on', async () => {
  await withServer(async (path) => {
    assert.deepEqual(await adminCall(path, { op: 'start', kind: 'APPPOOL', name: 'Nope' }), {
      ok: false,
      code: 'ADM_NOT_FOUND',
      error: 'Cannot find APPPOOL object with identifier "Nope".',
    });
    const before = quiet.warnings.length;
    assert.deepEqual(await adminCall(path, { op: 'stop', kind: 'APPPOOL', name: 'Boom' }), { ok: false, code: 'ADM_REQUEST', error: 'the activation service is confused' });
    assert.equal(quiet.warnings.length, before + 1);
    assert.match(quiet.warnings.at(-1)!, /stop failed: Error: the activation service is confused/);
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'APPPOOL' }), { ok: true, objects: [POOL] });
  });
});

test('a malformed line gets ADM_REQUEST and the same connection stays usable', async () => {
  await withServer(async (path) => {
    const lines = [
      'this is not json',
      '[1,2]',
      '{"op":"reboot"}',
      '{"op":"list","kind":"FTPSITE"}',
      '{"op":"recycle","kind":"SITE","name":"Default Web Site"}',
      '{"op":"start","kind":"APPPOOL"}',
      '',
      '{"op":"list","kind":"APPPOOL"}\r',
    ];
    const { lines: answers, closed } = await exchange(path, lines.join('\n') + '\n', 7);
    assert.equal(closed, false);
    assert.deepEqual(answers, [
      { ok: false, code: 'ADM_REQUEST', error: 'Malformed request: not JSON.' },
      { ok: false, code: 'ADM_REQUEST', error: 'Malformed request: expected a JSON object.' },
      { ok: false, code: 'ADM_REQUEST', error: 'Malformed request: unknown op "reboot".' },
      { ok: false, code: 'ADM_REQUEST', error: 'Malformed request: unknown object kind "FTPSITE".' },
      { ok: false, code: 'ADM_REQUEST', error: 'The command "recycle" is not supported on object "SITE".' },
      { ok: false, code: 'ADM_REQUEST', error: 'Malformed request: "start" needs the name of the APPPOOL.' },
      { ok: true, objects: [POOL] },
    ]);
  });
});

test('a request split across writes is put back together', async () => {
  await withServer(async (path) => {
    const answer = await new Promise<string>((resolve) => {
      const s = connect(path);
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.endsWith('\n')) {
          s.end();
          resolve(got);
        }
      });
      s.write('{"op":"li');
      setTimeout(() => s.write('st","kind":"APPPOOL"}\n'), 20);
    });
    assert.deepEqual(JSON.parse(answer), { ok: true, objects: [POOL] });
  });
});

test('a line longer than the cap is refused and the connection closed; the server keeps serving', async () => {
  await withServer(async (path) => {
    const huge = Buffer.alloc(MAX_REQUEST_LINE_BYTES + 10, 0x61);
    // Waiting for a second answer that never comes: the server closes the connection instead.
    const { lines, closed } = await exchange(path, huge, 2);
    assert.deepEqual(lines, [{ ok: false, code: 'ADM_REQUEST', error: `Request line longer than ${MAX_REQUEST_LINE_BYTES} bytes.` }]);
    assert.equal(closed, true);
    // Also with the newline arriving after the cap, in one write.
    const withNewline = await exchange(path, Buffer.concat([huge, Buffer.from('\n{"op":"hello"}\n')]), 2);
    assert.deepEqual(withNewline.lines, [{ ok: false, code: 'ADM_REQUEST', error: `Request line longer than ${MAX_REQUEST_LINE_BYTES} bytes.` }]);
    assert.equal(withNewline.closed, true);
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'APPPOOL' }), { ok: true, objects: [POOL] });
  });
});

test('a stale socket file from a dead server is removed and replaced', async () => {
  const path = join(socketDir(), 'admin.sock');
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  // A process that listens and is killed with SIGKILL leaves its socket file behind.
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(lstatSync(path).isSocket(), 'the dead server left its socket');
  await assert.rejects(adminCall(path, { op: 'hello' }, 2000, '/etc/wharf/applicationHost.config'), (err: unknown) => {
    assert.ok(err instanceof AdminError);
    assert.equal(err.code, 'ADM_CONNECT');
    assert.match(err.message, /^Wharf is not running for \/etc\/wharf\/applicationHost\.config: nothing answers on its admin socket .*admin\.sock\./);
    return true;
  });
  const server = await startAdminServer(path, target(), quiet);
  try {
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'APPPOOL' }), { ok: true, objects: [POOL] });
  } finally {
    await server.close();
  }
});

test('a second server for the same socket is refused while the first one answers', async () => {
  await withServer(async (path) => {
    await assert.rejects(startAdminServer(path, target(), quiet), (err: unknown) => {
      assert.ok(err instanceof AdminError);
      assert.equal(err.code, 'ADM_REQUEST');
      assert.equal(err.message, `Another Wharf serves this configuration (pid ${process.pid}, admin socket ${path}).`);
      return true;
    });
    assert.deepEqual(await adminCall(path, { op: 'list', kind: 'APPPOOL' }), { ok: true, objects: [POOL] }, 'the first one is untouched');
  });
});

test('a file that is not a socket, or a directory others can write, is not used', async () => {
  const dir = socketDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'admin.sock');
  writeFileSync(file, 'precious');
  await assert.rejects(startAdminServer(file, target(), quiet), /exists and is not a socket/);
  assert.equal(readFileSync(file, 'utf8'), 'precious');

  const open = join(socketDir(), 'open');
  mkdirSync(open, { recursive: true });
  chmodSync(open, 0o777);
  await assert.rejects(startAdminServer(join(open, 'admin.sock'), target(), quiet), /is writable by other users/);

  await assert.rejects(startAdminServer(join(dir, 'x'.repeat(120) + '.sock'), target(), quiet), /longer than the 107 bytes/);
});

test('the client: not running, no answer in time, not Wharf', async () => {
  const dir = socketDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await assert.rejects(adminCall(join(dir, 'none.sock'), { op: 'hello' }), (err: unknown) => err instanceof AdminError && err.code === 'ADM_CONNECT' && /Wharf is not running: nothing answers/.test(err.message));

  const mute = createServer(() => undefined);
  const mutePath = join(dir, 'mute.sock');
  await new Promise<void>((resolve) => mute.listen(mutePath, resolve));
  const liar = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n\n'));
  const liarPath = join(dir, 'liar.sock');
  await new Promise<void>((resolve) => liar.listen(liarPath, resolve));
  try {
    await assert.rejects(adminCall(mutePath, { op: 'hello' }, 200), /did not answer within 200 ms/);
    await assert.rejects(adminCall(liarPath, { op: 'hello' }), (err: unknown) => err instanceof AdminError && err.code === 'ADM_REQUEST' && /not Wharf/.test(err.message));
    // Something that is not Wharf holds the path: the server will not take it over.
    await assert.rejects(startAdminServer(mutePath, target(), quiet), /Another process listens on the admin socket/);
  } finally {
    mute.close();
    liar.close();
  }

});

test('only root and the server\'s own user can connect: another user gets "permission denied"', async (t) => {
  // The directory is left traversable so that the socket's own 0600 mode is what refuses.
  const base = tracked(mkdtempSync(join(tmpdir(), 'wh-')));
  chmodSync(base, 0o755);
  const dir = join(base, 'run');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const path = join(dir, 'admin.sock');
  const server = await startAdminServer(path, target(), quiet);
  try {
    if (process.getuid?.() === 0) {
      // Root: ask as "nobody", in a child process.
      if (!needs(t, otherUser())) return;
      const client = new URL('./client.js', import.meta.url).href;
      const script = `import(${JSON.stringify(client)}).then((m) => m.adminCall(${JSON.stringify(path)}, { op: 'hello' })).then(
        () => console.log('connected'), (e) => console.log(e.code + ' ' + e.message))`;
      const child = spawn(process.execPath, ['-e', script], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((resolve, reject) => {
        child.once('close', resolve);
        child.once('error', reject);
      });
      assert.match(out, /^ADM_CONNECT Permission denied on the admin socket .*admin\.sock: run as root or as the user the server runs as\./);
      assert.deepEqual(await adminCall(path, { op: 'hello' }), { ok: true, pid: process.pid }, 'root itself connects');
    } else {
      chmodSync(path, 0o000);
      await assert.rejects(adminCall(path, { op: 'hello' }), (err: unknown) => err instanceof AdminError && err.code === 'ADM_CONNECT' && /run as root or as the user the server runs as/.test(err.message));
    }
  } finally {
    await server.close();
  }
});
