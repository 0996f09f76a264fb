/**
 * The test applications under test/fixtures/apps (plain http + ws, Express, Fastify, Koa): each
 * is an ordinary app with its own package.json and lockfile, installed here with `npm ci` the
 * first time a test needs it, and run either directly with node or under Wharf.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FIXTURES, freePort } from './wharf.js';

export const APPS = join(FIXTURES, 'apps');

/** `npm ci` in the app's folder unless its node_modules is in place; one installer at a time per app. */
export function ensureAppInstalled(name: string): void {
  const dir = join(APPS, name);
  if (existsSync(join(dir, 'node_modules', '.package-lock.json'))) return;
  const lock = join(dir, '.installing');
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test file installs it: wait for that one.
      if (Date.now() > deadline) throw new Error(`timed out waiting for another npm ci in ${dir}`);
      execFileSync(process.execPath, ['-e', 'setTimeout(() => {}, 250)']);
      if (existsSync(join(dir, 'node_modules', '.package-lock.json'))) return;
    }
  }
  try {
    if (existsSync(join(dir, 'node_modules', '.package-lock.json'))) return;
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'], timeout: 170_000 });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly trailers: Record<string, string | undefined>;
  json(): unknown;
  text(): string;
}

export interface SendOptions {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** One request on a fresh connection to 127.0.0.1:port (Host as given). */
export function send(port: number, host: string, o: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method ?? 'GET', path: o.path, headers: { host, ...(o.headers ?? {}) }, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const body = Buffer.concat(parts);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            trailers: res.trailers,
            json: () => JSON.parse(body.toString('utf8')) as unknown,
            text: () => body.toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

export interface DirectApp {
  readonly port: number;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Run the app the ordinary way, `node <entry>` with PORT set, and wait until it accepts connections. */
export async function runDirect(name: string, entry: string): Promise<DirectApp> {
  const port = await freePort();
  const child = spawn(process.execPath, [entry], { cwd: join(APPS, name), env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}
