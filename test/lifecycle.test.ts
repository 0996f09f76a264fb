/**
 * Installing, stopping and reloading Wharf the ways people run it: a global install from the
 * clone (npm install -g), `npm start`, `npx wharf`, and the systemd unit in contrib/. Each test
 * signals the process a user or supervisor would signal (npm's pid, not Wharf's), holds an upload
 * half-sent across the stop to show the drain, and checks the port is free afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, REPO_ROOT, WHARF_BIN, freePort, get, run } from './helpers/wharf.js';

const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string>; scripts: Record<string, string> };

/** The environment without npm's per-run variables (the tests may themselves run under `npm test`). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, ...extra };
}

interface Site {
  readonly root: string;
  readonly configFile: string;
  readonly systemDrive: string;
  readonly port: number;
}

/** A copy of test/fixtures/lifecycle with its port and paths filled in. */
async function prepareSite(): Promise<Site> {
  const port = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'wharf-life-'));
  chmodSync(root, 0o755);
  cpSync(join(FIXTURES, 'lifecycle'), root, { recursive: true });
  cpSync(join(FIXTURES, 'zerodrop', 'byte-count.mjs'), join(root, 'byte-count.mjs'));
  const configFile = join(root, 'applicationHost.config');
  writeFileSync(configFile, readFileSync(configFile, 'utf8').split('{{PORT}}').join(String(port)).split('{{ROOT}}').join(root));
  return { root, configFile, systemDrive: join(root, 'systemdrive'), port };
}

/** A process whose output (stdout and stderr of it and everything it starts) is collected. */
interface Watched {
  readonly child: ChildProcess;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Settles with the exit code or signal of the spawned process itself. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function watch(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Watched {
  // Its own session, as a service or a terminal job has: no controlling terminal, and signals the
  // test sends go to the one pid it names.
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    output: () => out,
    exited,
    async waitFor(re, timeoutMs = 20000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** Running, not a zombie waiting to be collected (orphans of this sandbox's init may stay zombies). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function gone(pid: number, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (running(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} is still running`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Nothing listens on the port any more: this process can take it. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

/**
 * A POST /count whose body is half sent: the server holds it in progress until `finish` sends the
 * rest; the answer is the number of body bytes the handler read. Resolves once the running server
 * lists it (`wharf list requests`).
 */
async function halfSentUpload(port: number, configFile: string): Promise<{ finish(): Promise<string> }> {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write('POST /count HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345');
  const deadline = Date.now() + 20000;
  for (;;) {
    const r = await run(process.execPath, [WHARF_BIN, 'list', 'requests', '--config', configFile]);
    if (/^REQUEST "[^"]+" \(url:POST \/count/m.test(r.stdout)) break;
    if (Date.now() > deadline) throw new Error(`the upload never showed in wharf list requests: ${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    async finish() {
      socket.write('67890');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, 20000)))]);
      clearTimeout(timer);
      socket.destroy();
      return answer;
    },
  };
}

function assertCompleted(answer: string): void {
  assert.match(answer, /^HTTP\/1\.1 200 /, `the upload in progress finished: ${answer}`);
  assert.match(answer, /\r\n\r\n10$/, 'and its handler read the whole body');
}

function editMimeType(site: Site, mimeType: string): void {
  const text = readFileSync(site.configFile, 'utf8').replace(/(fileExtension="\.txt" mimeType=")[^"]*"/, `$1${mimeType}"`);
  writeFileSync(site.configFile, text);
}

const prefix = mkdtempSync(join(tmpdir(), 'wharf-prefix-'));
const elsewhere = mkdtempSync(join(tmpdir(), 'wharf-elsewhere-'));
let globalWharf = '';

before(async () => {
  // `npm install -g .` from the clone, into a private prefix: npm links the folder and puts the
  // `wharf` command in <prefix>/bin. Offline and without scripts (dist/ is built already).
  const r = await run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--ignore-scripts', '--no-audit', '--no-fund', REPO_ROOT], 60000);
  assert.equal(r.code, 0, `npm install -g failed: ${r.stdout}${r.stderr}`);
  globalWharf = join(prefix, 'bin', 'wharf');
});

after(() => {
  rmSync(prefix, { recursive: true, force: true });
});

test('the package is not npm\'s unrelated "wharf"; a global install from the clone gives the wharf command, and npx finds it', async () => {
  assert.notEqual(PACKAGE.name, 'wharf', 'the registry\'s "wharf" is another project (Docker orchestration)');
  assert.equal(PACKAGE.name, 'wharf-server');
  assert.deepEqual(Object.keys(PACKAGE.bin), ['wharf']);
  assert.ok(lstatSync(globalWharf).isSymbolicLink());
  assert.equal(readlinkSync(globalWharf), '../lib/node_modules/wharf-server/bin/wharf.js');

  const version = await run(globalWharf, ['--version']);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, 'wharf 0.1.0\n');
  // From a folder that is not the clone, npx resolves the installed command, never the registry's
  // package: offline, a registry lookup would fail.
  const npx = spawn('npx', ['--offline', 'wharf', '--version'], { cwd: elsewhere, env: cleanEnv({ npm_config_prefix: prefix }), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  npx.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise((resolve) => npx.once('exit', resolve));
  assert.equal(code, 0, out);
  assert.equal(out, 'wharf 0.1.0\n');
});

test('the global wharf serves a folder from another directory; wharf status reports it and wharf stop stops it (exit 3 once stopped)', async () => {
  const port = await freePort();
  const site = mkdtempSync(join(tmpdir(), 'wharf-folder-'));
  chmodSync(site, 0o755);
  writeFileSync(join(site, 'index.html'), '<p>served from elsewhere</p>\n');
  const env = cleanEnv({ PATH: `${join(prefix, 'bin')}:${process.env['PATH'] ?? ''}` });
  const w = watch('wharf', ['start', '--root', site, '--port', String(port), '--system-drive', join(site, 'sd')], { cwd: elsewhere, env });
  try {
    const pid = Number((await w.waitFor(/Wharf is serving .*; pid (\d+)/))[1]);
    assert.equal(pid, w.child.pid, 'the global command is Wharf itself: no launcher in between');
    assert.doesNotMatch(w.output(), /launched by/);
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '<p>served from elsewhere</p>\n');

    const status = await run(globalWharf, ['status', '--port', String(port)]);
    assert.equal(status.code, 0, status.stderr);
    const lines = status.stdout.split('\n');
    assert.equal(lines[0], 'Status for Wharf ( W3SVC ) : Running');
    assert.match(status.stdout, new RegExp(`^  pid: +${pid}$`, 'm'));
    assert.match(status.stdout, /^  uptime: +\d\d:\d\d:\d\d \(since \d{4}-\d\d-\d\dT[\d:.]+Z\)$/m);
    assert.match(status.stdout, /^  configuration: +\S+\/assets\/default\/applicationHost\.config \(generation 1\)$/m);
    assert.match(status.stdout, /^  sites: +1 started, 0 stopped$/m);
    assert.match(status.stdout, /^  application pools: +1 started, 0 stopped; \d+ worker process(es)?, \d+ requests? in flight$/m);
    assert.match(status.stdout, new RegExp(`^SITE "Default Web Site" \\(id:1,bindings:http/\\*:${port}:,state:Started\\)$`, 'm'));
    assert.match(status.stdout, /^APPPOOL "DefaultAppPool" \(.*state:Started\)$/m);

    const stop = await run(globalWharf, ['stop', '--port', String(port)]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, `The Wharf service (pid ${pid}) is stopping.\nThe Wharf service was stopped successfully.\n`);
    assert.deepEqual(await w.exited, { code: 0, signal: null }, 'wharf stop returned once the main process had exited');
    assert.match(w.output(), /wharf stop: draining/);
    assert.ok(await portFree(port));

    const after = await run(globalWharf, ['status', '--port', String(port)]);
    assert.equal(after.code, 3);
    assert.equal(after.stdout, 'Status for Wharf ( W3SVC ) : Stopped\n');
    assert.match(after.stderr, /Wharf is not running for .*nothing answers on its admin socket/);
    const again = await run(globalWharf, ['stop', '--port', String(port)]);
    assert.equal(again.code, 3);
    assert.equal(again.stdout, 'The Wharf service is not started.\n');
  } finally {
    if (running(w.child.pid!)) w.child.kill('SIGKILL');
  }
});

test('npm start: SIGTERM to npm (not Wharf) drains, the upload in progress finishes, npm exits when Wharf has, the port is free', async () => {
  assert.match(PACKAGE.scripts['start']!, /^exec node bin\/wharf\.js start/, 'exec: npm passes SIGTERM to Wharf itself, not to a shell that dies of it');
  const site = await prepareSite();
  const w = watch('npm', ['start', '--silent', '--', '--config', site.configFile, '--system-drive', site.systemDrive], { cwd: REPO_ROOT, env: cleanEnv() });
  let wharfPid = 0;
  try {
    wharfPid = Number((await w.waitFor(/Wharf is serving .*; pid (\d+)/))[1]);
    assert.deepEqual(childrenOf(w.child.pid!), [wharfPid], 'npm runs Wharf directly (no sh in between)');
    await w.waitFor(/launched by npm start .*\(pid \d+\)/);
    const upload = await halfSentUpload(site.port, site.configFile);
    process.kill(w.child.pid!, 'SIGTERM');
    await w.waitFor(/SIGTERM: draining/);
    assertCompleted(await upload.finish());
    const exit = await w.exited;
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `npm exit ${JSON.stringify(exit)}`);
    assert.match(w.output(), /\binfo +stopped\n/);
    assert.equal(running(wharfPid), false, 'Wharf exited before npm did');
    assert.ok(await portFree(site.port), 'the port is free once npm has exited');
  } finally {
    if (wharfPid !== 0 && running(wharfPid)) process.kill(wharfPid, 'SIGKILL');
  }
});

test('npm start: SIGHUP to npm (which dies of it without passing it on) reloads Wharf, which keeps serving', async () => {
  const site = await prepareSite();
  const w = watch('npm', ['start', '--silent', '--', '--config', site.configFile, '--system-drive', site.systemDrive], { cwd: REPO_ROOT, env: cleanEnv() });
  let wharfPid = 0;
  try {
    wharfPid = Number((await w.waitFor(/Wharf is serving .*; pid (\d+)/))[1]);
    assert.equal((await get(site.port, '/small.txt')).headers['content-type'], 'text/plain');
    editMimeType(site, 'text/x-reloaded');
    process.kill(w.child.pid!, 'SIGHUP');
    await w.waitFor(/the launcher npm start .* is gone without passing a signal on \(npm does not pass SIGHUP on\): .*applicationHost\.config (re-read and applied|is unchanged)/);
    assert.equal((await get(site.port, '/small.txt')).headers['content-type'], 'text/x-reloaded');
    assert.ok(running(wharfPid), 'Wharf keeps running');
    const status = await run(process.execPath, [WHARF_BIN, 'status', '--config', site.configFile]);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /\(generation 2\)/);
    const stop = await run(process.execPath, [WHARF_BIN, 'stop', '--config', site.configFile]);
    assert.equal(stop.code, 0, stop.stderr);
    await gone(wharfPid);
    assert.ok(await portFree(site.port));
  } finally {
    if (wharfPid !== 0 && running(wharfPid)) process.kill(wharfPid, 'SIGKILL');
  }
});

/** `npx wharf start …` from another folder, the command found in the global prefix: npm → sh -c → Wharf. */
async function npxStart(site: Site): Promise<{ w: Watched; wharfPid: number; shPid: number }> {
  const w = watch('npx', ['--offline', 'wharf', 'start', '--config', site.configFile, '--system-drive', site.systemDrive], {
    cwd: elsewhere,
    env: cleanEnv({ npm_config_prefix: prefix }),
  });
  const wharfPid = Number((await w.waitFor(/Wharf is serving .*; pid (\d+)/))[1]);
  const [shPid] = childrenOf(w.child.pid!);
  assert.ok(shPid !== undefined && cmdline(shPid)[1] === '-c', 'npx runs the command through sh -c');
  assert.deepEqual(childrenOf(shPid), [wharfPid]);
  await w.waitFor(/launched by sh -c .* under npm exec .*\(pid \d+\)/);
  return { w, wharfPid, shPid };
}

test('npx wharf start: SIGTERM to npx (npm passes it to sh, which dies of it) still drains Wharf and frees the port', async () => {
  const site = await prepareSite();
  const { w, wharfPid } = await npxStart(site);
  try {
    const upload = await halfSentUpload(site.port, site.configFile);
    process.kill(w.child.pid!, 'SIGTERM');
    await w.waitFor(/the launcher sh -c .* was stopped: draining/);
    assertCompleted(await upload.finish());
    await gone(wharfPid);
    await w.waitFor(/\binfo +stopped\n/);
    assert.ok(await portFree(site.port));
  } finally {
    if (running(wharfPid)) process.kill(wharfPid, 'SIGKILL');
  }
});

test('npx wharf start: SIGHUP to npx reloads; wharf stop then drains like SIGTERM and returns when Wharf has exited', async () => {
  const site = await prepareSite();
  const { w, wharfPid, shPid } = await npxStart(site);
  try {
    editMimeType(site, 'text/x-reloaded');
    process.kill(w.child.pid!, 'SIGHUP');
    await w.waitFor(/the launcher npm exec .* is gone without passing a signal on \(npm does not pass SIGHUP on\): .*applicationHost\.config (re-read and applied|is unchanged)/);
    assert.equal((await get(site.port, '/small.txt')).headers['content-type'], 'text/x-reloaded');
    assert.ok(running(wharfPid) && running(shPid), 'Wharf (and its sh) keep running');

    const upload = await halfSentUpload(site.port, site.configFile);
    const stopping = run(process.execPath, [WHARF_BIN, 'stop', '--config', site.configFile]);
    await w.waitFor(/wharf stop: draining/);
    assertCompleted(await upload.finish());
    const stop = await stopping;
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /was stopped successfully/);
    assert.equal(running(wharfPid), false);
    assert.ok(await portFree(site.port));
  } finally {
    if (running(wharfPid)) process.kill(wharfPid, 'SIGKILL');
  }
});

/** contrib/wharf.service's [Service] settings (the ones this test needs; one value each). */
function unitSettings(): Map<string, string[]> {
  const text = readFileSync(join(REPO_ROOT, 'contrib', 'wharf.service'), 'utf8');
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

/** systemd's command-line rules for the forms the unit uses: words, `${VAR}` (one word), `$VAR` (split). */
function systemdCommand(line: string, env: Record<string, string>, mainPid?: number): string[] {
  const vars: Record<string, string> = { ...env, ...(mainPid !== undefined ? { MAINPID: String(mainPid) } : {}) };
  const words: string[] = [];
  for (const word of line.trim().split(/\s+/)) {
    const whole = /^\$\{(\w+)\}$/.exec(word);
    const split = /^\$(\w+)$/.exec(word);
    if (whole) words.push(vars[whole[1]!] ?? '');
    else if (split) words.push(...(vars[split[1]!] ?? '').split(/\s+/).filter(Boolean));
    else words.push(word.replace(/\$\{(\w+)\}/g, (_m, n: string) => vars[n] ?? ''));
  }
  return words;
}

/** systemd resolves a bare ExecStart name in its fixed search path, never $PATH. */
function resolveExecutable(name: string, searchPath: string[]): string {
  if (name.startsWith('/')) return name;
  const found = searchPath.map((d) => join(d, name)).find((p) => existsSync(p));
  assert.ok(found !== undefined, `${name} is not in ${searchPath.join(':')}`);
  return found;
}

test('the systemd unit (contrib/wharf.service): its ExecStart serves, ExecReload (SIGHUP) applies an edit, KillSignal drains and exits 0', async () => {
  const unit = unitSettings();
  // docs/systemd.md shows the same unit (without its comments).
  const settingsOf = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const doc = /```ini\n([\s\S]*?)```/.exec(readFileSync(join(REPO_ROOT, 'docs', 'systemd.md'), 'utf8'));
  assert.deepEqual(settingsOf(doc?.[1] ?? ''), settingsOf(readFileSync(join(REPO_ROOT, 'contrib', 'wharf.service'), 'utf8')));
  assert.deepEqual(unit.get('Type'), ['exec']);
  assert.deepEqual(unit.get('KillMode'), ['mixed'], 'only Wharf gets SIGTERM; its workers are its to stop');
  assert.deepEqual(unit.get('KillSignal'), ['SIGTERM']);
  assert.ok(Number(unit.get('TimeoutStopSec')![0]) > 90, 'longer than the default shutdownTimeLimit (90 s)');
  const site = await prepareSite();
  // The unit's environment, with the overrides `systemctl edit wharf` would add for this site.
  const unitEnv: Record<string, string> = {};
  for (const assignment of unit.get('Environment') ?? []) {
    const eq = assignment.indexOf('=');
    unitEnv[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  assert.deepEqual(Object.keys(unitEnv).sort(), ['WHARF_CONFIG', 'WHARF_SYSTEM_DRIVE']);
  unitEnv['WHARF_CONFIG'] = site.configFile;
  unitEnv['WHARF_SYSTEM_DRIVE'] = site.systemDrive;
  // What systemd gives a system service: its fixed PATH (here the npm prefix's bin stands for
  // /usr/local/bin, where `npm install -g` puts `wharf`), no terminal, no HOME, no npm variables.
  const node = process.execPath.slice(0, process.execPath.lastIndexOf('/'));
  const searchPath = [join(prefix, 'bin'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  const env = { PATH: [...searchPath, node].join(':'), LANG: 'C.UTF-8', INVOCATION_ID: 'f'.repeat(32), ...unitEnv };
  const [exe, ...args] = systemdCommand(unit.get('ExecStart')![0]!, env);
  const w = watch(resolveExecutable(exe!, searchPath), args, { cwd: '/', env });
  const mainPid = w.child.pid!;
  try {
    assert.equal(Number((await w.waitFor(/Wharf is serving .*; pid (\d+)/))[1]), mainPid, 'Wharf is the main process');
    assert.ok(w.output().includes(`Wharf is serving ${site.configFile} (system drive ${site.systemDrive})`), 'the config and system drive come from Environment=');
    assert.equal((await get(site.port, '/small.txt')).headers['content-type'], 'text/plain');

    // systemctl reload wharf
    editMimeType(site, 'text/x-reloaded');
    const [reloadExe, ...reloadArgs] = systemdCommand(unit.get('ExecReload')![0]!, env, mainPid);
    assert.equal((await run(resolveExecutable(reloadExe!, searchPath), reloadArgs)).code, 0);
    await w.waitFor(/SIGHUP: .*applicationHost\.config (re-read and applied|is unchanged)/);
    assert.equal((await get(site.port, '/small.txt')).headers['content-type'], 'text/x-reloaded');
    assert.ok(running(mainPid));

    // systemctl stop wharf: KillSignal to the main process (KillMode=mixed)
    const upload = await halfSentUpload(site.port, site.configFile);
    process.kill(mainPid, unit.get('KillSignal')![0] as NodeJS.Signals);
    await w.waitFor(/SIGTERM: draining/);
    assertCompleted(await upload.finish());
    assert.deepEqual(await w.exited, { code: 0, signal: null }, 'a clean stop: systemd records success, Restart=on-failure does not restart');
    assert.ok(await portFree(site.port));
  } finally {
    if (running(mainPid)) process.kill(mainPid, 'SIGKILL');
  }
});

test('wharf stop and wharf status: usage errors exit 2; `wharf stop site X` is still appcmd\'s', async () => {
  const bad = await run(process.execPath, [WHARF_BIN, 'status', '--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unexpected argument "--bogus"/);
  const both = await run(process.execPath, [WHARF_BIN, 'stop', '--config', '/x.config', '--port', '80']);
  assert.equal(both.code, 2);
  const missingConfig = join(mkdtempSync(join(tmpdir(), 'wharf-none-')), 'applicationHost.config');
  const site = await run(process.execPath, [WHARF_BIN, 'stop', 'site', 'Default Web Site', '--config', missingConfig]);
  assert.equal(site.code, 1, 'appcmd: the server cannot be reached');
  assert.match(site.stderr, /^ERROR \( message:Wharf is not running for /);
});
