/**
 * A real MariaDB server for one test file (Debian's mariadb-server, nothing mocked): its own data
 * folder made by mariadb-install-db in a temporary folder, its own unix socket there, and a free
 * TCP port on 127.0.0.1. One database and one user are made for the application under test; the
 * server is stopped and its folder removed by stop(), and killed when the test process exits.
 *
 * Probe for the programs first with `needs(t, mariadb())` from ./skip.js.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { isRoot, programPath } from './skip.js';
import { freePort, tempDir } from './wharf.js';

export interface MariaDbOptions {
  /** Database made for the application (letters, digits, `_`): `app` by default. */
  readonly database?: string;
  /** Its user, who may do anything in that database and nothing elsewhere: `app` by default. */
  readonly user?: string;
  /** That user's password (no quotes or backslashes): a random one by default. */
  readonly password?: string;
  /** How long the server may take to become ready (ms): 60 s by default. */
  readonly startTimeoutMs?: number;
}

export interface MariaDb {
  /** The server's folder: data, socket, error log. */
  readonly dir: string;
  readonly socket: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** The server's process id (a test may check it is still running). */
  readonly pid: number;
  /** Runs SQL as the database administrator over the socket; resolves with the client's tab-separated output. */
  sql(statements: string, database?: string): Promise<string>;
  /** The server's error log so far (start-up and shutdown notes, errors). */
  errorLog(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 20 s) and removes its folder. */
  stop(): Promise<void>;
}

const IDENTIFIER = /^[A-Za-z0-9_]{1,32}$/;

/**
 * Settings for a throw-away server: small InnoDB files (the default log alone is 96 MiB), no
 * durability at commit (a test's data does not outlive the test), utf8mb4 as Debian's own
 * configuration sets it (--no-defaults leaves latin1), names never looked up in DNS.
 */
const SERVER_SETTINGS = [
  '--innodb-log-file-size=8M',
  '--innodb-buffer-pool-size=32M',
  '--innodb-flush-log-at-trx-commit=2',
  '--innodb-doublewrite=0',
  '--character-set-server=utf8mb4',
  '--collation-server=utf8mb4_unicode_ci',
  '--skip-name-resolve',
];

/** Servers of this process, killed when it exits (a test that failed before stop()). */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
}

function program(name: string): string {
  const p = programPath(name);
  if (p === undefined) throw new Error(`${name} is not installed (apt-get install mariadb-server); probe with needs(t, mariadb()) first`);
  return p;
}

/** The administrator: root logs on over the socket as the Linux user of the same name (unix_socket). */
const adminUser = (): string => (isRoot ? 'root' : userInfo().username);

export async function startMariaDb(options: MariaDbOptions = {}): Promise<MariaDb> {
  const database = options.database ?? 'app';
  const user = options.user ?? 'app';
  const password = options.password ?? `pw${Math.random().toString(36).slice(2, 14)}`;
  for (const [what, v] of [['database', database], ['user', user]] as const) {
    if (!IDENTIFIER.test(v)) throw new Error(`MariaDB ${what} name ${JSON.stringify(v)}: use 1 to 32 letters, digits or _`);
  }
  if (!/^[\x21-\x7e]{1,64}$/.test(password) || /['"\\`]/.test(password)) {
    throw new Error('MariaDB password: use 1 to 64 printable ASCII characters without quotes or backslashes');
  }
  installExitHook();
  const dir = tempDir('wharf-mariadb-');
  // Pool users (PHP runs as the pool's user when tests run as root) must reach the socket.
  chmodSync(dir, 0o755);
  const data = join(dir, 'data');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const socket = join(dir, 'mysqld.sock');
  const errorLogFile = join(dir, 'error.log');
  const asUser = isRoot ? ['--user=root'] : [];

  const install = spawnSync(
    program('mariadb-install-db'),
    ['--no-defaults', `--datadir=${data}`, ...asUser, '--auth-root-authentication-method=socket', '--skip-test-db', ...SERVER_SETTINGS],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (install.status !== 0) {
    throw new Error(`mariadb-install-db failed (${install.error?.message ?? `exit ${install.status}`}):\n${install.stdout}\n${install.stderr}`);
  }

  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  let child: ChildProcess | undefined;
  let port = 0;
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    const c = spawn(
      program('mariadbd'),
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${join(dir, 'mariadbd.pid')}`,
        `--log-error=${errorLogFile}`,
        `--tmpdir=${tmp}`,
        ...asUser,
        ...SERVER_SETTINGS,
      ],
      { stdio: 'ignore' },
    );
    running.add(c);
    const outcome = await waitReady(c, errorLogFile, startTimeoutMs);
    if (outcome === 'ready') {
      child = c;
    } else {
      running.delete(c);
      const log = readLog(errorLogFile);
      // Another test took the port between freePort() and the bind: try another one.
      if (outcome === 'exited' && /Address already in use|Do you already have another/.test(log) && attempt < 5) continue;
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mariadbd did not become ready (${outcome === 'timeout' ? `not within ${startTimeoutMs} ms` : 'it exited'}):\n${log}`);
    }
  }
  const server = child;

  const sql = (statements: string, db?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const args = ['--no-defaults', `--socket=${socket}`, `--user=${adminUser()}`, '--batch', '--skip-column-names', '-e', statements];
      if (db !== undefined) args.push(db);
      const c = spawn(program('mariadb'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
      c.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      c.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`mariadb client exited ${code}: ${err.trim()}`));
      });
    });

  try {
    // The same account from TCP (127.0.0.1) and from the socket (localhost).
    await sql(
      [
        `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
        `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}'`,
        `CREATE USER '${user}'@'localhost' IDENTIFIED BY '${password}'`,
        `GRANT ALL PRIVILEGES ON \`${database}\`.* TO '${user}'@'127.0.0.1', '${user}'@'localhost'`,
      ].join('; '),
    );
  } catch (err) {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    dir,
    socket,
    host: '127.0.0.1',
    port,
    database,
    user,
    password,
    pid: server.pid ?? 0,
    sql,
    errorLog: () => readLog(errorLogFile),
    async stop() {
      if (server.exitCode === null && server.signalCode === null) {
        const done = new Promise<void>((resolve) => server.once('exit', () => resolve()));
        server.kill('SIGTERM');
        const timer = setTimeout(() => server.kill('SIGKILL'), 20_000);
        await done;
        clearTimeout(timer);
      }
      running.delete(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '(no error log)';
  }
}

/** Ready when the error log says so (after the socket and the port are open), or why not. */
async function waitReady(c: ChildProcess, logFile: string, timeoutMs: number): Promise<'ready' | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(logFile) && /mariadbd: ready for connections/.test(readLog(logFile))) return 'ready';
    if (c.exitCode !== null || c.signalCode !== null) return 'exited';
    if (Date.now() > deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, 50));
  }
}
