/**
 * Integration-test harness: copies a fixture folder to a temp dir (filling in {{PORT}} and
 * {{ROOT}}), starts a real Wharf process on it, waits until it listens, and stops it with SIGTERM.
 * When the test file's process ends, its temp folders are removed, servers a test left running are
 * killed, and, as root, the pool users and /run/wharf folders its servers created are removed
 * (machine-state.ts).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tool } from './skip.js';
import { cleanUpMachine, runBaseline } from './machine-state.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WHARF_BIN = join(REPO_ROOT, 'bin', 'wharf.js');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

/** Temp folders, servers and configurations of this process, cleaned up when it exits. */
const tempDirs = new Set<string>();
const servers = new Set<ChildProcess>();
const configs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' runs after every test and after() hook of the file: synchronous work only.
  process.on('exit', () => {
    for (const c of servers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const texts: string[] = [];
    for (const f of configs) {
      try {
        texts.push(readFileSync(f, 'utf8'));
      } catch {
        // removed by the test
      }
    }
    try {
      cleanUpMachine(texts);
    } catch (err) {
      process.stderr.write(`test cleanup: ${(err as Error).message}\n`);
    }
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

/** A temp folder removed when the test file's process exits (with its content, whoever owns it). */
export function tempDir(prefix: string): string {
  installExitHook();
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** The start of the kernel's ephemeral port range (ports it hands to connect() and listen(0)). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    // No host: the wildcard (dual-stack) address, which `*:port:` bindings take.
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/**
 * A port nothing listens on, for a server the test starts next. Chosen at random below the
 * kernel's ephemeral range, so the many outgoing connections of parallel tests (which get
 * ephemeral ports) can never take it between this check and the server's bind; another test
 * file choosing the same port is left to startWharf's retry (EADDRINUSE).
 */
export async function freePort(): Promise<number> {
  const top = Math.min(ephemeralStart(), 32768);
  const bottom = Math.max(1024, top - 12000);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${bottom}-${top}`);
}

function fillTemplates(dir: string, vars: Record<string, string>): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      fillTemplates(p, vars);
      continue;
    }
    if (!/\.(config|html?|txt)$/i.test(name)) continue;
    let text = readFileSync(p, 'utf8');
    if (!text.includes('{{')) continue;
    for (const [k, v] of Object.entries(vars)) text = text.split(`{{${k}}}`).join(v);
    writeFileSync(p, text);
  }
}

export interface WharfProcess {
  readonly port: number;
  /** The fixture copy (content, configs) for this run. */
  readonly root: string;
  readonly configFile: string;
  readonly systemDrive: string;
  readonly child: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** Wait until the server output matches. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /** W3C log lines (without # headers) of a site, for today's file. */
  logLines(siteId: number): string[];
  /** W3C records of a site as field name → value, the columns named by each file's #Fields line. */
  w3cRecords(siteId: number): Array<Record<string, string>>;
  httpErrLines(): string[];
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Fixture folder name under test/fixtures, or an absolute path. */
  readonly fixture: string;
  /** Extra template variables. */
  readonly vars?: Record<string, string>;
  /** Extra arguments after `start`. */
  readonly args?: readonly string[];
  /** Do not pass --config (embedded default). */
  readonly embedded?: boolean;
  /**
   * Files from other fixtures to copy into this one's root (name → path under test/fixtures), so
   * one test application serves several fixtures and pool users can read it wherever the repo is.
   */
  readonly files?: Record<string, string>;
  /** Variables added to the environment Wharf is started with. */
  readonly env?: Record<string, string>;
  /** stdio entries after stdin, stdout and stderr: descriptors 3, 4 … Wharf inherits. */
  readonly extraStdio?: ReadonlyArray<'ignore' | 'pipe' | number>;
}

/** Thrown by one start attempt whose port was taken between freePort() and Wharf's bind. */
class PortTaken extends Error {}

export async function startWharf(options: StartOptions): Promise<WharfProcess> {
  installExitHook();
  // The machine's state before the first server of this run (what cleanup must leave alone).
  runBaseline();
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(options, await freePort());
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 5) throw err;
    }
  }
}

async function launch(options: StartOptions, port: number): Promise<WharfProcess> {
  const root = tempDir('wharf-it-');
  // mkdtemp makes the folder 0700; pools run as their own users when the tests run as root.
  chmodSync(root, 0o755);
  const src = options.fixture.startsWith('/') ? options.fixture : join(FIXTURES, options.fixture);
  cpSync(src, root, { recursive: true });
  for (const [name, from] of Object.entries(options.files ?? {})) cpSync(join(FIXTURES, from), join(root, name), { recursive: true });
  const systemDrive = join(root, 'systemdrive');
  fillTemplates(root, { PORT: String(port), ROOT: root, ...(options.vars ?? {}) });
  const configFile = join(root, 'applicationHost.config');
  configs.add(options.embedded ? join(REPO_ROOT, 'assets', 'default', 'applicationHost.config') : configFile);
  const args = [WHARF_BIN, 'start', '--system-drive', systemDrive];
  if (!options.embedded) args.push('--config', configFile);
  else args.push('--port', String(port));
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe', ...(options.extraStdio ?? [])] as StdioOptions,
    env: { ...process.env, ...(options.env ?? {}) },
  });
  servers.add(child);
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited = false;
  child.on('exit', () => {
    exited = true;
    for (const w of waiters.splice(0)) w();
  });
  const waitForOutput = async (re: RegExp, timeoutMs = 15000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(out);
      if (m) return m[0];
      if (exited) throw new Error(`wharf exited before printing ${re}; output:\n${out}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; output:\n${out}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  };
  try {
    await waitForOutput(/Wharf is serving/);
  } catch (err) {
    // 'exit' can come before the last of stderr: wait for the streams to close.
    if (exited && child.stderr!.readableEnded === false) await new Promise((r) => child.once('close', r));
    if (exited && /EADDRINUSE|address already in use/.test(out)) {
      rmSync(root, { recursive: true, force: true });
      tempDirs.delete(root);
      throw new PortTaken(out);
    }
    throw err;
  }
  const logDir = (siteId: number): string => join(systemDrive, 'inetpub', 'logs', 'LogFiles', `W3SVC${siteId}`);
  return {
    port,
    root,
    configFile,
    systemDrive,
    child,
    output: () => out,
    waitForOutput,
    logLines(siteId) {
      const dir = logDir(siteId);
      if (!existsSync(dir)) return [];
      const lines: string[] = [];
      for (const f of readdirSync(dir).sort()) {
        for (const l of readFileSync(join(dir, f), 'utf8').split(/\r?\n/)) if (l !== '' && !l.startsWith('#')) lines.push(l);
      }
      return lines;
    },
    w3cRecords(siteId) {
      const dir = logDir(siteId);
      if (!existsSync(dir)) return [];
      const rows: Array<Record<string, string>> = [];
      for (const f of readdirSync(dir).sort()) {
        let fields: string[] = [];
        for (const l of readFileSync(join(dir, f), 'utf8').split(/\r?\n/)) {
          if (l.startsWith('#Fields: ')) fields = l.slice(9).split(' ');
          else if (l !== '' && !l.startsWith('#')) {
            const values = l.split(' ');
            rows.push(Object.fromEntries(fields.map((n, i) => [n, values[i] ?? ''])));
          }
        }
      }
      return rows;
    },
    httpErrLines() {
      const dir = join(systemDrive, 'Windows', 'System32', 'LogFiles', 'HTTPERR');
      if (!existsSync(dir)) return [];
      const lines: string[] = [];
      for (const f of readdirSync(dir).sort()) {
        for (const l of readFileSync(join(dir, f), 'utf8').split(/\r?\n/)) if (l !== '' && !l.startsWith('#')) lines.push(l);
      }
      return lines;
    },
    async stop() {
      if (exited) return child.exitCode;
      const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
      const code = await done;
      clearTimeout(timer);
      return code;
    },
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly raw: string;
}

/** Send raw bytes, read until the server closes or `until` says the data is complete. */
export async function rawRequest(
  port: number,
  data: string | Buffer,
  options: { until?: (text: string) => boolean; timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, options.timeoutMs ?? 5000);
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (options.until?.(got)) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      if (got !== '') resolve(got);
      else reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    s.write(data);
  });
}

/** Parse the first response in `raw` (Content-Length framed or to the end). */
export function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, end);
  const lines = head.split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const rest = raw.slice(end + 4);
  const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : rest.length;
  return { status, headers, body: Buffer.from(rest.slice(0, len), 'latin1'), raw };
}

/** A simple GET with node's fetch-free client: returns status, headers and body. */
export async function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  const h = { Host: 'localhost', Connection: 'close', ...headers };
  const req = `${method} ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return parseResponse(await rawRequest(port, req));
}

/** Whether process `pid` still runs (a zombie waiting for its parent to reap it counts as gone). */
export function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** Run a command (curl, wrk…) and capture its output. */
export async function run(cmd: string, args: readonly string[], timeoutMs = 30000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A tool the test needs. Prefer `needs(t, tool(name))` from ./skip.js, which skips with a reason
 * the test runner counts; this form (for code without a test context) throws under CI=true.
 */
export function requireTool(name: string): { ok: true } | { ok: false; reason: string } {
  const need = tool(name);
  if (need.met) return { ok: true };
  if (process.env['CI'] === 'true') throw new Error(`CI=true and ${need.missing}`);
  return { ok: false, reason: need.missing };
}

/** Poll until `fn` returns a truthy value (for log lines that are flushed asynchronously). */
export async function eventually<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
