/**
 * `BENCH_ONLY=hosted npm run bench` (issue 19): the five rows that say whether hosting an app in
 * Wharf beats the setup it replaces, each against its peer in the same run.
 *
 * - hosted `node:http` hello vs nginx → the same server listening on a unix socket (upstream
 *   keepalive 64, HTTP/1.1, `Connection ""`: the peer at its best). The same through a TCP upstream
 *   is printed as an extra row.
 * - hosted Express 5 hello vs nginx → the same Express app on a unix socket.
 * - CPU µs per hosted hello, every process of Wharf, vs a bare node:http server (the physical cost of
 *   the two-process design).
 * - a static 100 KiB file the listener does not cache (so every request goes through the worker)
 *   vs nginx `sendfile on` serving the same file.
 * - the private memory (RssAnon + VmSwap) of an idle worker that has served one request, 3 s after
 *   it and again after every round ran (minutes: V8 gives the start-up's young generation back
 *   only after some seconds idle).
 *
 * Every server runs pinned to CPU 0 and wrk to CPU 1; rounds interleave peers (alternating which
 * goes first), the best round counts and every round is printed so the noise is visible.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { BenchTools } from './ip-flood.js';
import { workerPids } from './procs.js';

interface Round {
  readonly rps: number;
  readonly cpuUs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The issue's measure of what one more worker costs: anonymous resident pages plus swapped ones. */
function privateWithSwapMiB(pid: number): number {
  return (statusKb(pid, 'RssAnon') + statusKb(pid, 'VmSwap')) / 1024;
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForFile(path: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`hosted bench: ${path} did not appear`);
    await sleep(50);
  }
}

/**
 * The embedded default applicationHost.config (every module a user gets, the W3C log on) with the
 * bench's pools and sites in place of the default site. Pools run as the user who runs the bench,
 * as nginx's workers do here.
 */
function wharfConfig(repo: string, dir: string, port: number, appPort: number, expressPort: number): string {
  const base = readFileSync(join(repo, 'assets/default/applicationHost.config'), 'utf8');
  const pools = `<applicationPools>
      <add name="StaticPool" />
      <add name="IdlePool" />
      <add name="NodeAppPool" />
      <add name="ExpressPool"><environmentVariables><add name="NODE_ENV" value="production" /></environmentVariables></add>
      <applicationPoolDefaults><processModel identityType="LocalSystem" /></applicationPoolDefaults>
    </applicationPools>`;
  const sites = `<sites>
      <site name="Static" id="1">
        <application path="/" applicationPool="StaticPool"><virtualDirectory path="/" physicalPath="${dir}/hosted-www" /></application>
        <application path="/idle" applicationPool="IdlePool"><virtualDirectory path="/" physicalPath="${dir}/hosted-www" /></application>
        <bindings><binding protocol="http" bindingInformation="127.0.0.1:${port}:" /></bindings>
      </site>
      <site name="NodeApp" id="2">
        <application path="/" applicationPool="NodeAppPool"><virtualDirectory path="/" physicalPath="${dir}/hosted-node" /></application>
        <bindings><binding protocol="http" bindingInformation="127.0.0.1:${appPort}:" /></bindings>
      </site>
      <site name="ExpressApp" id="3">
        <application path="/" applicationPool="ExpressPool"><virtualDirectory path="/" physicalPath="${dir}/hosted-express" /></application>
        <bindings><binding protocol="http" bindingInformation="127.0.0.1:${expressPort}:" /></bindings>
      </site>
      <siteDefaults><logFile logFormat="W3C" directory="${dir}/hosted-logs" /></siteDefaults>
    </sites>`;
  const node = (site: string): string =>
    `<location path="${site}"><system.webServer><handlers><clear /><add name="node" path="*" verb="*" modules="iisnode" scriptProcessor="server.js" /></handlers></system.webServer></location>`;
  const out = base
    .replace(/<applicationPools>[\s\S]*?<\/applicationPools>/, pools)
    .replace(/<sites>[\s\S]*?<\/sites>/, sites)
    .replace(
      /<\/configuration>\s*$/,
      `${node('NodeApp')}\n${node('ExpressApp')}\n<location path="Static"><system.webServer><caching enableKernelCache="false" /></system.webServer></location>\n</configuration>\n`,
    );
  if (out === base || !out.includes('hosted-express')) throw new Error('hosted bench: the default applicationHost.config no longer has the expected sections');
  return out;
}

function nginxConfig(dir: string, port: number, proxyPort: number, nodeTcpPort: number): string {
  // As root, nginx's workers would run as nobody and could not connect to the apps' sockets.
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  return `daemon off; worker_processes 1; ${user} pid ${dir}/hosted-nginx.pid; error_log ${dir}/hosted-nginx-error.log;
events { worker_connections 1024; }
http { access_log ${dir}/hosted-nginx-access.log combined buffer=64k; sendfile on; tcp_nopush on; keepalive_requests 100000;
  client_body_temp_path ${dir}/hnt; proxy_temp_path ${dir}/hnp; fastcgi_temp_path ${dir}/hnf; uwsgi_temp_path ${dir}/hnu; scgi_temp_path ${dir}/hns;
  upstream node_unix { server unix:${dir}/node-hello.sock; keepalive 64; }
  upstream express_unix { server unix:${dir}/express.sock; keepalive 64; }
  upstream node_tcp { server 127.0.0.1:${nodeTcpPort}; keepalive 64; }
  server { listen 127.0.0.1:${port}; root ${dir}/hosted-www; }
  server { listen 127.0.0.1:${proxyPort};
    proxy_http_version 1.1; proxy_set_header Connection "";
    location = /node { proxy_pass http://node_unix/; }
    location = /express { proxy_pass http://express_unix/; }
    location = /node-tcp { proxy_pass http://node_tcp/; } } }
`;
}

export async function hosted(dir: string, t: BenchTools): Promise<void> {
  const www = join(dir, 'hosted-www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, '100k.txt'), Buffer.alloc(100 * 1024, 'b'));
  writeFileSync(join(www, '1k.txt'), Buffer.alloc(1024, 'a'));
  cpSync(join(t.repo, 'bench/fixtures/node-hello-app'), join(dir, 'hosted-node'), { recursive: true });
  const expressSrc = join(t.repo, 'test/fixtures/apps/express');
  if (!existsSync(join(expressSrc, 'node_modules', '.package-lock.json'))) {
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: expressSrc, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('hosted bench: npm ci for the Express app failed');
  }
  cpSync(expressSrc, join(dir, 'hosted-express'), { recursive: true });
  chmodSync(dir, 0o755);
  const children: ChildProcess[] = [];
  try {
    // The peers' apps: the same files Wharf hosts, run with `node server.js` as PM2 or systemd would.
    const nodeTcpPort = await t.freePort();
    const bare = await t.start(t.pin(0, [process.execPath, join(t.repo, 'dist/bench/servers/node-hello.js'), String(nodeTcpPort)]), /ready/);
    children.push(bare);
    const appEnv = (port: string): NodeJS.ProcessEnv => ({ ...process.env, PORT: port, NODE_ENV: 'production' });
    const unixNode = spawnApp(t.pin(0, [process.execPath, join(dir, 'hosted-node', 'server.js')]), appEnv(join(dir, 'node-hello.sock')));
    const unixExpress = spawnApp(t.pin(0, [process.execPath, join(dir, 'hosted-express', 'server.js')]), appEnv(join(dir, 'express.sock')));
    children.push(unixNode, unixExpress);
    await waitForFile(join(dir, 'node-hello.sock'), 10_000);
    await waitForFile(join(dir, 'express.sock'), 10_000);

    const port = await t.freePort();
    const appPort = await t.freePort();
    const expressPort = await t.freePort();
    writeFileSync(join(dir, 'hosted.config'), wharfConfig(t.repo, dir, port, appPort, expressPort));
    const wharf = await t.start(t.pin(0, [process.execPath, join(t.repo, 'bin/wharf.js'), 'start', '--config', join(dir, 'hosted.config'), '--system-drive', join(dir, 'sd-hosted')]), /Wharf is serving/);
    children.push(wharf);

    const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
    let ngPort: number | undefined;
    let proxyPort: number | undefined;
    let nginx: ChildProcess | undefined;
    if (nginxBin !== undefined) {
      ngPort = await t.freePort();
      proxyPort = await t.freePort();
      writeFileSync(join(dir, 'hosted-nginx.conf'), nginxConfig(dir, ngPort, proxyPort, nodeTcpPort));
      const [cmd, ...args] = t.pin(0, [nginxBin, '-c', join(dir, 'hosted-nginx.conf'), '-e', join(dir, 'hosted-nginx-error.log')]);
      nginx = spawn(cmd!, args, { stdio: 'ignore', detached: true });
      children.push(nginx);
      await waitForFile(join(dir, 'hosted-nginx.pid'), 10_000);
    }

    // The idle worker: a pool started by one request, then left alone for a few seconds.
    if ((await get(port, '/idle/1k.txt')) !== 200) throw new Error('hosted bench: /idle/1k.txt does not answer 200');
    const idleSince = performance.now();
    await sleep(3000);
    const idleWorker = workerPids(wharf.pid!, 'IdlePool')[0];
    const idleMiB = idleWorker !== undefined ? privateWithSwapMiB(idleWorker) : undefined;

    const W = [wharf.pid!];
    const scenarios: Array<{ name: string; port: number; path: string; pgids: number[] }> = [
      { name: 'bare node:http hello', port: nodeTcpPort, path: '/', pgids: [bare.pid!] },
      { name: 'Wharf hosted node:http hello', port: appPort, path: '/', pgids: W },
      { name: 'Wharf hosted Express 5 hello', port: expressPort, path: '/', pgids: W },
      { name: 'Wharf static 100 KiB via the worker', port, path: '/100k.txt', pgids: W },
    ];
    if (ngPort !== undefined && proxyPort !== undefined && nginx !== undefined) {
      scenarios.push(
        { name: 'nginx → node:http hello (unix)', port: proxyPort, path: '/node', pgids: [nginx.pid!, unixNode.pid!] },
        { name: 'nginx → Express 5 hello (unix)', port: proxyPort, path: '/express', pgids: [nginx.pid!, unixExpress.pid!] },
        { name: 'nginx → node:http hello (tcp)', port: proxyPort, path: '/node-tcp', pgids: [nginx.pid!, bare.pid!] },
        { name: 'nginx static 100 KiB', port: ngPort, path: '/100k.txt', pgids: [nginx.pid!] },
      );
    }
    for (const s of scenarios) if ((await get(s.port, s.path)) !== 200) throw new Error(`hosted bench: ${s.name} (${s.port}${s.path}) does not answer 200`);
    for (const s of scenarios) t.wrk(s.port, s.path, 2, [], []); // warm-up: JIT, connections
    const rounds = new Map<string, Round[]>();
    for (let round = 0; round < t.rounds; round++) {
      const order = round % 2 === 0 ? scenarios : [...scenarios].reverse();
      for (const s of order) {
        const m = t.wrk(s.port, s.path, t.duration, s.pgids, []);
        rounds.set(s.name, [...(rounds.get(s.name) ?? []), { rps: m.rps, cpuUs: m.cpuUs }]);
      }
    }
    // The same worker again after every round ran beside it: idle for minutes, as most pools are.
    const idleLaterMiB = idleWorker !== undefined ? privateWithSwapMiB(idleWorker) : undefined;
    const idleMinutes = (performance.now() - idleSince) / 60_000;
    const best = (name: string): number | undefined => {
      const rs = rounds.get(name);
      return rs === undefined ? undefined : Math.max(...rs.map((r) => r.rps));
    };
    const cpu = (name: string): number | undefined => {
      const rs = rounds.get(name)?.filter((r) => r.cpuUs > 0);
      return rs === undefined || rs.length === 0 ? undefined : Math.min(...rs.map((r) => r.cpuUs));
    };
    const list = (name: string): string => (rounds.get(name) ?? []).map((r) => r.rps.toFixed(0)).join(' ');
    const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? `${(a / b).toFixed(2)}x` : '-');

    console.log(`\nHosted apps, large files, worker memory (issue 19) — servers on CPU 0, wrk -t1 on CPU 1, ${t.duration} s × ${t.rounds} rounds (best counts)`);
    console.log(`${'row'.padEnd(44)}${'Wharf'.padStart(9)}${'peer'.padStart(9)}  ratio   target   rounds Wharf | peer`);
    const line = (label: string, w: string, p: string, peer: string | undefined, r: string, target: string, rw = '', rp = ''): void =>
      console.log(`${label.padEnd(44)}${w.padStart(9)}${p.padStart(9)}  ${r.padEnd(7)} ${target.padEnd(8)} ${rw}${rp !== '' ? ` | ${rp}` : ''}${peer !== undefined ? `   (peer: ${peer})` : ''}`);
    const n = (v: number | undefined, digits = 0): string => (v === undefined ? '-' : v.toFixed(digits));
    const pair = (label: string, wharfName: string, peerName: string, target: string): void =>
      line(label, n(best(wharfName)), n(best(peerName)), peerName, ratio(best(wharfName), best(peerName)), target, list(wharfName), list(peerName));
    pair('hosted node:http hello, req/s', 'Wharf hosted node:http hello', 'nginx → node:http hello (unix)', '≥ 1.0x');
    pair('hosted Express 5 hello, req/s', 'Wharf hosted Express 5 hello', 'nginx → Express 5 hello (unix)', '≥ 1.15x');
    const cw = cpu('Wharf hosted node:http hello');
    const cb = cpu('bare node:http hello');
    line('hosted hello, CPU µs/request (all processes)', n(cw, 1), n(cb, 1), 'bare node:http', ratio(cw, cb), '≤ 2.0x');
    pair('static 100 KiB through the worker, req/s', 'Wharf static 100 KiB via the worker', 'nginx static 100 KiB', '≥ 0.8x');
    line('idle worker after one request, private MiB', n(idleMiB, 1), '', undefined, '', '≤ 16', `3 s after it; ${n(idleLaterMiB, 1)} MiB ${idleMinutes.toFixed(1)} min after it`);
    pair('(extra) hosted hello vs nginx → node tcp', 'Wharf hosted node:http hello', 'nginx → node:http hello (tcp)', '');
    const cn = cpu('nginx → node:http hello (unix)');
    const ce = cpu('Wharf hosted Express 5 hello');
    const cne = cpu('nginx → Express 5 hello (unix)');
    console.log(
      `CPU µs/request: hosted hello ${n(cw, 1)} vs nginx → node (unix) ${n(cn, 1)}; hosted Express ${n(ce, 1)} vs nginx → Express ${n(cne, 1)}; ` +
        `static 100 KiB ${n(cpu('Wharf static 100 KiB via the worker'), 1)} vs nginx ${n(cpu('nginx static 100 KiB'), 1)}; bare node ${n(cb, 1)}`,
    );
    if (nginxBin === undefined) console.log('(nginx not installed: apt-get install nginx-light for the peer columns)');
  } finally {
    for (const c of children) t.stop(c);
    await sleep(500);
  }
}

function spawnApp(argv: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [cmd, ...args] = argv;
  return spawn(cmd!, args, { stdio: 'ignore', detached: true, env });
}
