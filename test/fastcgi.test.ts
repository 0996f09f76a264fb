// FastCgiModule end to end (fixture fastcgi): a real Wharf running real /usr/bin/php-cgi processes
// (and a real php-fpm by address), driven by real clients (node's http, curl, the load client).
// Each test checks what a user sees: what PHP's $_SERVER holds, statuses, headers and bodies, the
// error pages' text, the W3C log, and the processes in /proc (who runs PHP, whose children they
// are, when they are replaced).
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { commandLine, parentPid, rssMiB, workerPids } from '../bench/procs.js';
import { runLoad } from './helpers/load.js';
import { isRoot, needs, phpCgi, phpFpm, phpFpmPath, tool } from './helpers/skip.js';
import { alive, eventually, freePort, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const SITE = 1;
const POOL = 'PhpPool';
const HYGIENE_POOL = 'PhpHygienePool';

let w: WharfProcess | undefined;
let www = '';
let fpmDir = '';
let fpmPort = 0;
let fpm: ChildProcess | undefined;

before(async () => {
  if (!phpCgi().met) return;
  // php-fpm's socket folder: the pool's user must reach the socket (mkdtemp makes folders 0700).
  fpmDir = tempDir('wharf-fpm-');
  chmodSync(fpmDir, 0o755);
  fpmPort = await freePort();
  w = await startWharf({ fixture: 'fastcgi', vars: { FPM_SOCK: join(fpmDir, 'fpm.sock'), FPM_PORT: String(fpmPort) } });
  www = join(w.root, 'www');
  // Where the crash scripts count their runs: written by the pool's user.
  mkdirSync(join(w.root, 'state'));
  chmodSync(join(w.root, 'state'), 0o777);
  writeFileSync(join(w.root, 'monitor.txt'), 'version 1\n');
});

after(async () => {
  await stopFpm();
  if (w === undefined) return;
  const poolUids = new Set(workerPids(w.child.pid!).map(uidOf));
  await w.stop();
  // The pools' users are removed when this file's process exits (helpers/machine-state.ts), but
  // not while a process runs as them: the php-cgi processes the workers ended may not be reaped yet.
  if (isRoot) await eventually(() => !readdirSync('/proc').some((d) => /^\d+$/.test(d) && poolUids.has(uidOfQuiet(Number(d)))), 5000).catch(() => undefined);
});

/** php-fpm ends its workers on SIGTERM (on SIGKILL they would outlive it). */
async function stopFpm(): Promise<void> {
  if (fpm === undefined || fpm.exitCode !== null || fpm.signalCode !== null) return;
  const gone = new Promise((r) => fpm!.once('exit', r));
  fpm.kill('SIGTERM');
  const timer = setTimeout(() => fpm!.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

function ready(t: TestContext): boolean {
  return needs(t, phpCgi());
}

// ---- A client and what /proc says ---------------------------------------------------------------

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The client's own port (what PHP should see as REMOTE_PORT). */
  readonly localPort: number;
  text(): string;
  json<T = PhpVars>(): T;
}

interface SendOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/** One request on its own connection; the path goes on the wire as written. */
function send(path: string, options: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: w!.port, path, method: options.method ?? 'GET', headers: options.headers, agent: false });
    req.setTimeout(options.timeoutMs ?? 30000, () => req.destroy(new Error(`no answer to ${path} within ${options.timeoutMs ?? 30000} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      const localPort = req.socket?.localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          localPort,
          text: () => body.toString('utf8'),
          json: () => JSON.parse(body.toString('utf8')),
        });
      });
    });
    req.end(options.body);
  });
}

/** What vars.php answers. */
interface PhpVars {
  readonly server: Record<string, string | undefined>;
  readonly post: Record<string, string>;
  readonly sapi: string;
  readonly pid: number;
  readonly ppid: number;
  readonly uid: number;
  readonly greeting: string | false;
  readonly app: string | false;
}

async function vars(path: string, options: SendOptions = {}): Promise<PhpVars> {
  const r = await send(path, options);
  assert.equal(r.status, 200, `${path}: ${r.text().slice(0, 2000)}`);
  return r.json();
}

/** The detailed error page's text, tags and entities removed. */
function pageText(r: Reply): string {
  return r
    .text()
    .replace(/<style>[\s\S]*?<\/style>/, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

function worker(pool = POOL): number {
  const pids = workerPids(w!.child.pid!, pool);
  assert.equal(pids.length, 1, `one worker for ${pool}: ${pids.join(', ')}`);
  return pids[0]!;
}


/** Live php-cgi processes of one fastCgi application (told apart by `-d wharf.app=<name>`), any parent. */
function phpProcesses(app: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = commandLine(Number(d));
    if (cmd.startsWith('/usr/bin/php-cgi ') && cmd.includes(` wharf.app=${app}`) && alive(Number(d))) out.push(Number(d));
  }
  return out;
}

/** php-cgi processes of an application that are children of `parent`. */
function phpChildren(parent: number, app: string): number[] {
  return phpProcesses(app).filter((pid) => parentPid(pid) === parent);
}

/** Where a process's descriptor points ('socket:[inode]' …), '' when it has none. */
function readlinkFd(pid: number, fd: number): string {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return '';
  }
}

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

function uidOfQuiet(pid: number): number {
  try {
    return uidOf(pid);
  } catch {
    return -1;
  }
}

function w3c(path: string): Array<Record<string, string>> {
  return w!.w3cRecords(SITE).filter((r) => r['cs-uri-stem'] === path);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- 1. Server variables ------------------------------------------------------------------------

test("PHP's $_SERVER holds IIS's variables: script, path info, the URL as sent, server, client, application", async (t) => {
  if (!ready(t)) return;
  const path = '/vars.php/extra/p%20ath?a=1&b=%41';
  const r = await send(path, { headers: { 'X-Custom': 'custom value', Proxy: 'http://evil.test:3128', X_Under: 'forged', 'Accept-Language': 'de' } });
  assert.equal(r.status, 200, r.text());
  const v = r.json();
  const s = v.server;
  assert.equal(v.sapi, 'cgi-fcgi');
  assert.equal(s['GATEWAY_INTERFACE'], 'CGI/1.1');
  assert.equal(s['REQUEST_METHOD'], 'GET');
  assert.equal(s['SERVER_PROTOCOL'], 'HTTP/1.1');
  // The script and what follows it; PHP_SELF is the two together, as PHP under IIS shows it.
  assert.equal(s['SCRIPT_NAME'], '/vars.php');
  assert.equal(s['SCRIPT_FILENAME'], join(www, 'vars.php'));
  assert.equal(s['PATH_INFO'], '/extra/p ath');
  assert.equal(s['PHP_SELF'], '/vars.php/extra/p ath');
  // IIS's FastCGI module hands PHP the script's physical path as PATH_TRANSLATED (PHP on
  // Windows keeps it as ORIG_PATH_TRANSLATED before its own fix-up).
  assert.equal(s['PATH_TRANSLATED'], join(www, 'vars.php'));
  // The URL exactly as the client sent it, encoded characters and query included; URL decoded.
  assert.equal(s['REQUEST_URI'], path);
  assert.equal(s['UNENCODED_URL'], path);
  assert.equal(s['URL'], '/vars.php/extra/p ath');
  assert.equal(s['QUERY_STRING'], 'a=1&b=%41');
  // Server, connection, application.
  assert.match(s['SERVER_SOFTWARE']!, /^Microsoft-IIS\/10\.0/, 'PHP and IIS applications recognise IIS by this prefix');
  assert.equal(s['SERVER_NAME'], '127.0.0.1');
  assert.equal(s['SERVER_PORT'], String(w!.port));
  assert.equal(s['SERVER_PORT_SECURE'], '0');
  assert.equal(s['REMOTE_ADDR'], '127.0.0.1');
  assert.equal(s['REMOTE_PORT'], String(r.localPort));
  assert.equal(s['HTTPS'], 'off');
  assert.equal(s['DOCUMENT_ROOT'], www);
  assert.equal(s['APPL_PHYSICAL_PATH'], www + '/');
  assert.equal(s['APPL_MD_PATH'], '/LM/W3SVC/1/ROOT');
  assert.equal(s['INSTANCE_ID'], '1');
  assert.equal(s['INSTANCE_NAME'], 'Php');
  assert.equal(s['APP_POOL_ID'], POOL);
  // Headers as HTTP_*; not Proxy (httpoxy: it would pose as the proxy setting), not a name
  // with '_' (it would pass for the '-' header a proxy in front set).
  assert.equal(s['HTTP_X_CUSTOM'], 'custom value');
  assert.equal(s['HTTP_ACCEPT_LANGUAGE'], 'de');
  assert.equal(s['HTTP_HOST'], `127.0.0.1:${w!.port}`);
  assert.equal(s['HTTP_PROXY'], undefined);
  assert.equal(s['HTTP_X_UNDER'], undefined);
  // No body, no user.
  assert.equal(s['CONTENT_LENGTH'] ?? '', '');
  assert.equal(s['AUTH_TYPE'], '');
  assert.equal(s['REMOTE_USER'], '');
  // The application's environmentVariables, in the process's environment.
  assert.equal(v.greeting, 'hello from fastCgi');
  assert.equal(v.app, 'main');

  // Without extra path: PATH_INFO is empty, PATH_TRANSLATED is the script.
  const plain = (await vars('/vars.php')).server;
  assert.equal(plain['PATH_INFO'], '');
  assert.equal(plain['PATH_TRANSLATED'], join(www, 'vars.php'));
  assert.equal(plain['PHP_SELF'], '/vars.php');
  assert.equal(plain['REQUEST_URI'], '/vars.php');
  assert.equal(plain['QUERY_STRING'], '');
});

test('a POST: CONTENT_TYPE and CONTENT_LENGTH, and PHP parses the form', async (t) => {
  if (!ready(t)) return;
  const body = 'title=Hello+w%C3%B6rld&n=42';
  const v = await vars('/vars.php', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
  assert.equal(v.server['REQUEST_METHOD'], 'POST');
  assert.equal(v.server['CONTENT_TYPE'], 'application/x-www-form-urlencoded');
  assert.equal(v.server['CONTENT_LENGTH'], String(Buffer.byteLength(body)));
  assert.equal(v.server['HTTP_CONTENT_LENGTH'], undefined, 'CONTENT_LENGTH, not an HTTP_ copy');
  assert.deepEqual(v.post, { title: 'Hello wörld', n: '42' });
});

test('after a URL Rewrite rule: the script the rule chose, HTTP_X_ORIGINAL_URL and IIS_WasUrlRewritten; REQUEST_URI stays the client\'s', async (t) => {
  if (!ready(t)) return;
  const s = (await vars('/pretty/hello-world?x=%41')).server;
  assert.equal(s['SCRIPT_NAME'], '/vars.php');
  assert.equal(s['SCRIPT_FILENAME'], join(www, 'vars.php'));
  assert.equal(s['URL'], '/vars.php');
  assert.equal(s['QUERY_STRING'], 'slug=hello-world&x=%41', 'the rule\'s query, the client\'s appended');
  assert.equal(s['HTTP_X_ORIGINAL_URL'], '/pretty/hello-world?x=%41');
  assert.equal(s['IIS_WasUrlRewritten'], '1');
  assert.equal(s['REQUEST_URI'], '/pretty/hello-world?x=%41');
  assert.equal(s['UNENCODED_URL'], '/pretty/hello-world?x=%41');
  // Not rewritten: no such variables.
  const plain = (await vars('/vars.php')).server;
  assert.equal(plain['HTTP_X_ORIGINAL_URL'], undefined);
  assert.equal(plain['IIS_WasUrlRewritten'], undefined);
});

test('Basic authentication (curl --basic, a Wharf user): REMOTE_USER, AUTH_USER, AUTH_TYPE', async (t) => {
  if (!ready(t) || !needs(t, tool('curl'))) return;
  const add = await run(process.execPath, [WHARF_BIN, 'user', 'add', 'phpuser', '--password', 'php secret 7', '--system-drive', w!.systemDrive]);
  assert.equal(add.code, 0, add.stderr);
  const curl = (...args: string[]) => run('curl', ['-s', '-w', '\n%{http_code}', '--max-time', '10', ...args, `http://127.0.0.1:${w!.port}/auth/vars.php`]);
  const refused = await curl();
  assert.match(refused.stdout, /\n401$/);
  // A running server re-reads its users within seconds.
  const body = await eventually(async () => {
    const r = await curl('--basic', '-u', 'WHARF\\phpuser:php secret 7');
    return r.stdout.endsWith('\n200') ? r.stdout.slice(0, -4) : undefined;
  }, 15000);
  const s = (JSON.parse(body) as PhpVars).server;
  assert.equal(s['AUTH_TYPE'], 'Basic');
  assert.equal(s['AUTH_USER'], 'WHARF\\phpuser');
  assert.equal(s['REMOTE_USER'], 'WHARF\\phpuser');
  assert.equal(s['SCRIPT_NAME'], '/auth/vars.php');
});

// ---- 2. 50 MB both ways, memory flat ------------------------------------------------------------

const MiB = 1024 * 1024;
const TRANSFER_MIB = 50;
/**
 * How much the worker's or the listener's RSS may grow while the application does not read
 * (upload) or the client does not (download): a body held in memory shows here, whole.
 */
const HELD_BOUND_MIB = 40;
/**
 * … and over a whole 50 MB transfer, where node's garbage collector lets RSS rise by up to about
 * 30 MiB on a streamed upload (buffers freed but not yet collected).
 */
const TRANSFER_BOUND_MIB = 64;

/** Peak RSS growth of the worker and the listener since the watch started, sampled every 25 ms. */
class RssWatch {
  readonly #pids: { worker: number; listener: number };
  readonly #base: { worker: number; listener: number };
  readonly #peak: { worker: number; listener: number };
  readonly #timer: NodeJS.Timeout;

  /** Call once the pool's worker runs (after a first request). */
  constructor() {
    this.#pids = { worker: worker(), listener: w!.child.pid! };
    this.#base = { worker: rssMiB(this.#pids.worker)!, listener: rssMiB(this.#pids.listener)! };
    this.#peak = { ...this.#base };
    this.#timer = setInterval(() => this.#sample(), 25);
  }

  #sample(): void {
    this.#peak.worker = Math.max(this.#peak.worker, rssMiB(this.#pids.worker) ?? 0);
    this.#peak.listener = Math.max(this.#peak.listener, rssMiB(this.#pids.listener) ?? 0);
  }

  growth(): { worker: number; listener: number } {
    this.#sample();
    return { worker: this.#peak.worker - this.#base.worker, listener: this.#peak.listener - this.#base.listener };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

function assertFlat(what: string, g: { worker: number; listener: number }, boundMiB: number): void {
  for (const role of ['worker', 'listener'] as const) {
    assert.ok(g[role] < boundMiB, `${what}: the ${role}'s RSS grew by ${g[role].toFixed(1)} MiB (bound ${boundMiB} MiB): the body is held in memory`);
  }
}

/** A 64 KiB block of a pattern (also what download.php sends, block after block). */
function patternBlock(): Buffer {
  const b = Buffer.alloc(65536);
  for (let i = 0; i < b.length; i++) b[i] = i % 251;
  return b;
}

interface UploadResult {
  readonly status: number;
  readonly answer: { md5: string; length: number; contentLength: string | null };
  /** The MD5 of what the client sent. */
  readonly md5: string;
}

/**
 * POST `mib` MiB (with Content-Length, or chunked) to upload.php, which waits `waitS` seconds
 * before it reads; `progress.sent` counts the bytes the client could write so far.
 */
function upload(mib: number, chunked: boolean, waitS: number, progress: { sent: number }): Promise<UploadResult> {
  return new Promise((resolve, reject) => {
    const block = Buffer.from(patternBlock().map((x, i) => (x + i) % 256));
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (!chunked) headers['Content-Length'] = String(mib * MiB);
    const req = httpRequest({ host: '127.0.0.1', port: w!.port, path: `/upload/upload.php?wait=${waitS}`, method: 'POST', headers, agent: false });
    req.setTimeout(60000, () => req.destroy(new Error('upload: no answer within 60 s')));
    req.on('error', reject);
    const hash = createHash('md5');
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, answer: res.statusCode === 200 ? JSON.parse(text) : { md5: text.slice(0, 500), length: 0, contentLength: null }, md5: hash.digest('hex') });
        } catch (err) {
          reject(err);
        }
      });
    });
    let blocks = 0;
    const total = mib * 16;
    const pump = (): void => {
      while (blocks < total) {
        // Each block differs (its index in its first bytes) so a lost or repeated block shows.
        const b = Buffer.from(block);
        b.writeUInt32BE(blocks, 0);
        hash.update(b);
        blocks++;
        const more = req.write(b);
        progress.sent += b.length;
        if (!more) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

test('a 50 MB upload reaches PHP whole (MD5 checked by PHP), with Content-Length and chunked; worker and listener memory stay flat', async (t) => {
  if (!ready(t)) return;
  await vars('/vars.php');
  for (const chunked of [false, true]) {
    const what = chunked ? 'chunked upload' : 'upload with Content-Length';
    const watch = new RssWatch();
    try {
      const progress = { sent: 0 };
      // upload.php waits 2 s before it reads: meanwhile the client is held back (with a
      // Content-Length, the body streams to PHP), or the body is spooled to a file (chunked: CGI
      // needs its length first); either way not piled up in Wharf's memory.
      const done = upload(TRANSFER_MIB, chunked, 2, progress);
      await sleep(1500);
      const sentWhileWaiting = progress.sent;
      assertFlat(`${what}, while PHP did not read`, watch.growth(), HELD_BOUND_MIB);
      const { status, answer, md5 } = await done;
      assert.equal(status, 200, `${what}: ${answer.md5}`);
      assert.equal(answer.length, TRANSFER_MIB * MiB, `${what}: PHP read every byte`);
      assert.equal(answer.md5, md5, `${what}: PHP's MD5 is the client's`);
      assert.equal(answer.contentLength, String(TRANSFER_MIB * MiB), `${what}: CONTENT_LENGTH`);
      // Held back: less than half the body left the client. The kernel's own buffers on the way
      // (loopback TCP autotuned up to tcp_wmem + tcp_rmem, ~10 MiB, plus the unix sockets to the
      // worker and to PHP) hold up to ~20 MiB on some machines; Wharf adds its small windows.
      if (!chunked) assert.ok(sentWhileWaiting < 25 * MiB, `${what}: the client could send ${(sentWhileWaiting / MiB).toFixed(1)} MiB while PHP did not read: Wharf did not hold it back`);
      assertFlat(`${what}, whole transfer`, watch.growth(), TRANSFER_BOUND_MIB);
    } finally {
      watch.stop();
    }
  }
});

test('a 50 MB download streamed by PHP (flush()) arrives whole to a client that pauses; memory stays flat', async (t) => {
  if (!ready(t)) return;
  const expected = createHash('md5');
  const block = patternBlock();
  for (let i = 0; i < TRANSFER_MIB * 16; i++) expected.update(block);
  await vars('/vars.php');
  const watch = new RssWatch();
  try {
    let whilePaused: { worker: number; listener: number } | undefined;
    const got = await new Promise<{ status: number; length: number; md5: string; chunked: boolean }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: w!.port, path: `/download.php?mib=${TRANSFER_MIB}`, agent: false });
      req.setTimeout(60000, () => req.destroy(new Error('download: stalled for 60 s')));
      req.on('error', reject);
      req.on('response', (res) => {
        const hash = createHash('md5');
        let length = 0;
        let paused = false;
        res.on('data', (d: Buffer) => {
          hash.update(d);
          length += d.length;
          // The client stops reading for 2 s after the first MiB: PHP must be held back, not
          // its output piled up in Wharf.
          if (!paused && length >= MiB) {
            paused = true;
            res.pause();
            setTimeout(() => {
              whilePaused = watch.growth();
              res.resume();
            }, 2000);
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, length, md5: hash.digest('hex'), chunked: res.headers['transfer-encoding'] === 'chunked' }));
        res.on('error', reject);
      });
      req.end();
    });
    assert.equal(got.status, 200);
    assert.equal(got.length, TRANSFER_MIB * MiB);
    assert.equal(got.md5, expected.digest('hex'));
    assert.ok(got.chunked, 'streamed (chunked), not collected to learn its length');
    assertFlat('download, while the client did not read', whilePaused!, HELD_BOUND_MIB);
    assertFlat('download, whole transfer', watch.growth(), HELD_BOUND_MIB);
  } finally {
    watch.stop();
  }
});

// ---- 3. Statuses and headers set by PHP ---------------------------------------------------------

test('statuses and headers PHP sets reach the client (existingResponse="PassThrough"); a local redirect serves the other script', async (t) => {
  if (!ready(t)) return;
  const created = await send('/passthrough/headers.php');
  assert.equal(created.status, 201);
  assert.equal(created.headers['x-answered-by'], 'php');
  assert.deepEqual(created.headers['set-cookie'], ['first=one', 'second=two; path=/passthrough/; HttpOnly'], 'two cookies, two Set-Cookie lines');
  assert.equal(created.text(), 'created');

  const moved = await send('/passthrough/redirect.php');
  assert.equal(moved.status, 302);
  assert.equal(moved.headers['location'], 'http://example.test/elsewhere?x=1');

  // Location with a local path and no Status: the server serves that URL instead (RFC 3875 §6.2.2).
  const local = await send('/passthrough/local.php');
  assert.equal(local.status, 200);
  assert.equal(local.headers['location'], undefined);
  assert.equal(local.text(), 'other.php: SCRIPT_NAME=/other.php QUERY_STRING=from=local METHOD=GET');

  const missing = await send('/passthrough/missing.php');
  assert.equal(missing.status, 404);
  assert.equal(missing.text(), 'php says: no such article');
});

test("without PassThrough, IIS's rule: PHP's 404 is replaced by the error page (detailed here, the site's own page in Custom mode)", async (t) => {
  if (!ready(t)) return;
  const detailed = await send('/missing.php');
  assert.equal(detailed.status, 404);
  assert.doesNotMatch(detailed.text(), /no such article/);
  assert.match(pageText(detailed), /HTTP Error 404\.0 - Not Found/);
  const custom = await send('/custom/missing.php');
  assert.equal(custom.status, 404);
  assert.equal(custom.text(), "<html><body>The site's own not-found page</body></html>\n");
});

// ---- 4. Timeouts --------------------------------------------------------------------------------

test('activityTimeout and requestTimeout (10 s): 500 with the FastCGI text on the detailed page, and the hung process is ended', async (t) => {
  if (!ready(t)) return;
  const started = Date.now();
  const silent = send('/activity/sleep.php?s=40', { timeoutMs: 30000 });
  const long = send('/request/sleep.php?s=40', { timeoutMs: 30000 });
  // The processes serving them, while they hang.
  const hung = await eventually(() => {
    const a = phpChildren(worker(), 'activity');
    const r = phpChildren(worker(), 'request');
    return a.length === 1 && r.length === 1 ? [...a, ...r] : undefined;
  }, 8000);
  const [activity, request] = await Promise.all([silent, long]);
  const elapsed = Date.now() - started;
  assert.equal(activity.status, 500);
  assert.match(pageText(activity), /HTTP Error 500\.0 - Internal Server Error/);
  assert.match(pageText(activity), /exceeded configured activity timeout/);
  assert.equal(request.status, 500);
  assert.match(pageText(request), /exceeded configured request timeout/);
  assert.ok(elapsed >= 9500 && elapsed < 20000, `answered after ${elapsed} ms (timeouts of 10 s; the scripts sleep 40 s)`);
  await eventually(() => hung.every((pid) => !alive(pid)), 2000).catch(() => assert.fail(`the hung php-cgi processes ${hung.join(', ')} still run`));
  const logged = await eventually(() => [...w3c('/activity/sleep.php'), ...w3c('/request/sleep.php')].filter((r) => r['sc-status'] === '500').length === 2);
  assert.ok(logged);
  // The applications serve again (with new processes).
  assert.equal((await send('/activity/sleep.php?s=0')).status, 200);
});

// ---- 5. instanceMaxRequests ---------------------------------------------------------------------

test('instanceMaxRequests="3": 20 requests in a row, a new process every 3, none fails', async (t) => {
  if (!ready(t)) return;
  const pids: number[] = [];
  for (let i = 0; i < 20; i++) {
    const v = await vars('/rotate/vars.php');
    assert.equal(v.app, 'rotate');
    // php-cgi is told to allow as many (it would otherwise end itself after 500).
    assert.equal(v.server['PHP_FCGI_MAX_REQUESTS'], '3');
    pids.push(v.pid);
  }
  const runs: number[] = [];
  for (let i = 0; i < pids.length; i++) {
    if (i > 0 && pids[i] === pids[i - 1]) runs[runs.length - 1]!++;
    else runs.push(1);
  }
  assert.deepEqual(runs, [3, 3, 3, 3, 3, 3, 2], `pids in order: ${pids.join(' ')}`);
  assert.equal(new Set(pids).size, 7, 'each process served one run only');
});

// ---- 6. queueLength -----------------------------------------------------------------------------

test('queueLength="1" with maxInstances="1": one request runs, one waits, the others get 503.4', async (t) => {
  if (!ready(t)) return;
  const replies: Array<Promise<Reply>> = [];
  for (let i = 0; i < 4; i++) {
    replies.push(send(`/queue/sleep.php?s=2&n=${i}`));
    await sleep(150);
  }
  const all = await Promise.all(replies);
  const statuses = all.map((r) => r.status);
  assert.deepEqual(statuses.filter((s) => s !== 200 && s !== 503), [], `only 200 and 503: ${statuses.join(' ')}`);
  assert.equal(statuses.filter((s) => s === 200).length, 2, `the running and the queued request are served: ${statuses.join(' ')}`);
  const refused = all.filter((r) => r.status === 503);
  assert.equal(refused.length, 2);
  for (const r of refused) assert.match(pageText(r), /HTTP Error 503\.4/);
  await eventually(() => w3c('/queue/sleep.php').filter((r) => r['sc-status'] === '503' && r['sc-substatus'] === '4').length === 2).catch(() =>
    assert.fail(`no two 503.4 W3C lines:\n${w!.logLines(SITE).join('\n')}`),
  );
});

// ---- 7. rapidFailsPerMinute and replays ---------------------------------------------------------

test('a crashing process: a GET is replayed on another process, a POST is not; past rapidFailsPerMinute="2" the application answers 500 at once', async (t) => {
  if (!ready(t)) return;
  const runs = (key: string): string => readFileSync(join(w!.root, 'state', key), 'utf8');
  // A POST may have done its work before the process died: it fails, and ran once.
  const post = await send('/rapid/crash-once.php?key=post', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'order=1' });
  assert.equal(post.status, 500);
  assert.match(pageText(post), /The FastCGI process exited unexpectedly/);
  assert.equal(runs('post'), '1', 'the POST was not sent again');
  // A GET is sent to another process: the client sees the second run's answer.
  const get = await send('/rapid/crash-once.php?key=get');
  assert.equal(get.status, 200);
  assert.equal(get.text(), 'runs: 2');
  // Two failures in a minute: still online.
  assert.equal((await vars('/rapid/vars.php')).app, 'rapid');
  // The third takes the application offline: even a healthy script is refused, quickly.
  const crash = await send('/rapid/crash.php');
  assert.equal(crash.status, 500);
  const started = Date.now();
  const refused = await send('/rapid/vars.php');
  assert.equal(refused.status, 500);
  assert.match(pageText(refused), /failed frequently/);
  assert.ok(Date.now() - started < 1000, `refused in ${Date.now() - started} ms`);
  await eventually(() => /rapidFailsPerMinute 2\): it is offline until/.test(w!.output()));
});

test('a GET that kills every process it reaches fails after three tries, with 500 and the reason', async (t) => {
  if (!ready(t)) return;
  const r = await send('/replay/crash-count.php?key=deadly');
  assert.equal(r.status, 500);
  assert.match(pageText(r), /The FastCGI process exited unexpectedly/);
  assert.equal(readFileSync(join(w!.root, 'state', 'deadly'), 'utf8'), '3', 'run three times, each on a new process');
  // Six failures are within its rapidFailsPerMinute (100): the next request is tried again as well.
  const again = await send('/replay/crash-count.php?key=again');
  assert.equal(again.status, 500);
  assert.doesNotMatch(pageText(again), /failed frequently/);
  assert.equal(readFileSync(join(w!.root, 'state', 'again'), 'utf8'), '3');
});

// ---- 8. php-fpm by address ----------------------------------------------------------------------

test('a php-fpm Wharf did not start, by address: scriptProcessor="unix:…" and "tcp:127.0.0.1:…"', async (t) => {
  if (!ready(t) || !needs(t, phpFpm())) return;
  const conf = join(fpmDir, 'php-fpm.conf');
  writeFileSync(
    conf,
    [
      '[global]',
      `pid = ${join(fpmDir, 'php-fpm.pid')}`,
      `error_log = ${join(fpmDir, 'php-fpm.log')}`,
      'daemonize = no',
      '[unix]',
      `listen = ${join(fpmDir, 'fpm.sock')}`,
      // The pool's own user connects to it.
      'listen.mode = 0666',
      'pm = static',
      'pm.max_children = 2',
      '[tcp]',
      `listen = 127.0.0.1:${fpmPort}`,
      'pm = static',
      'pm.max_children = 2',
      '',
    ].join('\n'),
  );
  // -R: as root, php-fpm refuses to run its workers as root unless told.
  // Its output goes to its error_log; no pipes its workers could keep open.
  fpm = spawn(phpFpmPath(), ['-F', '-y', conf, ...(isRoot ? ['-R'] : [])], { stdio: 'ignore' });
  try {
    await eventually(() => existsSync(join(fpmDir, 'fpm.sock')) && readLog(join(fpmDir, 'php-fpm.log')).includes('ready to handle connections'), 10000).catch(() =>
      assert.fail(`php-fpm did not start (exit ${fpm?.exitCode}): ${readLog(join(fpmDir, 'php-fpm.log'))}`),
    );
    for (const [folder, pool] of [['fpm-unix', 'unix'], ['fpm-tcp', 'tcp']] as const) {
      const v = await vars(`/${folder}/vars.php/more?q=1`);
      assert.equal(v.sapi, 'fpm-fcgi', `${folder}: answered by php-fpm`);
      assert.equal(v.ppid, fpm.pid, `${folder}: by a worker of the php-fpm the test started`);
      assert.equal(v.server['SCRIPT_NAME'], `/${folder}/vars.php`);
      assert.equal(v.server['PATH_INFO'], '/more');
      assert.equal(v.server['REQUEST_URI'], `/${folder}/vars.php/more?q=1`);
      assert.ok(commandLine(v.pid).includes(`pool ${pool}`), `${folder}: php-fpm's pool "${pool}" (${commandLine(v.pid)})`);
    }
  } finally {
    await stopFpm();
  }
});

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

// ---- 9. kill -9 under load ----------------------------------------------------------------------

test('kill -9 of the php-cgi processes every 2 s under 64 clients for 10 s: no GET fails', async (t) => {
  if (!ready(t)) return;
  await send('/load/hello.php');
  const parent = worker();
  let killed = 0;
  let rounds = 0;
  const stop = new AbortController();
  const killer = (async () => {
    while (!stop.signal.aborted) {
      await sleep(2000);
      if (stop.signal.aborted) break;
      rounds++;
      for (const pid of phpChildren(parent, 'load')) {
        try {
          process.kill(pid, 'SIGKILL');
          killed++;
        } catch {
          // it ended on its own
        }
      }
    }
  })();
  const result = await runLoad({
    port: w!.port,
    path: '/load/hello.php',
    connections: 64,
    durationMs: 10000,
    expectStatus: 200,
    checkBody: (b) => b.toString('latin1').startsWith('hello from '),
    responseTimeoutMs: 15000,
  });
  stop.abort();
  await killer;
  const replays = w!.output().split('\n').filter((l) => /FastCgiModule: .*(try [3-9]|after the response had started)/.test(l));
  const detail = `${JSON.stringify({ ...result, killed, rounds })}\n${replays.slice(-20).join('\n')}`;
  assert.ok(rounds >= 4 && killed >= 4, `processes were killed in every round: ${detail}`);
  assert.ok(result.completed > 500, `the load ran: ${detail}`);
  assert.equal(result.failed, 0, `no answer but 200: ${detail}`);
  assert.equal(result.badBodies, 0, detail);
  assert.equal(result.connectionErrors + result.serverClosed + result.timedOut + result.unanswered + result.protocolErrors, 0, `nothing lost: ${detail}`);
  assert.equal(result.completed, result.sent, detail);
});

// ---- 10. Process hygiene and the remaining settings ---------------------------------------------

test("the php-cgi processes are the worker's children and run as the pool's user", async (t) => {
  if (!ready(t)) return;
  const v = await vars('/vars.php');
  const parent = worker();
  assert.equal(v.ppid, parent, 'php-cgi is a child of the pool\'s worker');
  assert.equal(parentPid(v.pid), parent);
  assert.equal(v.uid, uidOf(parent), 'php-cgi runs as the worker');
  if (isRoot) assert.notEqual(v.uid, 0, "as root, the pool's own user, not root");
  // Its FastCGI socket is fd 0, a unix socket (protocol NamedPipe), listening.
  const fd0 = readlinkFd(v.pid, 0);
  const inode = /^socket:\[(\d+)\]$/.exec(fd0)?.[1];
  assert.ok(inode !== undefined, `fd 0 is a socket: ${fd0}`);
  assert.ok(readFileSync('/proc/net/unix', 'utf8').split('\n').some((l) => l.split(/\s+/)[6] === inode), 'a unix socket');
});

test('protocol="Tcp": the process listens on a loopback TCP port and serves', async (t) => {
  if (!ready(t)) return;
  const v = await vars('/tcp/vars.php');
  assert.equal(v.app, 'tcp');
  const inode = /^socket:\[(\d+)\]$/.exec(readlinkFd(v.pid, 0))?.[1];
  assert.ok(inode !== undefined, 'fd 0 is a socket');
  // /proc/net/tcp: local address, state 0A (LISTEN), inode in the 10th column.
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[9] === inode);
  assert.ok(line !== undefined, `fd 0 of php-cgi ${v.pid} is an IPv4 TCP socket`);
  assert.match(line[1]!, /^0100007F:/, 'bound to 127.0.0.1');
  assert.equal(line[3], '0A', 'listening');
});

test('kill -9 of the worker: its php-cgi processes die with it; a pool recycle replaces them', async (t) => {
  if (!ready(t)) return;
  const host = { Host: 'hygiene.test' };
  // Three processes at once (three slow requests in parallel).
  await Promise.all([0, 1, 2].map((i) => send(`/sleep.php?s=1&n=${i}`, { headers: host })));
  const first = worker(HYGIENE_POOL);
  const mine = phpChildren(first, 'main');
  assert.equal(mine.length, 3, `three php-cgi processes under the worker: ${mine.join(', ')}`);
  process.kill(first, 'SIGKILL');
  await eventually(() => mine.every((pid) => !alive(pid)), 1000).catch(() => assert.fail(`php-cgi ${mine.filter(alive).join(', ')} outlived the worker by a second`));

  // A new worker, new processes.
  const again = await vars('/vars.php', { headers: host });
  const second = worker(HYGIENE_POOL);
  assert.notEqual(second, first);
  assert.equal(again.ppid, second);

  const r = await run(process.execPath, [WHARF_BIN, 'recycle', 'apppool', HYGIENE_POOL, '--config', w!.configFile]);
  assert.equal(r.code, 0, r.stderr);
  const third = await eventually(() => {
    const pids = workerPids(w!.child.pid!, HYGIENE_POOL);
    return pids.length === 1 && pids[0] !== second ? pids[0] : undefined;
  }, 15000);
  await eventually(() => !alive(again.pid), 5000).catch(() => assert.fail(`php-cgi ${again.pid} of the recycled worker still runs`));
  const after = await vars('/vars.php', { headers: host });
  assert.equal(after.ppid, third, 'served by a php-cgi of the new worker');
  assert.notEqual(after.pid, again.pid);
});

test('monitorChangesTo: changing the file replaces the processes, idle ones at once, a busy one after its request; none fails', async (t) => {
  if (!ready(t)) return;
  const changeSeen = (): boolean => /monitor\.txt changed/.test(w!.output());
  assert.ok(!changeSeen());
  // Two processes before the change: one busy with a slow request, one idle.
  const busy = (await vars('/monitor/vars.php')).pid;
  const slow = send('/monitor/sleep.php?s=3');
  await sleep(200);
  const idle = (await vars('/monitor/vars.php')).pid;
  assert.notEqual(idle, busy, 'a second process served while the first was busy');
  writeFileSync(join(w!.root, 'monitor.txt'), 'version 2\n');
  // Requests in a row while the change is noticed (within seconds: the file is polled), then
  // three more once the pool log says it was.
  const statuses: number[] = [];
  const servedAfter = new Set<number>();
  let sentAfter = 0;
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && sentAfter < 3) {
    const seen = changeSeen();
    const r = await send('/monitor/vars.php');
    statuses.push(r.status);
    if (seen) {
      sentAfter++;
      if (r.status === 200) servedAfter.add(r.json().pid);
    }
    await sleep(50);
  }
  assert.ok(changeSeen(), `the change was noticed (pool log):\n${w!.output().slice(-2000)}`);
  assert.deepEqual(statuses.filter((s) => s !== 200), [], `every request served: ${statuses.join(' ')}`);
  assert.ok(servedAfter.size > 0 && !servedAfter.has(busy) && !servedAfter.has(idle), `after the change, new processes serve: ${[...servedAfter].join(', ')} (before: ${busy}, ${idle})`);
  // The busy process finished its request, then ended; the idle one ended at once.
  const slowReply = await slow;
  assert.equal(slowReply.status, 200, 'the request in flight was answered');
  assert.equal(slowReply.text(), `slept 3 s in ${busy}`);
  await eventually(() => !alive(busy) && !alive(idle), 3000).catch(() => assert.fail(`processes from before the change still run: ${[busy, idle].filter(alive).join(', ')}`));
});

test('stderrMode: ReturnStdErrIn500 (default) answers 500 with PHP\'s warning; IgnoreAndReturn200 answers 200; both in the pool log', async (t) => {
  if (!ready(t)) return;
  const loud = await send('/warn.php');
  assert.equal(loud.status, 500);
  assert.match(pageText(loud), /PHP Warning: +the answer is not 42 in \S*warn\.php on line 2/);
  const quiet = await send('/quiet/warn.php');
  assert.equal(quiet.status, 200);
  assert.equal(quiet.text(), 'after the warning');
  await eventually(() => {
    const out = w!.output();
    return out.includes(`the answer is not 42 in ${join(www, 'warn.php')}`) && out.includes(`the answer is not 42 in ${join(www, 'quiet', 'warn.php')}`);
  }).catch(() => assert.fail(`the warnings are not in the server's output:\n${w!.output().slice(-3000)}`));
});
