/**
 * `npm run bench`: Wharf beside a bare node:http server and nginx (when installed), in one run,
 * printed as ratios. Servers run pinned to CPU 0 and wrk to CPU 1 when taskset exists (one core
 * for the server side, as in BRIEF.md's baselines). Loopback only; every load is bounded in time.
 *
 * Environment: BENCH_DURATION (seconds per measurement, default 5), BENCH_CONNECTIONS (50),
 * BENCH_ROUNDS (3; the best round of each scenario is reported), BENCH_ONLY=observability (only
 * the cost of metrics, Failed Request Tracing and OpenTelemetry: a shorter run), BENCH_ONLY=compression
 * (only 100 KiB of text, gzip, against nginx gzip_static), BENCH_ONLY=tls (only HTTPS and HTTP/2 from the
 * cache and new TLS connections per second, against nginx; needs h2load and openssl), BENCH_ONLY=ip
 * (only allowed clients' throughput under a flood from an address ipSecurity denies: ip-flood.ts), BENCH_ONLY=auth
 * (Basic with a cached logon against anonymous; needs root for a throw-away account), BENCH_ONLY=php (hello.php
 * and a 100 KiB PHP response through FastCgiModule against nginx + php-fpm, the same number of PHP processes each:
 * php.ts; BENCH_PHP_PROCESSES sets it), BENCH_ONLY=hosted (issue 19's rows: hosted node:http and Express against
 * nginx → the same app on a unix socket, CPU per hosted request against bare node, 100 KiB through the
 * worker against nginx, idle worker memory: hosted.ts).
 *
 * Zero-drop scenarios (BRIEF.md, "how peers lose requests") follow: 64 keep-alive clients of
 * bench/load-client.ts (which counts every request; wrk would only count errors) against a Wharf
 * whose worker is killed (-9), then recycled, every 2 s, for 2 × BENCH_DURATION seconds each.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { privateMiB, rssMiB, workerPids } from './procs.js';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from './load-client.js';
import { ipFlood } from './ip-flood.js';
import { php } from './php.js';
import { hosted } from './hosted.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DIST_BENCH = fileURLToPath(new URL('./', import.meta.url));
const DURATION = Number(process.env['BENCH_DURATION'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 50);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const TASKSET = has('taskset');
const pin = (cpu: number, argv: string[]): string[] => (TASKSET ? ['taskset', '-c', String(cpu), ...argv] : argv);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function start(argv: string[], readyRe: RegExp, env?: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...(env !== undefined ? { env } : {}) });
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (readyRe.test(out)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`${argv.join(' ')} not ready: ${out}`)), 20000).unref();
  });
}

function stop(child: ChildProcess | undefined): void {
  if (child?.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGTERM'); // the whole process group (Wharf's workers too)
  } catch {
    // already gone
  }
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}

function getOnce(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** CPU time (user + system, clock ticks) of every process in a process group. */
function groupTicks(pgid: number): number {
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `wharf recycle apppool <pool> --config <file>`: resolves with an error text, or '' on success. */
function recyclePool(configFile: string, pool: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [join(REPO, 'bin/wharf.js'), 'recycle', 'apppool', pool, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 10000);
    c.on('error', (e) => resolve(e.message));
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve(code === 0 && out.includes(`"${pool}" successfully recycled.`) ? '' : `exit ${code}: ${out.trim().split('\n')[0]}`);
    });
  });
}

const ZERO_DROP_CONNECTIONS = 64;
const FAULT_EVERY_MS = 2000;

interface ZeroDropOutcome {
  readonly load: LoadResult;
  readonly faults: number;
  /** Why faults stopped early ('' when all were applied). */
  readonly faultError: string;
}

/**
 * Load one fresh Wharf with 64 keep-alive clients for `seconds` and apply `fault` to its worker
 * every 2 s (at 1 s, 3 s …). A fault that cannot be applied ends the faults, not the load.
 */
async function zeroDrop(dir: string, seconds: number, fault: (serverPid: number, configFile: string) => Promise<string>): Promise<ZeroDropOutcome> {
  const port = await freePort();
  const configFile = join(dir, 'zero-drop.config');
  writeFileSync(
    configFile,
    readFileSync(join(REPO, 'bench/fixtures/zero-drop.config'), 'utf8')
      .replaceAll('{{PORT}}', String(port))
      .replaceAll('{{ROOT}}', dir)
      .replaceAll('{{HELLO}}', join(REPO, 'bench/fixtures/hello-module.mjs')),
  );
  const server = await start(
    pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', configFile, '--system-drive', join(dir, 'sd-zero-drop')]),
    /Wharf is serving/,
  );
  server.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  try {
    await getOnce(port, '/hello');
    const durationMs = seconds * 1000;
    const load = runLoad({ port, paths: ['/hello', '/uncached/1k.txt'], connections: ZERO_DROP_CONNECTIONS, durationMs });
    let faults = 0;
    let faultError = '';
    const t0 = Date.now();
    for (let i = 0; (i + 0.5) * FAULT_EVERY_MS < durationMs && faultError === ''; i++) {
      await sleep(Math.max(0, t0 + (i + 0.5) * FAULT_EVERY_MS - Date.now()));
      faultError = await fault(server.pid!, configFile);
      if (faultError === '') faults++;
    }
    return { load: await load, faults, faultError };
  } finally {
    stop(server);
    await Promise.race([exited, sleep(15000)]);
  }
}

/** kill -9 of the serving worker (the next one starts on demand). */
async function killWorker(serverPid: number): Promise<string> {
  const deadline = Date.now() + 1500;
  for (;;) {
    const [pid] = workerPids(serverPid);
    if (pid !== undefined) {
      process.kill(pid, 'SIGKILL');
      return '';
    }
    if (Date.now() > deadline) return 'no worker to kill';
    await sleep(20);
  }
}

/** How many idle keep-alive connections the scale scenario holds (ISSUE: QoS, scope 8). */
const IDLE_CONNECTIONS = 10_000;

/**
 * Open `count` keep-alive connections from this process (raw sockets, in batches so the listen
 * backlog never overflows), each serving one request and then left idle; measure the listener's
 * RSS before and after. Bounded: gives up after 60 s. Every socket is destroyed before returning.
 */
async function idleConnections(port: number, serverPid: number, count: number): Promise<{ held: number; growthMiB: number | undefined }> {
  const before = rssMiB(serverPid);
  const sockets: Socket[] = [];
  const deadline = Date.now() + 60_000;
  const req = Buffer.from('GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n', 'latin1');
  try {
    for (let i = 0; i < count && Date.now() < deadline; i += 250) {
      const batch = Array.from({ length: Math.min(250, count - i) }, () =>
        new Promise<Socket | undefined>((resolve) => {
          const s = connect(port, '127.0.0.1');
          const t = setTimeout(() => resolve(undefined), 10_000);
          s.once('error', () => {
            clearTimeout(t);
            resolve(undefined);
          });
          s.once('connect', () => s.write(req));
          s.once('data', () => {
            clearTimeout(t);
            resolve(s);
          });
          sockets.push(s);
        }),
      );
      await Promise.all(batch);
    }
    await new Promise((r) => setTimeout(r, 1000)); // let the listener settle
    const held = sockets.filter((s) => !s.destroyed).length;
    const after = rssMiB(serverPid);
    return { held, growthMiB: before !== undefined && after !== undefined ? after - before : undefined };
  } finally {
    for (const s of sockets) s.destroy();
  }
}

/** The soft limit on open files (`ulimit -n`), or undefined when it cannot be read. */
function openFileLimit(): number | undefined {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  const n = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(n) ? n : r.stdout.trim() === 'unlimited' ? Infinity : undefined;
}

function zeroDropLine(name: string, o: ZeroDropOutcome): string {
  const r = o.load;
  const lost = r.sent - r.completed;
  const rps = (r.completed * 1000) / r.durationMs;
  const extra = [
    r.serverClosed > 0 ? `${r.serverClosed} closed without notice` : '',
    r.timedOut + r.unanswered > 0 ? `${r.timedOut + r.unanswered} unanswered` : '',
    r.protocolErrors > 0 ? `${r.protocolErrors} malformed` : '',
    o.faultError !== '' ? `faults stopped: ${o.faultError}` : '',
  ].filter((x) => x !== '');
  return (
    `zero-drop, ${name}: ${o.faults} faults, ${r.completed} served, ${r.failed} failed, ${r.connectionErrors} connection errors, ` +
    `${lost} lost, ${rps.toFixed(0)} req/s, max latency ${r.maxLatencyMs.toFixed(0)} ms${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`
  );
}

interface Measurement {
  readonly rps: number;
  /** Server CPU per request (all of its processes), µs: steadier than req/s on a busy machine. */
  readonly cpuUs: number;
  /** 99th percentile latency in ms (wrk --latency); undefined when wrk did not print it. */
  readonly p99Ms?: number;
}

/** wrk's latency figure ('812.00us', '33.17ms', '1.25s') in ms. */
function latencyMs(value: string, unit: string): number {
  return Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 1);
}

/** `pgids`: the process groups serving this scenario (a proxy and its upstream count together). */
function wrk(port: number, path: string, seconds: number, pgids: readonly number[] = [], headers: readonly string[] = [], scheme: 'http' | 'https' = 'http'): Measurement {
  const argv = pin(1, ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), `${scheme}://127.0.0.1:${port}${path}`]);
  const ticks = (): number => pgids.reduce((t, g) => t + groupTicks(g), 0);
  const before = ticks();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: (seconds + 10) * 1000 });
  const after = ticks();
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout ?? '');
  const n = /(\d+) requests in/.exec(r.stdout ?? '');
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout ?? '');
  if (non2xx) throw new Error(`wrk saw ${non2xx[1]} error responses on ${path}`);
  const requests = n ? Number(n[1]) : 0;
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(r.stdout ?? '');
  return {
    rps: m ? Number(m[1]) : 0,
    cpuUs: requests > 0 && pgids.length > 0 ? ((after - before) * TICK_US) / requests : 0,
    ...(p99 !== null ? { p99Ms: latencyMs(p99[1]!, p99[2]!) } : {}),
  };
}

/** An ordinary Node.js app listening by itself (`node <entry>` with PORT), pinned like the others. */
async function startDirectApp(dir: string, entry: string, port: number): Promise<ChildProcess> {
  const [cmd, ...args] = pin(0, [process.execPath, join(dir, entry)]);
  const child = spawn(cmd!, args, { cwd: dir, stdio: 'ignore', detached: true, env: { ...process.env, PORT: String(port), NODE_ENV: 'production' } });
  await waitForPort(port);
  return child;
}

/**
 * What watching costs (issue 15): one site (a hello module through the worker, 1 KiB from the
 * listener's cache) served by three Wharf servers side by side — nothing on; metrics on
 * (`--metrics-address`) with a Failed Request Tracing rule that watches every URL and never fires;
 * OpenTelemetry exporting every request to a local OTLP sink (on wrk's core: the collector is not
 * the server's cost). Rounds interleave the three; ratios are against "nothing on".
 */
async function observability(dir: string): Promise<void> {
  const sinkPort = await freePort();
  const children: ChildProcess[] = [];
  try {
    children.push(await start(pin(1, [process.execPath, join(DIST_BENCH, 'servers/otlp-sink.js'), String(sinkPort)]), /ready/));
    const variants = [
      { name: 'off', freb: false, args: [] as string[], env: {} as Record<string, string> },
      { name: 'metrics+freb', freb: true, args: ['--metrics-address', `127.0.0.1:${await freePort()}`], env: {} },
      { name: 'otel', freb: false, args: [], env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`, OTEL_SERVICE_NAME: 'wharf-bench' } },
    ];
    const ports = new Map<string, { port: number; pgid: number }>();
    for (const v of variants) {
      const port = await freePort();
      const file = join(dir, `observability-${v.name}.config`);
      writeFileSync(
        file,
        readFileSync(join(REPO, 'bench/fixtures/observability.config'), 'utf8')
          .replaceAll('{{FREB}}', v.freb ? `<traceFailedRequestsLogging enabled="true" directory="${join(dir, 'freb')}" />` : '')
          .replaceAll('{{NAME}}', v.name)
          .replaceAll('{{PORT}}', String(port))
          .replaceAll('{{ROOT}}', dir)
          .replaceAll('{{HELLO}}', join(REPO, 'bench/fixtures/hello-module.mjs')),
      );
      const child = await start(
        pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', join(dir, `sd-${v.name}`), ...v.args]),
        /Wharf is serving/,
        { ...process.env, ...v.env },
      );
      children.push(child);
      ports.set(v.name, { port, pgid: child.pid! });
      if ((await getOnce(port, '/hello')) !== 200 || (await getOnce(port, '/1k.txt')) !== 200) throw new Error(`observability bench: ${v.name} does not answer 200`);
    }
    const paths = [['hello', '/hello'], ['1k cache', '/1k.txt']] as const;
    for (const v of variants) for (const [, path] of paths) wrk(ports.get(v.name)!.port, path, 1);
    const best = new Map<string, Measurement>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, path] of paths) {
        for (const v of variants) {
          const { port, pgid } = ports.get(v.name)!;
          const m = wrk(port, path, DURATION, [pgid]);
          const k = `${v.name} ${label}`;
          const b = best.get(k);
          best.set(k, { rps: Math.max(b?.rps ?? 0, m.rps), cpuUs: Math.min(b?.cpuUs ?? Infinity, m.cpuUs || Infinity) });
        }
      }
    }
    console.log(`\nObservability — what watching costs (best of ${ROUNDS}; ratios against the same server with nothing on)`);
    console.log(`${'scenario'.padEnd(42)}${'req/s'.padStart(8)}  vs off   CPU µs/req  target`);
    for (const [label] of paths) {
      const off = best.get(`off ${label}`)!;
      for (const v of variants) {
        const m = best.get(`${v.name} ${label}`)!;
        const target = v.name === 'off' ? '' : v.name === 'otel' ? '≥ 0.85x' : '≥ 0.97x';
        console.log(`${`${label}, ${v.name}`.padEnd(42)}${m.rps.toFixed(0).padStart(8)}  ${(m.rps / off.rps).toFixed(2).padStart(5)}x  ${(Number.isFinite(m.cpuUs) ? m.cpuUs.toFixed(1) : '-').padStart(10)}  ${target}`);
      }
    }
  } finally {
    for (const c of children) stop(c);
    await sleep(500);
  }
}

/** Text that compresses like real text (about 3:1), not like a run of one byte. */
function textOf(bytes: number): Buffer {
  const words = ['listener', 'worker', 'pool', 'request', 'response', 'cache', 'static', 'compress', 'module', 'config', 'site', 'binding', 'queue', 'recycle'];
  let x = 12345;
  let s = '';
  while (s.length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += words[x % words.length]! + (x % 7 === 0 ? '.\n' : ' ') + (x % 11 === 0 ? String(x % 1000) + ' ' : '');
  }
  return Buffer.from(s.slice(0, bytes));
}

/** The Content-Encoding a GET with Accept-Encoding: gzip gets. */
function encodingOf(port: number, path: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers['content-encoding']));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Compression (issue 16): 100 KiB of text asked for with Accept-Encoding: gzip — Wharf serving its
 * compressed copy (frequently hit, so from the listener's cache, one entry per coding) against
 * nginx's gzip_static with a .gz made beforehand at the same level (IIS's default static level 7).
 */
async function compression(dir: string, nginxBin: string | undefined): Promise<void> {
  const www = join(dir, 'gz-www');
  mkdirSync(www, { recursive: true });
  const text = textOf(100 * 1024);
  writeFileSync(join(www, '100k.txt'), text);
  writeFileSync(join(www, '100k.txt.gz'), gzipSync(text, { level: 7 }));
  const children: ChildProcess[] = [];
  try {
    const port = await freePort();
    const file = join(dir, 'compression.config');
    writeFileSync(file, readFileSync(join(REPO, 'bench/fixtures/compression.config'), 'utf8').replaceAll('{{PORT}}', String(port)).replaceAll('{{ROOT}}', dir));
    const wharf = await start(pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', join(dir, 'sd-compression')]), /Wharf is serving/);
    children.push(wharf);
    // The file was just written: the listener's cache keeps nothing changed in the last 2 s.
    await sleep(2100);
    const rows: Array<[string, number, number]> = [['Wharf, compressed copy (listener cache)', port, wharf.pid!]];
    if (nginxBin !== undefined) {
      const ngPort = await freePort();
      const conf = join(dir, 'nginx-gzip.conf');
      writeFileSync(
        conf,
        `daemon off; worker_processes 1; pid ${dir}/nginx-gzip.pid; error_log ${dir}/nginx-gzip-error.log;
events { worker_connections 1024; }
http { access_log ${dir}/nginx-gzip-access.log; sendfile on; tcp_nopush on; keepalive_requests 100000; default_type text/plain;
  client_body_temp_path ${dir}/nt; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf; uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  server { listen 127.0.0.1:${ngPort}; root ${www}; gzip_static on; gzip_vary on; } }\n`,
      );
      const [cmd, ...args] = pin(0, [nginxBin, '-c', conf, '-e', join(dir, 'nginx-gzip-error.log')]);
      const ng = spawn(cmd!, args, { stdio: 'ignore', detached: true });
      children.push(ng);
      await waitForPort(ngPort);
      rows.push(['nginx gzip_static (.gz made beforehand)', ngPort, ng.pid!]);
    }
    const gzip = ['Accept-Encoding: gzip'];
    for (const [, p] of rows) wrk(p, '/100k.txt', 1, [], gzip); // warm-up: the copy, the cache entry, JIT
    for (const [name, p] of rows) {
      const coding = await encodingOf(p, '/100k.txt');
      if (coding !== 'gzip') throw new Error(`compression bench: ${name} answers with Content-Encoding ${String(coding)}`);
    }
    const best = new Map<string, Measurement>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, p, pgid] of rows) {
        const m = wrk(p, '/100k.txt', DURATION, [pgid], gzip);
        const b = best.get(name);
        best.set(name, { rps: Math.max(b?.rps ?? 0, m.rps), cpuUs: Math.min(b?.cpuUs ?? Infinity, m.cpuUs || Infinity) });
      }
    }
    const nginx = best.get('nginx gzip_static (.gz made beforehand)');
    console.log(`\nCompression — 100 KiB text (${gzipSync(text, { level: 7 }).length} bytes gzipped), Accept-Encoding: gzip (best of ${ROUNDS})`);
    console.log(`${'scenario'.padEnd(42)}${'req/s'.padStart(8)}  vs nginx   CPU µs/req  target`);
    for (const [name] of rows) {
      const m = best.get(name)!;
      const target = name.startsWith('Wharf') ? '≥ 1.0x' : '';
      console.log(`${name.padEnd(42)}${m.rps.toFixed(0).padStart(8)}  ${(nginx ? (m.rps / nginx.rps).toFixed(2) + 'x' : '  -  ').padStart(7)}  ${(Number.isFinite(m.cpuUs) ? m.cpuUs.toFixed(1) : '-').padStart(10)}  ${target}`);
    }
  } finally {
    for (const c of children) stop(c);
    await sleep(500);
  }
}

/** h2load over TLS (ALPN h2), client on wrk's core: req/s and the server's CPU per request. */
function h2load(port: number, path: string, seconds: number, pgids: readonly number[] = []): Measurement {
  try {
    return h2loadOnce(port, path, seconds, pgids);
  } catch (err) {
    // Seen once on a loaded machine: h2load ending without its summary. One retry, said aloud.
    console.log(`(h2load retried: ${(err as Error).message.split('\n')[0]})`);
    return h2loadOnce(port, path, seconds, pgids);
  }
}

function h2loadOnce(port: number, path: string, seconds: number, pgids: readonly number[]): Measurement {
  const argv = pin(1, ['h2load', '-t1', '-c32', '-m10', '-D', String(seconds), `https://127.0.0.1:${port}${path}`]);
  const before = pgids.reduce((t, g) => t + groupTicks(g), 0);
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: (seconds + 15) * 1000 });
  const after = pgids.reduce((t, g) => t + groupTicks(g), 0);
  const out = r.stdout ?? '';
  if (!/Application protocol: h2/.test(out)) throw new Error(`h2load did not negotiate h2 with port ${port}: ${out.slice(0, 400)}${r.stderr ?? ''}`);
  const rps = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out);
  const req = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  if (req === null || Number(req[3]) > 0 || Number(req[4]) > 0 || (status !== null && Number(status[3]) + Number(status[4]) > 0)) {
    throw new Error(`h2load saw failed requests on port ${port} (exit ${r.status ?? r.signal}): ${out.split('\n').filter((l) => /requests:|status codes:/.test(l)).join('; ') || out.slice(-600)}${r.stderr ?? ''}`);
  }
  const done = Number(req[1]);
  return { rps: rps ? Number(rps[1]) : 0, cpuUs: done > 0 && pgids.length > 0 ? ((after - before) * TICK_US) / done : 0 };
}

/** Parallel `openssl s_time` clients for the handshake rows (one process each: s_time is sequential). */
const S_TIME_CLIENTS = 8;

/**
 * New TLS connections per second: S_TIME_CLIENTS `openssl s_time` processes on wrk's core, each
 * opening connections one after another, each connection one `GET /1k.txt HTTP/1.0` (the server
 * closes it). `full`: every handshake full (ECDHE + the server's ECDSA signature); `resumed`:
 * every connection after a client's first resumes with the session ticket it got last (TLS 1.3
 * PSK with ECDHE, no certificate). Counts how many connections really resumed.
 */
async function sTime(port: number, mode: 'full' | 'resumed', seconds: number, pgids: readonly number[] = []): Promise<Measurement & { resumed: number; total: number }> {
  const before = pgids.reduce((t, g) => t + groupTicks(g), 0);
  const t0 = performance.now();
  const runs = Array.from({ length: S_TIME_CLIENTS }, () =>
    new Promise<string>((resolve) => {
      const argv = pin(1, ['openssl', 's_time', '-connect', `127.0.0.1:${port}`, '-www', '/1k.txt', mode === 'full' ? '-new' : '-reuse', '-time', String(seconds)]);
      const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => c.kill('SIGKILL'), (seconds + 15) * 1000);
      c.on('exit', () => {
        clearTimeout(t);
        resolve(out);
      });
    }),
  );
  const outs = await Promise.all(runs);
  const wallS = (performance.now() - t0) / 1000;
  const after = pgids.reduce((t, g) => t + groupTicks(g), 0);
  let total = 0;
  let resumed = 0;
  for (const out of outs) {
    const m = /(\d+) connections in [\d.]+s;/.exec(out);
    if (m === null) throw new Error(`openssl s_time against port ${port} failed: ${out.slice(0, 400)}`);
    total += Number(m[1]);
    // One character per connection: 'r' resumed, '*' a full handshake.
    for (const line of out.split('\n')) if (/^[*rt3]+$/.test(line)) resumed += [...line].filter((ch) => ch === 'r').length;
  }
  return { rps: total / wallS, cpuUs: total > 0 && pgids.length > 0 ? ((after - before) * TICK_US) / total : 0, resumed, total };
}

/** Protocol, cipher suite and key exchange a client negotiates (`openssl s_client -brief`). */
function negotiated(port: number): string {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-brief'], { input: '', encoding: 'utf8', timeout: 10000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const field = (name: string): string => new RegExp(`${name}:\\s*(.+)`).exec(text)?.[1]?.trim() ?? '?';
  return `${field('Protocol version')} ${field('Ciphersuite')}, key exchange ${field('Server Temp Key')}, signature ${field('Signature type')}`;
}

/**
 * TLS and HTTP/2 (issue 16): Wharf's https binding against nginx, one ECDSA P-256 certificate for
 * both (made with openssl; Wharf gets it through `wharf cert import` and `wharf sslcert add
 * ipport=…`, nginx through ssl_certificate), the same protocols (TLS 1.2 and 1.3), TLS 1.3 suite
 * order and curves, nginx with one worker on the server's core, session tickets on, http2 on the
 * same listener (as Wharf's binding offers h2 by ALPN). Rows: 1 KiB from the response cache over
 * TLS with keep-alive (wrk https), the same over HTTP/2 (h2load -c32 -m10), and new connections
 * per second with full and resumed handshakes (openssl s_time, one request per connection).
 */
async function tls(dir: string, nginxBin: string | undefined): Promise<void> {
  if (!has('h2load') || !has('openssl')) {
    console.log('\nTLS: skipped (needs h2load from nghttp2-client and openssl)');
    return;
  }
  const www = join(dir, 'tls-www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, '1k.txt'), Buffer.alloc(1024, 'a'));
  const key = join(dir, 'tls-bench.key');
  const crt = join(dir, 'tls-bench.crt');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost/O=Wharf Bench', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  if (made.status !== 0) throw new Error('tls bench: openssl could not make the certificate');
  const thumbprint = new X509Certificate(readFileSync(crt)).fingerprint.replaceAll(':', '');
  const sd = join(dir, 'sd-tls');
  const port = await freePort();
  const cli = (...args: string[]): void => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin/wharf.js'), ...args, '--system-drive', sd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`wharf ${args.join(' ')}: ${r.stderr}`);
  };
  cli('cert', 'import', crt, '--key', key);
  cli('sslcert', 'add', `ipport=0.0.0.0:${port}`, `certhash=${thumbprint}`);
  const children: ChildProcess[] = [];
  try {
    const file = join(dir, 'tls.config');
    const httpPort = await freePort();
    writeFileSync(file, readFileSync(join(REPO, 'bench/fixtures/tls.config'), 'utf8').replaceAll('{{PORT}}', String(port)).replaceAll('{{HTTP_PORT}}', String(httpPort)).replaceAll('{{ROOT}}', dir));
    const wharf = await start(pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', sd]), /Wharf is serving/);
    children.push(wharf);
    // name, https port, process group, plain http port (the same site)
    const servers: Array<[string, number, number, number]> = [['Wharf', port, wharf.pid!, httpPort]];
    // The platform's floor: bare node:http2 with the same certificate and TLS policy (no plain row).
    const nodePort = await freePort();
    const bare = await start(pin(0, [process.execPath, join(DIST_BENCH, 'servers/node-tls.js'), String(nodePort), key, crt, join(www, '1k.txt')]), /ready/);
    children.push(bare);
    servers.push(['node', nodePort, bare.pid!, 0]);
    if (nginxBin !== undefined) {
      const ngPort = await freePort();
      const ngHttpPort = await freePort();
      const conf = join(dir, 'nginx-tls.conf');
      // Suites and curves in Wharf's order (src/listener/tls-termination.ts), the server's choice.
      writeFileSync(
        conf,
        `daemon off; worker_processes 1; pid ${dir}/nginx-tls.pid; error_log ${dir}/nginx-tls-error.log;
events { worker_connections 1024; }
http { access_log ${dir}/nginx-tls-access.log; sendfile on; tcp_nopush on; keepalive_requests 100000; default_type text/plain;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  client_body_temp_path ${dir}/nt; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf; uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  server { listen 127.0.0.1:${ngPort} ssl http2; listen 127.0.0.1:${ngHttpPort}; root ${www};
    ssl_certificate ${crt}; ssl_certificate_key ${key};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_prefer_server_ciphers on;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_tickets on; ssl_session_timeout 5m; } }\n`,
      );
      const [cmd, ...args] = pin(0, [nginxBin, '-c', conf, '-e', join(dir, 'nginx-tls-error.log')]);
      const ng = spawn(cmd!, args, { stdio: 'ignore', detached: true });
      children.push(ng);
      await waitForPort(ngPort);
      servers.push(['nginx', ngPort, ng.pid!, ngHttpPort]);
    }
    // The file was just written: the listener's cache keeps nothing changed in the last 2 s.
    await sleep(2100);
    const suites = servers.map(([name, p]) => `${name}: ${negotiated(p)}`);
    for (const [, p, , hp] of servers) {
      wrk(p, '/1k.txt', 1, [], [], 'https'); // warm-up: the cache entry, JIT
      if (hp !== 0) wrk(hp, '/1k.txt', 1);
    }
    for (const [, p] of servers) h2load(p, '/1k.txt', 1);
    type Row = 'plain' | 'h1' | 'h2' | 'full' | 'resumed';
    const best = new Map<string, Measurement>();
    const resumption = new Map<string, { resumed: number; total: number }>();
    const keep = (k: string, m: Measurement): void => {
      const b = best.get(k);
      best.set(k, { rps: Math.max(b?.rps ?? 0, m.rps), cpuUs: Math.min(b?.cpuUs ?? Infinity, m.cpuUs || Infinity) });
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, , pgid, hp] of servers) if (hp !== 0) keep(`${name} plain`, wrk(hp, '/1k.txt', DURATION, [pgid]));
      for (const [name, p, pgid] of servers) keep(`${name} h1`, wrk(p, '/1k.txt', DURATION, [pgid], [], 'https'));
      for (const [name, p, pgid] of servers) keep(`${name} h2`, h2load(p, '/1k.txt', DURATION, [pgid]));
      for (const mode of ['full', 'resumed'] as const) {
        for (const [name, p, pgid] of servers) {
          const m = await sTime(p, mode, DURATION, [pgid]);
          keep(`${name} ${mode}`, m);
          const r = resumption.get(`${name} ${mode}`) ?? { resumed: 0, total: 0 };
          resumption.set(`${name} ${mode}`, { resumed: r.resumed + m.resumed, total: r.total + m.total });
        }
      }
    }
    const rows: Array<[Row, string, string]> = [
      ['plain', '1 KiB cached, plain HTTP (reference)', ''],
      ['h1', '1 KiB cached, HTTPS keep-alive (wrk)', '≥ 1.0x'],
      ['h2', '1 KiB cached, HTTP/2 (h2load -c32 -m10)', '≥ 1.0x'],
      ['full', 'new connections/s, full handshake', '≥ 0.8x'],
      ['resumed', 'new connections/s, resumed (tickets)', '≥ 0.8x'],
    ];
    console.log(`\nTLS — ECDSA P-256 certificate, TLS 1.2+1.3, best of ${ROUNDS}; handshakes: ${S_TIME_CLIENTS} × openssl s_time, one request per connection`);
    for (const s of suites) console.log(`  ${s}`);
    // core busy: req/s × CPU per request; a server well below 100 % was waiting for the client.
    // node: the bare node:http2 server (bench/servers/node-tls.ts), the floor Node itself sets.
    console.log(`${'scenario'.padEnd(42)}${'Wharf/s'.padStart(8)}${'nginx/s'.padStart(9)}  vs nginx   CPU µs Wharf  nginx  CPU ratio  core busy W/n  target   node/s  W/node  node/nginx`);
    for (const [row, label, target] of rows) {
      const w = best.get(`Wharf ${row}`);
      const n = best.get(`nginx ${row}`);
      const b = best.get(`node ${row}`);
      if (w === undefined) continue;
      const floor = b === undefined ? '' : `  ${b.rps.toFixed(0).padStart(7)}  ${(w.rps / b.rps).toFixed(2).padStart(5)}x  ${n ? (b.rps / n.rps).toFixed(2) + 'x' : '-'}`;
      const busy = (m: Measurement | undefined): string => (m !== undefined && Number.isFinite(m.cpuUs) ? `${((m.rps * m.cpuUs) / 1e4).toFixed(0)}%` : '-');
      const us = (m: Measurement | undefined): string => (m !== undefined && Number.isFinite(m.cpuUs) ? m.cpuUs.toFixed(1) : '-');
      const res = row === 'resumed' ? servers.map(([name]) => resumption.get(`${name} resumed`)).map((r) => (r !== undefined && r.total > 0 ? `${((100 * r.resumed) / r.total).toFixed(0)}%` : '-')) : [];
      console.log(
        `${label.padEnd(42)}${w.rps.toFixed(0).padStart(8)}${(n ? n.rps.toFixed(0) : '-').padStart(9)}  ${(n ? (w.rps / n.rps).toFixed(2) + 'x' : '  -  ').padStart(7)}  ` +
          `${us(w).padStart(12)}  ${us(n).padStart(5)}  ${(n && Number.isFinite(w.cpuUs) && Number.isFinite(n.cpuUs) ? (n.cpuUs / w.cpuUs).toFixed(2) + 'x' : '-').padStart(9)}  ` +
          `${`${busy(w)}/${busy(n)}`.padStart(13)}  ${target.padEnd(6)}` +
          floor +
          (res.length > 0 ? `  (resumed: ${res.join(' / ')})` : ''),
      );
    }
  } finally {
    for (const c of children) stop(c);
    await sleep(500);
  }
}

/**
 * Authentication (issue 17): one 1 KiB static file anonymous and behind Basic with a Linux account
 * (PAM checks the password once; later requests hit the worker's logon cache), both through the
 * worker, plus anonymous from the listener's cache for reference. Needs root (a throw-away
 * account is made with useradd and removed after).
 */
async function auth(dir: string): Promise<void> {
  if (process.getuid?.() !== 0 || !has('useradd') || !has('chpasswd')) {
    console.log('\nAuthentication: skipped (needs root, useradd and chpasswd for a throw-away account)');
    return;
  }
  const user = `wbench${process.pid % 100000}`;
  const password = randomBytes(12).toString('base64url');
  const account = spawnSync('sh', ['-c', `useradd -M -s /usr/sbin/nologin ${user} && echo '${user}:${password}' | chpasswd`], { stdio: 'ignore' });
  if (account.status !== 0) throw new Error(`auth bench: could not create the account ${user}`);
  const children: ChildProcess[] = [];
  try {
    const www = join(dir, 'auth-www');
    for (const folder of ['', 'uncached', 'basic']) {
      mkdirSync(join(www, folder), { recursive: true });
      writeFileSync(join(www, folder, '1k.txt'), Buffer.alloc(1024, 'a'));
    }
    chmodSync(dir, 0o755);
    const port = await freePort();
    const file = join(dir, 'auth.config');
    writeFileSync(file, readFileSync(join(REPO, 'bench/fixtures/auth.config'), 'utf8').replaceAll('{{PORT}}', String(port)).replaceAll('{{ROOT}}', dir));
    const wharf = await start(pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', join(dir, 'sd-auth')]), /Wharf is serving/);
    children.push(wharf);
    const basic = [`Authorization: Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`];
    const rows: Array<[string, string, readonly string[]]> = [
      ['anonymous, from the listener cache', '/1k.txt', []],
      ['anonymous, through the worker', '/uncached/1k.txt', []],
      ['Basic (cached logon), through the worker', '/basic/1k.txt', basic],
    ];
    // Warm-up: the cache entry, the logon, JIT; and a check that Basic really is required.
    await sleep(2100);
    for (const [, path, headers] of rows) wrk(port, path, 1, [], headers);
    if ((await getOnce(port, '/basic/1k.txt')) !== 401) throw new Error('auth bench: /basic/1k.txt answers without credentials');
    const best = new Map<string, Measurement>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, path, headers] of rows) {
        const m = wrk(port, path, DURATION, [wharf.pid!], headers);
        const b = best.get(label);
        best.set(label, { rps: Math.max(b?.rps ?? 0, m.rps), cpuUs: Math.min(b?.cpuUs ?? Infinity, m.cpuUs || Infinity) });
      }
    }
    const through = best.get('anonymous, through the worker')!;
    console.log(`\nAuthentication — the same 1 KiB file, keep-alive (best of ${ROUNDS}; ratio against anonymous through the worker)`);
    console.log(`${'scenario'.padEnd(44)}${'req/s'.padStart(8)}  ratio  CPU µs/req  target`);
    for (const [label] of rows) {
      const m = best.get(label)!;
      const target = label.startsWith('Basic') ? '≥ 0.9x' : '';
      console.log(`${label.padEnd(44)}${m.rps.toFixed(0).padStart(8)}  ${(m.rps / through.rps).toFixed(2).padStart(5)}x  ${(Number.isFinite(m.cpuUs) ? m.cpuUs.toFixed(1) : '-').padStart(10)}  ${target}`);
    }
  } finally {
    for (const c of children) stop(c);
    await sleep(500);
    spawnSync('userdel', [user], { stdio: 'ignore' });
  }
}

async function main(): Promise<void> {
  if (!has('wrk')) {
    console.error('npm run bench needs wrk (apt-get install wrk)');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
  const www = join(dir, 'www');
  mkdirSync(www);
  chmodSync(dir, 0o755); // nginx's worker runs as an unprivileged user and must read www/
  writeFileSync(join(www, '1k.txt'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(www, '100k.txt'), Buffer.alloc(100 * 1024, 'b'));
  // The same files where the listener's response cache is off: every request reaches the worker.
  mkdirSync(join(www, 'uncached'));
  writeFileSync(join(www, 'uncached', '1k.txt'), Buffer.alloc(1024, 'a'));
  writeFileSync(join(www, 'uncached', '100k.txt'), Buffer.alloc(100 * 1024, 'b'));
  writeFileSync(join(www, 'uncached', 'web.config'), '<configuration><system.webServer><caching enableKernelCache="false" /></system.webServer></configuration>\n');
  // BENCH_ONLY=tls: HTTPS and HTTP/2 1 KiB from the cache, new TLS connections per second, against nginx.
  if (process.env['BENCH_ONLY'] === 'tls') {
    try {
      await tls(dir, ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=hosted: the five rows of issue 19 (hosted apps vs nginx → the same app on a unix
  // socket, CPU per hosted request vs bare node, 100 KiB through the worker vs nginx, idle worker memory).
  if (process.env['BENCH_ONLY'] === 'hosted') {
    try {
      await hosted(dir, { repo: REPO, rounds: ROUNDS, duration: DURATION, pin, freePort, start, stop, wrk });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=php: hello.php and 100 KiB from PHP, Wharf's FastCgiModule against nginx + php-fpm (issue 18).
  if (process.env['BENCH_ONLY'] === 'php') {
    try {
      await php(dir, { repo: REPO, rounds: ROUNDS, duration: DURATION, pin, freePort, start, stop, wrk });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=ip: allowed clients while a denied address floods (issue 17).
  if (process.env['BENCH_ONLY'] === 'ip') {
    try {
      await ipFlood(dir, { repo: REPO, rounds: ROUNDS, duration: DURATION, pin, freePort, start, stop, wrk });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=compression: 100 KiB of text, gzip, against nginx gzip_static (a quicker run).
  if (process.env['BENCH_ONLY'] === 'compression') {
    try {
      await compression(dir, ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=auth: Basic with a cached logon against anonymous, the same file.
  if (process.env['BENCH_ONLY'] === 'auth') {
    try {
      await auth(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  // BENCH_ONLY=observability: just the cost of metrics, FREB and tracing (a quicker run).
  if (process.env['BENCH_ONLY'] === 'observability') {
    try {
      await observability(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  const children: ChildProcess[] = [];
  try {
    // Every server starts once and idles while another is measured; rounds interleave the
    // scenarios and the best round counts, so a noisy neighbour on a shared machine skews
    // all columns alike instead of one.
    const groups = new Map<number, number>(); // port → process group of its server
    const extraGroups = new Map<number, number[]>(); // port → more groups that serve it (a proxy's upstream)
    const nodePort = await freePort();
    children.push(await start(pin(0, [process.execPath, join(DIST_BENCH, 'servers/node-hello.js'), String(nodePort)]), /ready/));
    groups.set(nodePort, children[children.length - 1]!.pid!);

    // Hosted Node.js apps: a node:http hello and the Express app of the tests (its own
    // node_modules, installed once), both also run directly for the same-app ratio.
    const expressSrc = join(REPO, 'test/fixtures/apps/express');
    if (!existsSync(join(expressSrc, 'node_modules', '.package-lock.json'))) {
      const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: expressSrc, stdio: 'inherit' });
      if (r.status !== 0) throw new Error('npm ci for the Express bench app failed');
    }
    cpSync(expressSrc, join(dir, 'express-app'), { recursive: true });
    cpSync(expressSrc, join(dir, 'express-azure'), { recursive: true });
    cpSync(join(REPO, 'bench/fixtures/azure-web.config'), join(dir, 'express-azure', 'web.config'));
    mkdirSync(join(dir, 'express-azure', 'public'), { recursive: true });
    writeFileSync(join(dir, 'express-azure', 'public', '1k.txt'), Buffer.alloc(1024, 'a'));
    cpSync(join(REPO, 'bench/fixtures/node-hello-app'), join(dir, 'node-app'), { recursive: true });
    const nodeAppPort = await freePort();
    const expressPort = await freePort();
    const expressDirectPort = await freePort();
    const azurePort = await freePort();
    children.push(await startDirectApp(join(dir, 'express-app'), 'server.js', expressDirectPort));
    groups.set(expressDirectPort, children[children.length - 1]!.pid!);

    const wharfPort = await freePort();
    const config = readFileSync(join(REPO, 'bench/fixtures/applicationHost.config'), 'utf8')
      .replaceAll('{{NODEAPP_PORT}}', String(nodeAppPort))
      .replaceAll('{{EXPRESS_PORT}}', String(expressPort))
      .replaceAll('{{AZURE_PORT}}', String(azurePort))
      .replaceAll('{{PORT}}', String(wharfPort))
      .replaceAll('{{ROOT}}', dir)
      .replaceAll('{{HELLO}}', join(REPO, 'bench/fixtures/hello-module.mjs'));
    writeFileSync(join(dir, 'applicationHost.config'), config);
    const t0 = performance.now();
    children.push(
      await start(
        pin(0, [process.execPath, join(REPO, 'bin/wharf.js'), 'start', '--config', join(dir, 'applicationHost.config'), '--system-drive', join(dir, 'sd')]),
        /Wharf is serving/,
      ),
    );
    const listening = performance.now();
    groups.set(wharfPort, children[children.length - 1]!.pid!);
    groups.set(nodeAppPort, children[children.length - 1]!.pid!);
    groups.set(expressPort, children[children.length - 1]!.pid!);
    groups.set(azurePort, children[children.length - 1]!.pid!);
    await getOnce(wharfPort, '/hello');
    const coldStartMs = performance.now() - listening;
    const serverStartMs = listening - t0;
    // The spare worker is started a second after the pools are configured; a pool started after
    // that takes it instead of spawning node.
    await new Promise((r) => setTimeout(r, 2000));
    const s0 = performance.now();
    await getOnce(wharfPort, '/cold/hello');
    const coldSpareMs = performance.now() - s0;
    await new Promise((r) => setTimeout(r, 1000));
    const coldWorker = workerPids(children[children.length - 1]!.pid!, 'ColdPool')[0];
    const freshRss = coldWorker !== undefined ? rssMiB(coldWorker) : undefined;
    const freshPrivate = coldWorker !== undefined ? privateMiB(coldWorker) : undefined;

    const fwdPort = await freePort();
    children.push(await start(pin(0, [process.execPath, join(DIST_BENCH, 'servers/http-forward.js'), String(fwdPort)]), /ready/));
    groups.set(fwdPort, children[children.length - 1]!.pid!);
    const sendPort = await freePort();
    children.push(await start(pin(0, [process.execPath, join(DIST_BENCH, 'servers/send-static.js'), String(sendPort), www]), /ready/));
    groups.set(sendPort, children[children.length - 1]!.pid!);

    let nginxPort: number | undefined;
    let proxyPort: number | undefined;
    const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
    if (nginxBin !== undefined) {
      nginxPort = await freePort();
      proxyPort = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(
        conf,
        `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log;
events { worker_connections 1024; }
http { access_log ${dir}/nginx-access.log; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path ${dir}/nt; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf; uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  server { listen 127.0.0.1:${nginxPort}; root ${www};
    location = /hello { default_type text/plain; return 200 'hello world'; } }
  # The peer setup Wharf replaces: nginx in front of node apps (run by PM2 or systemd), keep-alive upstreams.
  upstream node_hello { server 127.0.0.1:${nodePort}; keepalive 64; }
  upstream express_app { server 127.0.0.1:${expressDirectPort}; keepalive 64; }
  server { listen 127.0.0.1:${proxyPort};
    proxy_http_version 1.1; proxy_set_header Connection "";
    location = /node { proxy_pass http://node_hello/; }
    location = /express { proxy_pass http://express_app/; } } }\n`,
      );
      const [cmd, ...args] = pin(0, [nginxBin, '-c', conf, '-e', join(dir, 'nginx-error.log')]);
      const ng = spawn(cmd!, args, { stdio: 'ignore', detached: true });
      children.push(ng);
      groups.set(nginxPort, ng.pid!);
      groups.set(proxyPort, ng.pid!);
      await waitForPort(nginxPort);
    }

    const pgidsOf = (port: number): number[] => [...(groups.has(port) ? [groups.get(port)!] : []), ...(extraGroups.get(port) ?? [])];
    const scenarios: Array<[string, number, string]> = [
      ['nodeHello', nodePort, '/'],
      ['wharfHello', wharfPort, '/hello'],
      ['fwdHello', fwdPort, '/'],
      ['wharf1k', wharfPort, '/uncached/1k.txt'],
      ['wharf1kCache', wharfPort, '/1k.txt'],
      ['send1k', sendPort, '/1k.txt'],
      ['wharf100k', wharfPort, '/uncached/100k.txt'],
      ['wharf100kCache', wharfPort, '/100k.txt'],
      ['send100k', sendPort, '/100k.txt'],
      ['wharfNodeApp', nodeAppPort, '/'],
      ['expressDirect', expressDirectPort, '/'],
      ['wharfExpress', expressPort, '/'],
      ['wharfAzure', azurePort, '/'],
      ['wharfAzure1k', azurePort, '/1k.txt'],
    ];
    if (nginxPort !== undefined) scenarios.push(['nginxHello', nginxPort, '/hello'], ['nginx1k', nginxPort, '/1k.txt'], ['nginx100k', nginxPort, '/100k.txt']);
    if (proxyPort !== undefined) {
      scenarios.push(['proxyNode', proxyPort, '/node'], ['proxyExpress', proxyPort, '/express']);
      // The proxy's CPU per request includes its upstream's.
      extraGroups.set(proxyPort, [groups.get(nodePort)!, groups.get(expressDirectPort)!]);
    }
    const best = new Map<string, number>();
    const cpu = new Map<string, number>();
    for (const [, port, path] of scenarios) if ((await getOnce(port, path)) !== 200) throw new Error(`bench scenario ${port}${path} does not answer 200`);
    for (const [, port, path] of scenarios) wrk(port, path, 1); // warm-up: JIT, caches, connections
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, port, path] of scenarios) {
        const m = wrk(port, path, DURATION, pgidsOf(port));
        best.set(name, Math.max(best.get(name) ?? 0, m.rps));
        if (m.cpuUs > 0) cpu.set(name, Math.min(cpu.get(name) ?? Infinity, m.cpuUs));
      }
    }
    // The worker after the hello and static loads, now idle: what one pool costs in memory.
    const wharfPid = groups.get(wharfPort)!;
    const workerPid = workerPids(wharfPid, 'BenchPool')[0];
    const workerRss = workerPid !== undefined ? rssMiB(workerPid) : undefined;
    const workerPrivate = workerPid !== undefined ? privateMiB(workerPid) : undefined;
    const listenerRss = rssMiB(wharfPid);
    // Scale: idle keep-alive connections held by the listener (one timer-wheel entry each).
    const fdLimit = openFileLimit();
    const idle = fdLimit !== undefined && fdLimit >= IDLE_CONNECTIONS + 1000 ? await idleConnections(wharfPort, wharfPid, IDLE_CONNECTIONS) : undefined;

    // Zero-drop: fresh servers, after the throughput runs so that nothing else is measured meanwhile.
    // The load client runs in this process: give it wrk's core.
    if (TASKSET) spawnSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    const zeroDropSeconds = 2 * DURATION;
    const killed = await zeroDrop(dir, zeroDropSeconds, (pid) => killWorker(pid));
    const recycled = await zeroDrop(dir, zeroDropSeconds, (_pid, configFile) => recyclePool(configFile, 'ZeroDrop'));

    const r = (k: string): number => best.get(k) ?? 0;
    const nodeHello = r('nodeHello');
    const wharfHello = r('wharfHello');
    const fwdHello = r('fwdHello');
    const wharf1k = r('wharf1k');
    const send1k = r('send1k');
    const wharf100k = r('wharf100k');
    const wharf1kCache = r('wharf1kCache');
    const wharf100kCache = r('wharf100kCache');
    const send100k = r('send100k');
    const nginx = nginxPort !== undefined ? { hello: r('nginxHello'), s1k: r('nginx1k'), s100k: r('nginx100k') } : undefined;
    const wharfNodeApp = r('wharfNodeApp');
    const expressDirect = r('expressDirect');
    const wharfExpress = r('wharfExpress');
    const wharfAzure = r('wharfAzure');
    const wharfAzure1k = r('wharfAzure1k');
    const proxy = proxyPort !== undefined ? { node: r('proxyNode'), express: r('proxyExpress') } : undefined;

    const fmt = (n: number): string => n.toFixed(0).padStart(8);
    const ratio = (a: number, b: number | undefined): string => (b ? (a / b).toFixed(2) + 'x' : '  -  ').padStart(7);
    console.log(`\nWharf bench — ${new Date().toISOString()} — wrk -t1 -c${CONNECTIONS} -d${DURATION}s, best of ${ROUNDS} rounds, ${TASKSET ? 'server on CPU 0, wrk on CPU 1' : 'no taskset: unpinned'}`);
    console.log(`${'scenario'.padEnd(42)}${'req/s'.padStart(8)}  vs node hello  vs nginx same  CPU µs/req`);
    const cpuOf = new Map<number, string>([
      [nodeHello, 'nodeHello'], [wharfHello, 'wharfHello'], [fwdHello, 'fwdHello'], [wharf1k, 'wharf1k'], [send1k, 'send1k'],
      [wharf100k, 'wharf100k'], [send100k, 'send100k'], [wharf1kCache, 'wharf1kCache'], [wharf100kCache, 'wharf100kCache'],
      [wharfNodeApp, 'wharfNodeApp'], [expressDirect, 'expressDirect'], [wharfExpress, 'wharfExpress'], [wharfAzure, 'wharfAzure'], [wharfAzure1k, 'wharfAzure1k'],
    ]);
    if (proxy) cpuOf.set(proxy.node, 'proxyNode').set(proxy.express, 'proxyExpress');
    if (nginx) for (const [k, v] of [['nginxHello', nginx.hello], ['nginx1k', nginx.s1k], ['nginx100k', nginx.s100k]] as const) cpuOf.set(v, k);
    const row = (name: string, rps: number, nginxSame: number | undefined, extra = ''): void => {
      const c = cpu.get(cpuOf.get(rps) ?? '');
      const cpuText = (c !== undefined ? c.toFixed(1) : '-').padStart(10);
      console.log(`${name.padEnd(42)}${fmt(rps)}  ${ratio(rps, nodeHello)}        ${ratio(rps, nginxSame)}  ${cpuText}  ${extra}`);
    };
    row('bare node:http hello', nodeHello, nginx?.hello);
    row('Wharf hello (listener → worker module)', wharfHello, nginx?.hello);
    row('HTTP/1.1 forward to a worker (node→node)', fwdHello, nginx?.hello);
    row('Wharf static 1 KiB (listener cache)', wharf1kCache, nginx?.s1k);
    row('static 1 KiB in public/ of Azure rules', wharfAzure1k, nginx?.s1k, `${(wharfAzure1k / wharf1kCache).toFixed(2)}x listener cache without rules`);
    row('Wharf static 1 KiB (through the worker)', wharf1k, nginx?.s1k, `${(wharf1k / send1k).toFixed(2)}x send`);
    row('send static 1 KiB', send1k, nginx?.s1k);
    row('Wharf static 100 KiB (listener cache)', wharf100kCache, nginx?.s100k);
    row('Wharf static 100 KiB (through the worker)', wharf100k, nginx?.s100k, `${(wharf100k / send100k).toFixed(2)}x send`);
    row('send static 100 KiB', send100k, nginx?.s100k);
    row('Wharf hosted node:http app hello', wharfNodeApp, nginx?.hello, `(target ≥ 0.75x node hello)`);
    row('Express 5 hello, listening directly', expressDirect, nginx?.hello);
    row('Express 5 hello, hosted by Wharf', wharfExpress, nginx?.hello, `${(wharfExpress / expressDirect).toFixed(2)}x direct (target ≥ 0.85x)`);
    row('Express 5 hello + Azure rewrite rules', wharfAzure, nginx?.hello, `${(wharfAzure / wharfExpress).toFixed(2)}x hosted without rules`);
    if (proxy) {
      // The peer: nginx in front of the same apps listening by themselves (nginx + PM2).
      row('nginx → node:http hello (keep-alive proxy)', proxy.node, nginx?.hello, `Wharf hosted: ${(wharfNodeApp / proxy.node).toFixed(2)}x this`);
      row('nginx → Express 5 hello (keep-alive proxy)', proxy.express, nginx?.hello, `${(proxy.express / expressDirect).toFixed(2)}x direct; Wharf hosted: ${(wharfExpress / proxy.express).toFixed(2)}x this`);
    }
    if (nginx) {
      row('nginx return 200', nginx.hello, nginx.hello);
      row('nginx static 1 KiB', nginx.s1k, nginx.s1k);
      row('nginx static 100 KiB', nginx.s100k, nginx.s100k);
    } else {
      console.log('(nginx not installed: apt-get install nginx-light for the nginx columns)');
    }
    const cw = cpu.get('wharfHello');
    const cn = cpu.get('nodeHello');
    if (cw !== undefined && cn !== undefined) console.log(`CPU efficiency, hello: node:http ${cn.toFixed(1)} µs/req, Wharf ${cw.toFixed(1)} µs/req (all processes) → ${(cn / cw).toFixed(2)}x`);
    console.log(`Wharf start to listening: ${serverStartMs.toFixed(0)} ms; cold start of a pool (first response): ${coldStartMs.toFixed(0)} ms spawning node, ${coldSpareMs.toFixed(0)} ms with the pre-started spare worker`);
    console.log(
      `Wharf idle worker after one request: RSS ${freshRss !== undefined ? `${freshRss.toFixed(1)} MiB` : '-'}, ` +
        `private ${freshPrivate !== undefined ? `${freshPrivate.toFixed(1)} MiB` : '-'} (the rest is node's binary, file-backed and shared by every worker)`,
    );
    console.log(
      `Wharf idle worker after the hello and static loads: RSS ${workerRss !== undefined ? `${workerRss.toFixed(1)} MiB, private ${workerPrivate?.toFixed(1) ?? '-'} MiB (pid ${workerPid})` : 'no worker found'}; ` +
        `listener process ${listenerRss !== undefined ? `${listenerRss.toFixed(1)} MiB` : '-'}`,
    );
    if (idle === undefined) {
      console.log(`10,000 idle connections: skipped — ulimit -n is ${fdLimit ?? 'unknown'}; raise it first (ulimit -n 20000), both this process and Wharf need one fd per connection`);
    } else {
      console.log(
        `10,000 idle connections: listener RSS +${idle.growthMiB !== undefined ? idle.growthMiB.toFixed(1) : '-'} MiB` +
          (idle.held < IDLE_CONNECTIONS ? ` (only ${idle.held} connections held)` : ` (${((idle.growthMiB ?? 0) * 1024 * 1024 / IDLE_CONNECTIONS / 1024).toFixed(1)} KiB per connection)`),
      );
    }
    // 1,000 slow clients trickling a header byte a second (default headerWaitTimeout: 120 s, so
    // they stay): what do they cost normal clients of the same listener?
    {
      // Interleaved, best of two each: one run alone is too noisy on a shared machine.
      let alone = 0;
      let beside = 0;
      for (let round = 0; round < 2; round++) {
        alone = Math.max(alone, wrk(wharfPort, '/1k.txt', DURATION).rps);
        const slow = await start(pin(1, [process.execPath, join(DIST_BENCH, 'servers/slow-clients.js'), String(wharfPort), '1000', String(DURATION + 20)]), /ready/);
        children.push(slow);
        beside = Math.max(beside, wrk(wharfPort, '/1k.txt', DURATION).rps);
        stop(slow);
        await sleep(500);
      }
      console.log(`1,000 slow connections (a header byte a second each): 1 KiB from the cache ${beside.toFixed(0)} req/s beside them vs ${alone.toFixed(0)} alone → ${(beside / alone).toFixed(2)}x`);
    }
    await observability(dir);
    await compression(dir, nginxBin);
    await tls(dir, nginxBin);
    await auth(dir);
    await hosted(dir, { repo: REPO, rounds: ROUNDS, duration: DURATION, pin, freePort, start, stop, wrk });
    console.log(`Zero-drop — ${ZERO_DROP_CONNECTIONS} keep-alive clients (bench/load-client.ts, no retries), a fault every ${FAULT_EVERY_MS / 1000} s for ${zeroDropSeconds} s:`);
    console.log(zeroDropLine('kill -9 every 2 s', killed));
    console.log(zeroDropLine('recycle every 2 s', recycled));
  } finally {
    for (const c of children) stop(c);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
