// Process hygiene: a worker gets a clean environment (an allow-list and its pool's variables,
// never the launching shell's tokens), no descriptor the launcher left open reaches a worker or
// the programs it starts, and log files are readable by their owner and group only.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { eventually, get, rawRequest, run, tempDir, startWharf, WHARF_BIN, type RawResponse, type WharfProcess } from './helpers/wharf.js';
import { WORKER_ENVIRONMENT_ALLOW_LIST } from '../src/was/worker-environment.js';

const isRoot = process.getuid?.() === 0;
/** Variables of the shell that starts Wharf which no pool may see. */
const SECRETS = { WHARF_TEST_SECRET: 'token-of-the-launching-shell', AWS_SECRET_ACCESS_KEY: 'not-for-pools' };
/** The descriptor numbers Wharf inherits: 41 is above node's contiguous 0–15 (so not close-on-exec). */
const MARKER_FD = 41;
const PIPE_FD = 42;

let w: WharfProcess;
let content: string;
let marker: string;
let launchEnv: Record<string, string>;

before(async () => {
  content = tempDir('wharf-hygiene-content-');
  chmodSync(content, 0o755);
  writeFileSync(join(content, 'hello.txt'), 'hello from %HYGIENE_CONTENT%\n');
  chmodSync(join(content, 'hello.txt'), 0o644);
  marker = join(tempDir('wharf-hygiene-fd-'), 'inherited-marker');
  writeFileSync(marker, 'a file the launcher left open\n');
  const fd = openSync(marker, 'r');
  const extra = { ...SECRETS, HYGIENE_CONTENT: content, LC_TIME: 'C', TZ: 'UTC' };
  launchEnv = { ...(process.env as Record<string, string>), ...extra };
  // stdio[3] is a pipe as a launcher's status pipe would be; 4–40 are not opened; 41 a file; 42 a pipe.
  const extraStdio: Array<'ignore' | 'pipe' | number> = ['pipe', ...Array<'ignore'>(MARKER_FD - 4).fill('ignore'), fd, 'pipe'];
  w = await startWharf({ fixture: 'hygiene', env: extra, extraStdio });
  closeSync(fd);
});
after(async () => {
  await w?.stop();
});

function environ(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = entry.indexOf('=');
    if (i > 0) m.set(entry.slice(0, i), entry.slice(i + 1));
  }
  return m;
}

interface Fd {
  readonly fd: number;
  readonly target: string;
  readonly closeOnExec: boolean;
}

function descriptors(pid: number): Fd[] {
  const out: Fd[] = [];
  for (const n of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${n}`, 'utf8'))![1]!, 8);
      out.push({ fd: Number(n), target: readlinkSync(`/proc/${pid}/fd/${n}`), closeOnExec: (flags & 0o2000000) !== 0 });
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

function ppid(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** This server's pre-started spare worker. */
async function spare(): Promise<number> {
  return eventually(() => {
    for (const d of readdirSync('/proc')) {
      if (/^\d+$/.test(d) && cmdline(Number(d)) === 'wharf-worker --spare' && ppid(Number(d)) === w.child.pid) return Number(d);
    }
    return undefined;
  }, 10000);
}

const json = (r: RawResponse): Record<string, unknown> => JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;

/**
 * The variables a worker starts with: the allow-listed ones Wharf had, the pool's own, APP_POOL_ID,
 * TMPDIR and WHARF_RUNTIME_DIR, and as root the pool user's USER/LOGNAME/HOME and the identity
 * variables the worker consumes (WHARF_WORKER_*: still in /proc/<pid>/environ, gone from process.env).
 */
function expectedNames(pool: readonly string[], identity: boolean): string[] {
  const names = new Set<string>(['APP_POOL_ID', 'TMPDIR', 'WHARF_RUNTIME_DIR', ...pool]);
  for (const n of WORKER_ENVIRONMENT_ALLOW_LIST) if (launchEnv[n] !== undefined) names.add(n);
  for (const n of Object.keys(launchEnv)) if (/^LC_[A-Z_]+$/.test(n)) names.add(n);
  names.add('PATH');
  if (isRoot) {
    for (const n of ['USER', 'LOGNAME', 'HOME']) names.add(n);
    if (identity) for (const n of ['WHARF_WORKER_UID', 'WHARF_WORKER_GID', 'WHARF_WORKER_USER']) names.add(n);
  }
  return [...names].sort();
}

test("a worker's environment is the allow-list and its pool's environmentVariables, never the launching shell's", async () => {
  const sparePid = await spare();
  const spareEnv = environ(sparePid);
  for (const s of Object.keys(SECRETS)) assert.ok(!spareEnv.has(s), `the spare worker does not start with ${s}`);

  // EnvSpare takes the spare: its process.env is set from the Init message.
  const a = await get(w.port, '/env.app');
  assert.equal(a.status, 200);
  const aPid = Number(a.headers['x-pid']);
  assert.equal(aPid, sparePid, 'the pool took the pre-started spare');
  const aEnv = json(a)['env'] as Record<string, string>;
  assert.deepEqual(Object.keys(aEnv).sort(), expectedNames(['POOL_GREETING'], false));
  assert.equal(aEnv['POOL_GREETING'], 'spare');
  assert.equal(aEnv['APP_POOL_ID'], 'EnvSpare');
  assert.equal(aEnv['PATH'], launchEnv['PATH']);
  assert.equal(aEnv['LC_TIME'], 'C');
  for (const s of Object.keys(SECRETS)) assert.ok(!environ(aPid).has(s), `/proc/${aPid}/environ has no ${s}`);

  // NODE_OPTIONS makes EnvFresh a fresh process: /proc/<pid>/environ is exactly what it was given.
  const b = await get(w.port, '/fresh/env.app');
  assert.equal(b.status, 200);
  const bPid = Number(b.headers['x-pid']);
  assert.match(w.output(), new RegExp(`started worker ${bPid} for pool EnvFresh(?! .*spare)`));
  const procEnv = environ(bPid);
  assert.deepEqual([...procEnv.keys()].sort(), expectedNames(['POOL_GREETING', 'NODE_OPTIONS'], isRoot));
  assert.equal(procEnv.get('POOL_GREETING'), 'fresh');
  assert.equal(procEnv.get('NODE_OPTIONS'), '--no-deprecation');
  assert.equal(procEnv.get('APP_POOL_ID'), 'EnvFresh');
  if (isRoot) assert.equal(procEnv.get('USER'), 'wharf-envfresh');
  const bEnv = json(b)['env'] as Record<string, string>;
  assert.deepEqual(Object.keys(bEnv).sort(), expectedNames(['POOL_GREETING', 'NODE_OPTIONS'], false), 'the identity variables are consumed');

  // A program the application starts (a CGI script, a shell) inherits the same.
  const c = json(await get(w.port, '/child.app'))['env'] as string[];
  assert.ok(c.includes('POOL_GREETING') && c.includes('PATH'));
  for (const s of [...Object.keys(SECRETS), 'HYGIENE_CONTENT']) assert.ok(!c.includes(s), `a child of pool code has no ${s}`);
});

test('%VAR% in applicationHost.config still expands from Wharf\'s environment inside workers that do not have it', async () => {
  for (const path of ['/hello.txt', '/fresh/hello.txt']) {
    const r = await get(w.port, path);
    assert.equal(r.status, 200, path);
    assert.equal(r.body.toString(), 'hello from %HYGIENE_CONTENT%\n');
  }
  const env = json(await get(w.port, '/env.app'))['env'] as Record<string, string>;
  assert.equal(env['HYGIENE_CONTENT'], undefined, 'the value travels with the configuration, not the environment');
});

test("descriptors the launcher left open are closed by Wharf and never reach a worker or a program it starts", async () => {
  const pids = [Number((await get(w.port, '/env.app')).headers['x-pid']), Number((await get(w.port, '/fresh/env.app')).headers['x-pid']), await spare()];
  for (const pid of [w.child.pid!, ...pids]) {
    const fds = descriptors(pid);
    assert.ok(!fds.some((f) => f.target === marker), `process ${pid} does not hold the launcher's file`);
    // A worker keeps 0 (/dev/null), 1 and 2 (its output, read by the main process), 3 (its
    // request channel) and 4 (WAS's control channel); every other descriptor is node's own and
    // close-on-exec.
    const leaking = fds.filter((f) => f.fd > (pid === w.child.pid ? 2 : 4) && !f.closeOnExec);
    assert.deepEqual(leaking, [], `process ${pid} has no inheritable descriptor beyond stdio and its channels`);
  }
  for (const pid of pids) {
    assert.match(descriptors(pid).find((f) => f.fd === 3)!.target, /^socket:\[\d+\]$/, 'fd 3 is the request channel');
    assert.match(descriptors(pid).find((f) => f.fd === 4)!.target, /^socket:\[\d+\]$/, 'fd 4 is the control channel');
  }
  for (const path of ['/child.app', '/fresh/child.app']) {
    const fds = json(await get(w.port, path))['fds'] as string[];
    assert.deepEqual(fds, ['0', '1', '2'], `${path}: a program pool code starts gets stdio only`);
  }
  // Wharf says what it closed; 41 and 42 are above node's contiguous close-on-exec range.
  const line = await w.waitForOutput(/closed \d+ descriptor\(s\) inherited without close-on-exec: .*/);
  assert.ok(line.includes(`fd ${MARKER_FD} (${marker})`), line);
  assert.match(line, new RegExp(`fd ${PIPE_FD} \\((?:socket|pipe):\\[\\d+\\]\\)`));
  // Nobody holds the other end of fd 42 any more: the launcher reads end-of-file while Wharf runs.
  const launcherEnd = (w.child.stdio as unknown as Readable[])[PIPE_FD]!;
  // (Usually long ago: node reads it as soon as the stream exists.)
  if (!launcherEnd.readableEnded) {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no end-of-file on the inherited pipe: some process still holds it')), 10000);
      launcherEnd.once('end', () => {
        clearTimeout(t);
        resolve();
      });
      launcherEnd.resume();
    });
  }
  assert.equal(w.child.exitCode, null, 'Wharf still runs');
});

test('log files are 0640 in 0750 folders, owned by root and wharf-logs as root: W3C, IIS, NCSA, httperr, pool output', async () => {
  assert.equal((await get(w.port, '/hello.txt?session=secret')).status, 200);
  assert.equal((await get(w.port, '/hello.txt', { Host: 'iis.test' })).status, 200);
  assert.equal((await get(w.port, '/hello.txt', { Host: 'ncsa.test' })).status, 200);
  assert.equal((await get(w.port, '/print.app?n=1')).status, 200);
  await rawRequest(w.port, 'GET /\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const logs = join(w.systemDrive, 'inetpub', 'logs');
  const folders: Array<[string, RegExp]> = [
    [join(logs, 'LogFiles', 'W3SVC1'), /^u_ex\d{6}\.log$/],
    [join(logs, 'LogFiles', 'W3SVC2'), /^u_in\d{6}\.log$/],
    [join(logs, 'LogFiles', 'W3SVC3'), /^u_nc\d{6}\.log$/],
    [join(w.systemDrive, 'Windows', 'System32', 'LogFiles', 'HTTPERR'), /^httperr1\.log$/],
    [join(logs, 'AppPools', 'EnvSpare'), /^output_\d{8}\.log$/],
  ];
  const group = isRoot ? Number(spawnSync('getent', ['group', 'wharf-logs'], { encoding: 'utf8' }).stdout.split(':')[2]) : process.getgid!();
  assert.ok(Number.isInteger(group), 'the wharf-logs group exists');
  for (const [dir, name] of folders) {
    // Log lines are buffered and flushed shortly after: wait for the file and its first line.
    const file = await eventually(() => {
      try {
        const found = readdirSync(dir).find((n) => name.test(n));
        return found !== undefined && statSync(join(dir, found)).size > 0 ? found : undefined;
      } catch {
        return undefined;
      }
    }, 10000);
    const d = statSync(dir);
    const f = statSync(join(dir, file));
    assert.equal((d.mode & 0o7777).toString(8), '750', `${dir} is 0750`);
    assert.equal((f.mode & 0o7777).toString(8), '640', `${file} is 0640`);
    assert.equal(f.size > 0, true);
    if (isRoot) {
      for (const [what, st] of [[dir, d], [file, f]] as const) {
        assert.equal(st.uid, 0, `${what} belongs to root`);
        assert.equal(st.gid, group, `${what} belongs to wharf-logs`);
      }
    }
  }
  assert.match(w.output(), isRoot ? /log files are 0640 in 0750 folders, owned by root:wharf-logs \(gid \d+\)/ : /owned by Wharf's user/);
});

test('--log-owner naming a user that does not exist stops start-up with LSN_LOG_OWNER', async () => {
  const drive = tempDir('wharf-hygiene-drive-');
  const r = await run(process.execPath, [WHARF_BIN, 'start', '--port', '1', '--system-drive', drive, '--log-owner', 'no-such-wharf-user:adm'], 15000);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /wharf: --log-owner no-such-wharf-user:adm: there is no user named no-such-wharf-user/);
});
