import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminDone, adminNotFound } from './objects.js';
import { startAdminServer } from './socket.js';
import type { AdminObject, AdminTarget } from './types.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const WHARF = fileURLToPath(new URL('../../../bin/wharf.js', import.meta.url));

function wharf(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WHARF, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const SITE: AdminObject = {
  kind: 'SITE',
  id: 'Default Web Site',
  summary: [['id', '1'], ['bindings', 'http/*:80:'], ['state', 'Started']],
  properties: { 'SITE.NAME': 'Default Web Site', 'SITE.ID': '1', bindings: 'http/*:80:', state: 'Started' },
};

const TARGET: AdminTarget = {
  list: (kind) => (kind === 'SITE' ? [SITE] : []),
  startAppPool: (name) => {
    if (name !== 'DefaultAppPool') throw adminNotFound('APPPOOL', name);
    return adminDone('start', name);
  },
  stopAppPool: (name) => adminDone('stop', name),
  recycleAppPool: (name) => adminDone('recycle', name),
  startSite: (name) => adminDone('start', name),
  stopSite: (name) => adminDone('stop', name),
  poolOutput: (name) => {
    if (name !== 'DefaultAppPool') throw adminNotFound('APPPOOL', name);
    return { lines: ['2026-12-04T00:00:00.000Z pid 7 stdout: hello from the app'], file: '/x/output_20261204.log', folder: '/x' };
  },
  status: () => {
    throw new Error('not used here');
  },
  metrics: () => {
    throw new Error('not used here');
  },
  shutdown: () => {
    throw new Error('not used here');
  },
};

test('the wharf command line prints what the running server answers, with appcmd exit codes', async () => {
  const socket = join(tracked(mkdtempSync(join(tmpdir(), 'wh-'))), 'admin.sock');
  const server = await startAdminServer(socket, TARGET, { warn: () => undefined });
  const env = { WHARF_ADMIN_SOCKET: socket };
  try {
    assert.deepEqual(await wharf(['list', 'sites'], env), { code: 0, stdout: 'SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)\n', stderr: '' });
    assert.deepEqual(await wharf(['list', 'site', 'default web site', '/text:SITE.ID'], env), { code: 0, stdout: '1\n', stderr: '' });
    assert.deepEqual(await wharf(['list', 'wps'], env), { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(await wharf(['list', 'site', 'Nope'], env), { code: 1, stdout: '', stderr: 'ERROR ( message:Cannot find SITE object with identifier "Nope". )\n' });
    assert.deepEqual(await wharf(['start', 'apppool', '/apppool.name:DefaultAppPool'], env), { code: 0, stdout: '"DefaultAppPool" successfully started.\n', stderr: '' });
    assert.deepEqual(await wharf(['start', 'apppool', 'Nope'], env), { code: 1, stdout: '', stderr: 'ERROR ( message:Cannot find APPPOOL object with identifier "Nope". )\n' });
    assert.deepEqual(await wharf(['recycle', 'apppool', 'DefaultAppPool'], env), { code: 0, stdout: '"DefaultAppPool" successfully recycled.\n', stderr: '' });
    assert.deepEqual(await wharf(['stop', 'site', 'Default Web Site'], env), { code: 0, stdout: '"Default Web Site" successfully stopped.\n', stderr: '' });
    assert.deepEqual(await wharf(['logs', 'apppool', 'DefaultAppPool', '/lines:5'], env), { code: 0, stdout: '2026-12-04T00:00:00.000Z pid 7 stdout: hello from the app\n', stderr: '' });
    assert.deepEqual(await wharf(['logs', 'apppool', 'Nope'], env), { code: 1, stdout: '', stderr: 'ERROR ( message:Cannot find APPPOOL object with identifier "Nope". )\n' });
    assert.equal((await wharf(['logs', 'apppool', 'DefaultAppPool', '/lines:0'], env)).code, 2);
    const usage = await wharf(['recycle', 'site', 'X'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^wharf: the command "recycle" is not supported on object "SITE"\n/);
  } finally {
    await server.close();
  }
  const down = await wharf(['list', 'apppools', '--config', '/etc/wharf/applicationHost.config'], env);
  assert.equal(down.code, 1);
  assert.equal(down.stdout, '');
  assert.match(down.stderr, /^ERROR \( message:Wharf is not running for \/etc\/wharf\/applicationHost\.config: nothing answers on its admin socket .*admin\.sock\. .* \)\n$/);
});
