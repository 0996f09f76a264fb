import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, FIXTURES, REPO_ROOT, WHARF_BIN, freePort, get, run, startWharf } from './helpers/wharf.js';

test('wharf --help explains the commands', async () => {
  const r = await run(process.execPath, [WHARF_BIN, '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage:/);
  assert.match(r.stdout, /wharf start \[--config <applicationHost\.config>\]/);
  const bad = await run(process.execPath, [WHARF_BIN, 'frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
});

test('without a config Wharf serves its welcome site, logs where it listens, and stops on SIGTERM', async () => {
  const w = await startWharf({ fixture: 'embedded', embedded: true });
  assert.match(w.output(), new RegExp(`listening on \\[::\\]:${w.port}|listening on 0\\.0\\.0\\.0:${w.port}`));
  const r = await get(w.port, '/');
  assert.equal(r.status, 200);
  assert.match(r.body.toString(), /Wharf is running/);
  assert.equal(r.headers['content-type'], 'text/html');
  const code = await w.stop();
  assert.equal(code, 0);
  assert.match(w.output(), /SIGTERM: draining/);
  assert.match(w.output(), /stopped/);
});

test('--root serves a folder with the embedded defaults; SIGINT stops too', async () => {
  const w = await startWharf({ fixture: 'embedded', embedded: true, args: ['--root', join(FIXTURES, 'embedded', 'site')] });
  const r = await get(w.port, '/');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), '<p>my folder</p>\n');
  w.child.kill('SIGINT');
  const code = await new Promise((resolve) => w.child.once('exit', resolve));
  assert.equal(code, 0);
});

test('npm start runs the same server (port overridable after --)', async () => {
  const port = await freePort();
  const child = spawn('npm', ['start', '--silent', '--', '--port', String(port), '--system-drive', tempDir('wharf-npm-start-')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so the stop below reaches npm and the server like Ctrl+C would
  });
  let out = '';
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const deadline = Date.now() + 15000;
    while (!out.includes('Wharf is serving') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /Wharf is serving/);
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /Wharf is running/);
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
});

test('an invalid applicationHost.config stops start-up with file:line:column', async () => {
  const file = join(FIXTURES, 'embedded', 'broken.config');
  const r = await run(process.execPath, [WHARF_BIN, 'start', '--config', file, '--system-drive', tempDir('wharf-broken-')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`invalid configuration: ${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
});

test('SIGHUP re-reads applicationHost.config: an unchanged file is reported as such, an edit is served once it applies', async () => {
  const w = await startWharf({ fixture: 'static' });
  try {
    w.child.kill('SIGHUP');
    await w.waitForOutput(/SIGHUP: .*applicationHost\.config is unchanged \(generation kept\)/);
    const before = await get(w.port, '/site.css');
    assert.equal(before.status, 200, 'still serving after SIGHUP');
    assert.equal(before.headers['x-powered-by'], 'Wharf');
    assert.doesNotMatch(w.output(), /configuration generation 2 applied/);
    // The file is also watched: SIGHUP or the watcher, whichever reads it first, applies it once.
    writeFileSync(w.configFile, readFileSync(w.configFile, 'utf8').replace('<add name="X-Powered-By" value="Wharf" />', '<add name="X-Powered-By" value="Wharf, edited" />'));
    w.child.kill('SIGHUP');
    await w.waitForOutput(/configuration generation 2 applied/);
    const after = await get(w.port, '/site.css');
    assert.equal(after.status, 200);
    assert.equal(after.headers['x-powered-by'], 'Wharf, edited');
    assert.doesNotMatch(w.output(), /configuration generation 3/, 'one edit, one new generation');
  } finally {
    await w.stop();
  }
});

test('the server keeps serving when its console goes away (a closed terminal, `wharf start | head`)', async () => {
  const w = await startWharf({ fixture: 'embedded', embedded: true, args: ['--root', join(FIXTURES, 'embedded', 'site')] });
  // Close the read ends of its stdout and stderr: every later console line fails with EPIPE.
  w.child.stdout!.destroy();
  w.child.stderr!.destroy();
  for (let i = 0; i < 5; i++) {
    // The first request starts a worker (a log line); a missing page logs too.
    assert.equal((await get(w.port, '/')).status, 200);
    assert.equal((await get(w.port, '/missing.html')).status, 404);
  }
  const code = await w.stop();
  assert.equal(code, 0);
});
