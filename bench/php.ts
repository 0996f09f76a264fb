/**
 * `BENCH_ONLY=php npm run bench` (issue 18, Performance): PHP through Wharf's FastCgiModule (its
 * worker's php-cgi processes, kept-alive unix socket connections) against the setup it replaces,
 * nginx → php-fpm (pm = static, a unix socket, fastcgi_keep_conn with an upstream keepalive pool).
 *
 * Fair by construction: the same number of PHP processes on both sides (BENCH_PHP_PROCESSES), the
 * same php.ini (php-cgi and php-fpm read /etc/php/<v>/cgi/ and /etc/php/<v>/fpm/ on Debian; both
 * get PHP_ARGS on their command line and the effective settings are compared before measuring), an
 * access log on both sides (Wharf's W3C log as IIS keeps it, nginx's buffered), no process
 * rotation during the run, and every server with its PHP processes pinned to CPU 0 (children
 * inherit the affinity) while wrk runs on CPU 1.
 *
 * Rows: hello.php (`echo "Hello, world\n"`) and a 100 KiB response made by str_repeat. Each round
 * measures both servers back to back (alternating which goes first); the best round counts, and
 * every round is printed so the noise is visible.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchTools } from './ip-flood.js';

/**
 * PHP processes per side: php-cgi instances (maxInstances) and php-fpm children (pm.max_children).
 * 4 is where both do best on one core (measured 2, 4, 8, 16: nginx + php-fpm is flat from 2 to 8,
 * Wharf gains from 2 to 4 and is flat to 8; 16 costs both).
 */
const PROCESSES = Number(process.env['BENCH_PHP_PROCESSES'] ?? 4);
/** On both command lines. Debian's cgi and fpm php.ini are the same file today; this makes sure of opcache. */
const PHP_ARGS = ['-d', 'opcache.enable=1'];
/** Compared between the two sides before measuring (a difference is an error, not a footnote). */
const COMPARED_SETTINGS = [
  'opcache.enable',
  'opcache.jit',
  'opcache.jit_buffer_size',
  'opcache.validate_timestamps',
  'opcache.revalidate_freq',
  'opcache.memory_consumption',
  'output_buffering',
  'zlib.output_compression',
  'implicit_flush',
  'realpath_cache_size',
  'zend.assertions',
  'expose_php',
  'memory_limit',
];
const HELLO = 'Hello, world\n';
const BIG = 100 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function phpFpmBinary(): string | undefined {
  for (const d of ['/usr/sbin', '/usr/bin']) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    const found = names.filter((n) => /^php-fpm[\d.]*$/.test(n)).sort().pop();
    if (found !== undefined) return join(d, found);
  }
  return undefined;
}

function wharfConfig(root: string, port: number, phpCgi: string): string {
  const args = PHP_ARGS.join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="PhpBench" /></applicationPools>
    <sites>
      <site name="Php" id="1">
        <application path="/" applicationPool="PhpBench"><virtualDirectory path="/" physicalPath="${root}/php-www" /></application>
        <bindings><binding protocol="http" bindingInformation="127.0.0.1:${port}:" /></bindings>
      </site>
      <siteDefaults><logFile directory="${root}/logs-php" /></siteDefaults>
    </sites>
  </system.applicationHost>
  <system.webServer>
    <!-- No rotation during the run (php-fpm's pm.max_requests is 0): IIS's largest instanceMaxRequests. -->
    <fastCgi>
      <application fullPath="${phpCgi}" arguments="${args}" maxInstances="${PROCESSES}" instanceMaxRequests="10000000" />
    </fastCgi>
    <modules>
      <add name="RequestFilteringModule" />
      <add name="DefaultDocumentModule" />
      <add name="StaticFileModule" />
      <add name="CustomErrorModule" />
      <add name="FastCgiModule" />
    </modules>
    <handlers accessPolicy="Read, Script">
      <add name="PHP" path="*.php" verb="GET,HEAD,POST" modules="FastCgiModule" scriptProcessor="${phpCgi}|${args}" resourceType="Either" requireAccess="Script" />
      <add name="StaticFile" path="*" verb="*" modules="StaticFileModule,DefaultDocumentModule" resourceType="Either" requireAccess="Read" />
    </handlers>
  </system.webServer>
</configuration>
`;
}

function fpmConfig(dir: string): string {
  // php-fpm run by root must name the children's user (as the Debian pool does: www-data).
  const user = process.getuid?.() === 0 ? `user = ${existsSync('/etc/php') && spawnSync('id', ['www-data'], { stdio: 'ignore' }).status === 0 ? 'www-data' : 'nobody'}\n` : '';
  return `[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
daemonize = no

[bench]
${user}listen = ${dir}/php-fpm.sock
listen.mode = 0666
listen.backlog = 511
pm = static
pm.max_children = ${PROCESSES}
pm.max_requests = 0
`;
}

function nginxConfig(dir: string, port: number): string {
  const params = existsSync('/etc/nginx/fastcgi_params') ? 'include /etc/nginx/fastcgi_params;' : '';
  return `daemon off; worker_processes 1; pid ${dir}/nginx-php.pid; error_log ${dir}/nginx-php-error.log;
events { worker_connections 1024; }
http { access_log ${dir}/nginx-php-access.log combined buffer=64k flush=5s; sendfile on; tcp_nopush on; keepalive_requests 100000; default_type text/plain;
  client_body_temp_path ${dir}/nt; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf; uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  # One idle kept-alive connection per php-fpm child: a child serves one connection until it closes.
  upstream php_fpm { server unix:${dir}/php-fpm.sock; keepalive ${PROCESSES}; }
  server { listen 127.0.0.1:${port}; root ${dir}/php-www;
    location ~ \\.php$ {
      ${params}
      fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
      fastcgi_keep_conn on;
      # Room for a 100 KiB response in memory (the default 8 × 4 KiB would spill it to a temp file).
      fastcgi_buffer_size 16k; fastcgi_buffers 16 16k;
      fastcgi_pass php_fpm; } } }
`;
}

async function waitForFile(path: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await sleep(50);
  }
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** One measurement: req/s, server CPU per request (µs), 99th percentile latency (ms). */
type Round = { readonly rps: number; readonly cpuUs: number; readonly p99Ms?: number };

interface Side {
  readonly name: 'Wharf' | 'nginx';
  readonly port: number;
  readonly pgids: readonly number[];
}

export async function php(dir: string, t: BenchTools): Promise<void> {
  const phpCgi = ['/usr/bin/php-cgi'].find((p) => existsSync(p));
  if (phpCgi === undefined) {
    console.log('\nPHP: skipped (needs php-cgi: apt-get install php-cgi)');
    return;
  }
  const www = join(dir, 'php-www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'hello.php'), `<?php echo "Hello, world\\n";\n`);
  writeFileSync(join(www, '100k.php'), `<?php echo str_repeat('x', ${BIG});\n`);
  writeFileSync(
    join(www, 'settings.php'),
    `<?php header('Content-Type: application/json');
$s = ['sapi' => PHP_SAPI, 'version' => PHP_VERSION, 'opcache' => function_exists('opcache_get_status') && (opcache_get_status(false)['opcache_enabled'] ?? false)];
foreach (${JSON.stringify(COMPARED_SETTINGS).replaceAll('"', "'")} as $k) $s[$k] = ini_get($k);
echo json_encode($s);\n`,
  );
  chmodSync(dir, 0o755); // php-fpm's children and Wharf's pool identity read php-www/
  const children: ChildProcess[] = [];
  try {
    const sides: Side[] = [];
    const wharfPort = await t.freePort();
    const file = join(dir, 'php.config');
    writeFileSync(file, wharfConfig(dir, wharfPort, phpCgi));
    const wharf = await t.start(t.pin(0, [process.execPath, join(t.repo, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', join(dir, 'sd-php')]), /Wharf is serving/);
    children.push(wharf);
    sides.push({ name: 'Wharf', port: wharfPort, pgids: [wharf.pid!] });

    const fpm = phpFpmBinary();
    const nginxBin = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
    if (fpm !== undefined && nginxBin !== undefined) {
      writeFileSync(join(dir, 'php-fpm.conf'), fpmConfig(dir));
      const [fcmd, ...fargs] = t.pin(0, [fpm, '--nodaemonize', '--fpm-config', join(dir, 'php-fpm.conf'), ...(process.getuid?.() === 0 ? ['--allow-to-run-as-root'] : []), ...PHP_ARGS]);
      const fpmChild = spawn(fcmd!, fargs, { stdio: 'ignore', detached: true });
      children.push(fpmChild);
      await waitForFile(join(dir, 'php-fpm.sock'), 10_000);
      const ngPort = await t.freePort();
      writeFileSync(join(dir, 'nginx-php.conf'), nginxConfig(dir, ngPort));
      const [ncmd, ...nargs] = t.pin(0, [nginxBin, '-c', join(dir, 'nginx-php.conf'), '-e', join(dir, 'nginx-php-error.log')]);
      const ng = spawn(ncmd!, nargs, { stdio: 'ignore', detached: true });
      children.push(ng);
      await waitForFile(join(dir, 'nginx-php.pid'), 10_000);
      sides.push({ name: 'nginx', port: ngPort, pgids: [ng.pid!, fpmChild.pid!] });
    }

    // What each side answers, and that both run PHP alike.
    const settings = new Map<string, Record<string, unknown>>();
    for (const s of sides) {
      const hello = await get(s.port, '/hello.php');
      if (hello.status !== 200 || hello.body !== HELLO) throw new Error(`php bench: ${s.name} answers /hello.php with ${hello.status} ${JSON.stringify(hello.body.slice(0, 200))}`);
      const big = await get(s.port, '/100k.php');
      if (big.status !== 200 || big.body.length !== BIG) throw new Error(`php bench: ${s.name} answers /100k.php with ${big.status} and ${big.body.length} bytes`);
      const st = await get(s.port, '/settings.php');
      if (st.status !== 200) throw new Error(`php bench: ${s.name} answers /settings.php with ${st.status}: ${st.body.slice(0, 300)}`);
      settings.set(s.name, JSON.parse(st.body) as Record<string, unknown>);
    }
    const w = settings.get('Wharf')!;
    if (w['opcache'] !== true) throw new Error('php bench: opcache is not enabled in php-cgi');
    const n = settings.get('nginx');
    if (n !== undefined) {
      if (n['opcache'] !== true) throw new Error('php bench: opcache is not enabled in php-fpm');
      const differ = [...COMPARED_SETTINGS, 'version'].filter((k) => w[k] !== n[k]).map((k) => `${k}: php-cgi ${String(w[k])}, php-fpm ${String(n[k])}`);
      if (differ.length > 0) throw new Error(`php bench: php-cgi and php-fpm run with different settings (${differ.join('; ')})`);
    }

    const paths = [
      ['hello.php', '/hello.php', '≥ 1.0x (1.2x)'],
      ['100 KiB PHP response', '/100k.php', '≥ 1.0x'],
    ] as const;
    // Warm-up: every PHP process compiles the scripts into its opcache, JIT of Wharf's code.
    for (const s of sides) for (const [, path] of paths) t.wrk(s.port, path, 2, [], []);
    const rounds = new Map<string, Round[]>();
    for (let round = 0; round < t.rounds; round++) {
      for (const [label, path] of paths) {
        const order = round % 2 === 0 ? sides : [...sides].reverse();
        for (const s of order) {
          const m = t.wrk(s.port, path, t.duration, s.pgids, []);
          const k = `${s.name} ${label}`;
          rounds.set(k, [...(rounds.get(k) ?? []), m]);
        }
      }
    }

    const fpmName = fpm !== undefined ? fpm.slice(fpm.lastIndexOf('/') + 1) : 'php-fpm';
    console.log(
      `\nPHP — FastCGI, ${PROCESSES} PHP processes each side (Wharf: php-cgi, maxInstances ${PROCESSES}; nginx: ${fpmName} pm = static, max_children ${PROCESSES}, unix socket, fastcgi_keep_conn + keepalive ${PROCESSES}), ` +
        `every server and its PHP processes on CPU 0, wrk -t1 on CPU 1, ${t.duration} s × ${t.rounds} rounds (best counts)`,
    );
    console.log(
      `  PHP ${String(w['version'])}, the same settings both sides (each SAPI's php.ini + ${PHP_ARGS.join(' ')}; checked equal): ` +
        COMPARED_SETTINGS.map((k) => `${k}=${String(w[k]) === '' ? "''" : String(w[k])}`).join(' ') +
        '; both log every request (Wharf W3C, nginx access_log buffer=64k); no process rotation',
    );
    // p99: the median round's 99th percentile latency. nginx's kept php-fpm connections leave the
    // requests it opened more connections for waiting in php-fpm's backlog until a child is free
    // of its kept one: a fast median with a tail of seconds. Wharf queues in order in its worker.
    console.log(`${'scenario'.padEnd(24)}${'Wharf/s'.padStart(8)}${'nginx/s'.padStart(9)}  vs nginx  CPU µs W / n  p99 ms W / n  target          rounds Wharf | nginx`);
    const best = (rs: readonly Round[]): number => Math.max(...rs.map((r) => r.rps));
    const cpu = (rs: readonly Round[] | undefined): string => (rs === undefined ? '-' : Math.min(...rs.map((r) => r.cpuUs || Infinity)).toFixed(1));
    const p99 = (rs: readonly Round[] | undefined): string => {
      const v = (rs ?? []).map((r) => r.p99Ms).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
      return v.length === 0 ? '-' : v[(v.length - 1) >> 1]! < 10 ? v[(v.length - 1) >> 1]!.toFixed(1) : v[(v.length - 1) >> 1]!.toFixed(0);
    };
    const list = (rs: readonly Round[] | undefined): string => (rs === undefined ? '-' : rs.map((r) => r.rps.toFixed(0)).join(' '));
    for (const [label, , target] of paths) {
      const wr = rounds.get(`Wharf ${label}`)!;
      const nr = rounds.get(`nginx ${label}`);
      const wb = best(wr);
      const nb = nr !== undefined ? best(nr) : undefined;
      console.log(
        `${label.padEnd(24)}${wb.toFixed(0).padStart(8)}${(nb !== undefined ? nb.toFixed(0) : '-').padStart(9)}  ${(nb ? (wb / nb).toFixed(2) + 'x' : '  -  ').padStart(8)}  ` +
          `${`${cpu(wr)} / ${cpu(nr)}`.padStart(12)}  ${`${p99(wr)} / ${p99(nr)}`.padStart(12)}  ${target.padEnd(14)}  ${list(wr)} | ${list(nr)}`,
      );
    }
    if (sides.length === 1) console.log('(nginx or php-fpm not installed: apt-get install nginx-light php-fpm for the nginx column)');
  } finally {
    await stopGracefully(children[0]);
    for (const c of children) t.stop(c);
    await sleep(500);
  }
}

/**
 * Wharf stopped as an administrator stops it (SIGTERM to the main process, which ends its workers
 * and they their php-cgi processes and socket folders); signalled as a group, the workers would
 * die before removing their FastCGI socket folders. Bounded: the group is killed after 10 s anyway.
 */
async function stopGracefully(wharf: ChildProcess | undefined): Promise<void> {
  if (wharf?.pid === undefined || wharf.exitCode !== null || wharf.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => wharf.once('exit', () => resolve()));
  try {
    process.kill(wharf.pid, 'SIGTERM');
  } catch {
    return;
  }
  await Promise.race([exited, sleep(10_000)]);
}
