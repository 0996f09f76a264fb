/**
 * `BENCH_ONLY=ip npm run bench` (issue 17, Performance): what a flood from a denied address costs
 * the clients that are allowed. One Wharf, two sites on one port: "open" (no rules) and "guarded"
 * (ipSecurity denies 127.0.0.2). wrk from 127.0.0.1 measures a 1 KiB file from the listener's
 * cache on each; then again on "guarded" while a flood client bound to 127.0.0.2 (wrk cannot bind a
 * source address) keeps 16 connections busy with pipelined requests the listener refuses with
 * 403.503 (closing the connection after it; the flooder reconnects at once); past a hundred refusals
 * a second the listener's flood shunt closes the address's new connections unread. Target: allowed
 * throughput under the flood ≥ 0.8× without it.
 *
 * Run as `node dist/bench/ip-flood.js flood <port> <seconds>` this file is the flood client.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the scenario borrows from run.ts (the same pinning, process groups and wrk as every row). */
export interface BenchTools {
  readonly repo: string;
  readonly rounds: number;
  readonly duration: number;
  pin(cpu: number, argv: string[]): string[];
  freePort(): Promise<number>;
  start(argv: string[], readyRe: RegExp): Promise<ChildProcess>;
  stop(child: ChildProcess | undefined): void;
  wrk(port: number, path: string, seconds: number, pgids: readonly number[], headers: readonly string[]): { rps: number; cpuUs: number; p99Ms?: number };
}

const FLOOD_CONNECTIONS = 16;
/** Requests written at once per flood connection before reading their answers. */
const FLOOD_PIPELINE = 16;

function config(root: string, port: number): string {
  const site = (name: string, id: number, host: string): string => `
      <site name="${name}" id="${id}">
        <application path="/" applicationPool="IpBench"><virtualDirectory path="/" physicalPath="${root}/ip-www" /></application>
        <bindings><binding protocol="http" bindingInformation="127.0.0.1:${port}:${host}" /></bindings>
      </site>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="IpBench" /></applicationPools>
    <sites>${site('Open', 1, 'open')}${site('Guarded', 2, 'guarded')}
      <siteDefaults><logFile directory="${root}/logs-ip" /></siteDefaults>
    </sites>
  </system.applicationHost>
  <system.webServer>
    <modules><add name="HttpLoggingModule" /><add name="StaticFileModule" /></modules>
    <handlers accessPolicy="Read, Script">
      <add name="StaticFile" path="*" verb="*" modules="StaticFileModule" resourceType="File" requireAccess="Read" />
    </handlers>
    <staticContent><mimeMap fileExtension=".txt" mimeType="text/plain" /></staticContent>
  </system.webServer>
  <location path="Guarded">
    <system.webServer><security><ipSecurity><add ipAddress="127.0.0.2" /></ipSecurity></security></system.webServer>
  </location>
</configuration>
`;
}

export async function ipFlood(dir: string, t: BenchTools): Promise<void> {
  mkdirSync(join(dir, 'ip-www'), { recursive: true });
  writeFileSync(join(dir, 'ip-www', '1k.txt'), Buffer.alloc(1024, 'a'));
  const port = await t.freePort();
  const file = join(dir, 'ip.config');
  writeFileSync(file, config(dir, port));
  const children: ChildProcess[] = [];
  try {
    const wharf = await t.start(t.pin(0, [process.execPath, join(t.repo, 'bin/wharf.js'), 'start', '--config', file, '--system-drive', join(dir, 'sd-ip')]), /Wharf is serving/);
    children.push(wharf);
    await new Promise((r) => setTimeout(r, 2100)); // the listener caches nothing changed in the last 2 s
    const pg = [wharf.pid!];
    for (const host of ['open', 'guarded']) t.wrk(port, '/1k.txt', 1, pg, [`Host: ${host}`]); // warm-up, fills the cache
    const best = { open: 0, guarded: 0, flooded: 0 };
    let refusedPerSecond = 0;
    let droppedPerSecond = 0;
    for (let round = 0; round < t.rounds; round++) {
      best.open = Math.max(best.open, t.wrk(port, '/1k.txt', t.duration, pg, ['Host: open']).rps);
      best.guarded = Math.max(best.guarded, t.wrk(port, '/1k.txt', t.duration, pg, ['Host: guarded']).rps);
      const flooder = await t.start(t.pin(1, [process.execPath, fileURLToPath(import.meta.url), 'flood', String(port), String(t.duration + 2)]), /flooding/);
      children.push(flooder);
      const out = new Promise<string>((resolve) => {
        let text = '';
        flooder.stdout!.on('data', (d: Buffer) => (text += d.toString()));
        flooder.on('exit', () => resolve(text));
      });
      await new Promise((r) => setTimeout(r, 500)); // the flood is under way
      best.flooded = Math.max(best.flooded, t.wrk(port, '/1k.txt', t.duration, pg, ['Host: guarded']).rps);
      const m = /refused (\d+) in ([\d.]+) s, (\d+) connections closed unanswered/.exec(await out);
      if (m === null || Number(m[1]) + Number(m[3]) === 0) throw new Error(`ip bench: the flood was not refused: ${await out}`);
      refusedPerSecond = Math.max(refusedPerSecond, Number(m[1]) / Number(m[2]));
      droppedPerSecond = Math.max(droppedPerSecond, Number(m[3]) / Number(m[2]));
    }
    console.log(`\nIP restrictions — allowed clients under a flood from a denied address (best of ${t.rounds})`);
    console.log(`${'scenario'.padEnd(52)}${'req/s'.padStart(8)}  ratio  target`);
    console.log(`${'1 KiB cached, site without rules'.padEnd(52)}${best.open.toFixed(0).padStart(8)}`);
    console.log(`${'1 KiB cached, ipSecurity site, no flood'.padEnd(52)}${best.guarded.toFixed(0).padStart(8)}  ${(best.guarded / best.open).toFixed(2)}x  (cost of the check)`);
    console.log(`${'1 KiB cached, ipSecurity site, 127.0.0.2 flooding'.padEnd(52)}${best.flooded.toFixed(0).padStart(8)}  ${(best.flooded / best.guarded).toFixed(2)}x  ≥ 0.8x`);
    console.log(`${'  (flood refused with 403.503, per second)'.padEnd(52)}${refusedPerSecond.toFixed(0).padStart(8)}`);
    console.log(`${'  (flood connections closed at accept, per second)'.padEnd(52)}${droppedPerSecond.toFixed(0).padStart(8)}`);
  } finally {
    for (const c of children) t.stop(c);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The flood client: keep-alive connections from 127.0.0.2, pipelined GETs, counting the 403s. */
async function flood(port: number, seconds: number): Promise<void> {
  const request = Buffer.from('GET /1k.txt HTTP/1.1\r\nHost: guarded\r\n\r\n'.repeat(FLOOD_PIPELINE), 'latin1');
  const deadline = Date.now() + seconds * 1000;
  const started = Date.now();
  let refused = 0;
  /** Connections the server closed without an answer (the listener's flood shunt, ip-restrictions.ts). */
  let dropped = 0;
  console.log('flooding');
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      let waiting = 0;
      let tail = '';
      const send = (): void => {
        if (Date.now() >= deadline) {
          s.end();
          return;
        }
        waiting = FLOOD_PIPELINE;
        s.write(request);
      };
      s.on('connect', send);
      s.on('data', (d: Buffer) => {
        answered = true;
        const text = tail + d.toString('latin1');
        let i = -1;
        while ((i = text.indexOf('HTTP/1.1 403', i + 1)) >= 0) {
          refused++;
          waiting--;
        }
        tail = text.slice(-11);
        if (waiting <= 0) send();
      });
      let answered = false;
      s.on('error', () => undefined);
      s.on('close', () => {
        if (!answered) dropped++;
        resolve();
      });
    });
  // A refused connection is closed by the server: the flooder opens another at once.
  const loop = async (): Promise<void> => {
    while (Date.now() < deadline) await one();
  };
  await Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, loop));
  console.log(`refused ${refused} in ${((Date.now() - started) / 1000).toFixed(1)} s, ${dropped} connections closed unanswered`);
}

if (process.argv[2] === 'flood') await flood(Number(process.argv[3]), Number(process.argv[4]));
