/**
 * One FastCGI application of a worker: its processes (IIS's FastCGI process pool) or, for an
 * address, its connections, the queue of requests waiting for one, and their lifecycles.
 *
 * A started process gets its listening socket as fd 0 (FCGI_LISTENSOCK_FILENO), as IIS hands
 * php-cgi its named pipe: a unix socket in a folder only the pool's user can enter (NamedPipe),
 * or a loopback TCP port (Tcp). The processes are the worker's children: they run as the pool's
 * identity, sit in its cgroup (its CPU limit), die with it (the kernel's parent-death signal,
 * through util-linux's setpriv, and the worker's exit), and are recycled with it.
 *
 * Each process serves one request at a time over a kept-alive connection. It is replaced after
 * instanceMaxRequests requests, after idleTimeout idle, when monitorChangesTo changes, and when it
 * hangs (activityTimeout, requestTimeout) or dies; more than rapidFailsPerMinute unexpected
 * deaths in a minute take the application offline until the minute has passed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readdirSync, renameSync, rmSync, unwatchFile, watchFile, existsSync } from 'node:fs';
import { createConnection, createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcgiConnection } from './connection.js';
import type { FastCgiSettings } from './settings.js';
import { readOutputLines } from '../../output-lines.js';

/** Why a request gets no connection: the status to answer with and what to say. */
export class FastCgiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly subStatus: number,
    message: string,
    readonly hresult: number,
  ) {
    super(message);
    this.name = 'FastCgiRefusal';
  }
}

/** A connection lent to one request; give it back with release(). */
export interface Lease {
  readonly conn: FcgiConnection;
  readonly instance: Instance;
  /** Last time the application sent something for this request (activityTimeout). */
  lastActivity: number;
  readonly startedAt: number;
  /** Called by the application's timer when the request overstays: 'activity' or 'request'. */
  onTimeout: ((kind: 'activity' | 'request') => void) | undefined;
}

interface Waiter {
  resolve(lease: Lease): void;
  reject(err: Error): void;
}

export interface ApplicationHost {
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

let instanceSerial = 0;

/** The id of the newest process or connection of any application: ids grow in start order. */
export function newestInstanceId(): number {
  return instanceSerial;
}

export class Instance {
  readonly id = ++instanceSerial;
  conn: FcgiConnection | undefined;
  child: ChildProcess | undefined;
  socketPath = '';
  /** Requests given to it (instanceMaxRequests counts these). */
  served = 0;
  active = 0;
  lastUsed = Date.now();
  /** Replace it once it is idle (instanceMaxRequests, monitorChangesTo). */
  retiring = false;
  /** We ended it: its death is not a failure. */
  ending = false;
  /** #end ran for it. */
  ended = false;
  gone = false;
  leases = new Set<Lease>();
}

export class FastCgiApplication {
  readonly settings: FastCgiSettings;
  readonly #host: ApplicationHost;
  readonly #instances: Instance[] = [];
  readonly #waiters: Waiter[] = [];
  #dir: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures: number[] = [];
  #offlineUntil = 0;
  #closed = false;
  #watching = false;
  #checkedProgram = false;
  /** The file monitorChangesTo names does not exist: IIS answers every request 500 then. */
  #monitorMissing = false;

  constructor(settings: FastCgiSettings, host: ApplicationHost) {
    this.settings = settings;
    this.#host = host;
    if (settings.monitorChangesTo !== '') {
      this.#monitorMissing = !existsSync(settings.monitorChangesTo);
      watchFile(settings.monitorChangesTo, { interval: 1000, persistent: false }, (cur, prev) => {
        this.#monitorMissing = cur.ino === 0 && cur.mtimeMs === 0;
        if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) this.rotate(`${settings.monitorChangesTo} changed`);
      });
      this.#watching = true;
    }
  }

  /** Processes (or connections) alive now. */
  get instanceCount(): number {
    return this.#instances.length;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  /** Process ids of the started processes (diagnostics, tests). */
  pids(): number[] {
    const out: number[] = [];
    for (const i of this.#instances) if (i.child?.pid !== undefined) out.push(i.child.pid);
    return out;
  }

  /**
   * A connection for one request: at once when one is free or another process may start, else
   * after the requests ahead of it in the queue. Throws FastCgiRefusal when the queue is full
   * (503.4) or the application is offline (rapid fails) or cannot start.
   */
  acquire(): Lease | Promise<Lease> {
    if (this.#closed) throw new FastCgiRefusal(503, 0, `the FastCGI application ${this.settings.fullPath} is shutting down`, 0x80070000 + 1058);
    const now = Date.now();
    if (now < this.#offlineUntil) {
      throw new FastCgiRefusal(
        500,
        0,
        `${this.settings.fullPath} - The FastCGI process has failed frequently recently (more than rapidFailsPerMinute=${this.settings.rapidFailsPerMinute} times in a minute). Try the request again in a while.`,
        0x80004005,
      );
    }
    if (this.settings.address === undefined) this.#checkProgram();
    if (this.#monitorMissing) {
      throw new FastCgiRefusal(500, 0, `${this.settings.fullPath} - The file to monitor for changes, ${this.settings.monitorChangesTo} (monitorChangesTo), does not exist.`, 0x80070002);
    }
    const free = this.#freeInstance();
    if (free !== undefined && this.#waiters.length === 0) return this.#lend(free);
    if (free === undefined && this.#instances.length < this.settings.maxInstances && this.#waiters.length === 0) {
      return this.#lend(this.#start());
    }
    if (this.#waiters.length >= this.settings.queueLength) {
      throw new FastCgiRefusal(503, 4, `The FastCGI queue of ${this.settings.fullPath} is full (queueLength ${this.settings.queueLength}).`, 0x80070000 + 1260);
    }
    return new Promise<Lease>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#pump();
    });
  }

  /**
   * Give a connection back. `broken`: the request's connection or process failed or overstayed
   * (the process is ended). Afterwards the next waiting request gets a connection.
   */
  release(lease: Lease, broken: boolean): void {
    const inst = lease.instance;
    if (!inst.leases.delete(lease)) return;
    inst.active--;
    inst.lastUsed = Date.now();
    if (broken) this.#end(inst, false);
    else if ((inst.retiring || inst.served >= this.settings.instanceMaxRequests) && inst.active === 0) this.#end(inst, true);
    this.#pump();
  }

  /** Replace every process: idle ones now, busy ones when their request ends. */
  rotate(reason: string): void {
    if (this.#instances.length === 0) return;
    this.#host.log('info', `FastCGI application ${this.settings.fullPath}: restarting its processes (${reason})`);
    for (const inst of [...this.#instances]) {
      inst.retiring = true;
      if (inst.active === 0) this.#end(inst, true);
    }
  }

  /** Stop for good (the worker exits or the configuration dropped the application). */
  close(immediately: boolean): void {
    if (this.#closed && !immediately) return;
    this.#closed = true;
    if (this.#watching) unwatchFile(this.settings.monitorChangesTo);
    this.#watching = false;
    for (const w of this.#waiters.splice(0)) w.reject(new FastCgiRefusal(503, 0, `the FastCGI application ${this.settings.fullPath} was stopped`, 0x80004005));
    for (const inst of [...this.#instances]) {
      if (immediately) {
        inst.ending = true;
        if (inst.child?.pid !== undefined) killQuietly(inst.child.pid, 'SIGKILL');
      } else {
        inst.retiring = true;
        if (inst.active === 0) this.#end(inst, true);
      }
    }
    if (immediately && this.#dir !== undefined) {
      rmSync(this.#dir, { recursive: true, force: true });
      this.#dir = undefined;
    }
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #freeInstance(): Instance | undefined {
    const list = this.#instances;
    for (let i = 0; i < list.length; i++) {
      const inst = list[i]!;
      if (inst.retiring || inst.gone || inst.conn === undefined || inst.conn.closed) continue;
      if (inst.active < inst.conn.capacity && inst.served < this.settings.instanceMaxRequests) return inst;
    }
    return undefined;
  }

  #lend(inst: Instance): Lease {
    inst.active++;
    inst.served++;
    const now = Date.now();
    const lease: Lease = { conn: inst.conn!, instance: inst, lastActivity: now, startedAt: now, onTimeout: undefined };
    inst.leases.add(lease);
    this.#ensureTimer();
    return lease;
  }

  /** Hand free connections to waiting requests, starting processes while the limit allows. */
  #pump(): void {
    while (this.#waiters.length > 0) {
      let inst = this.#freeInstance();
      if (inst === undefined) {
        if (this.#instances.length >= this.settings.maxInstances || this.#closed) return;
        if (Date.now() < this.#offlineUntil) {
          for (const w of this.#waiters.splice(0)) {
            w.reject(new FastCgiRefusal(500, 0, `${this.settings.fullPath} - The FastCGI process has failed frequently recently. Try the request again in a while.`, 0x80004005));
          }
          return;
        }
        try {
          inst = this.#start();
        } catch (err) {
          for (const w of this.#waiters.splice(0)) w.reject(err as Error);
          return;
        }
      }
      this.#waiters.shift()!.resolve(this.#lend(inst));
    }
  }

  /** A new process (or, for an address, a new connection), usable at once: writes queue until it connects. */
  #start(): Instance {
    const s = this.settings;
    const inst = new Instance();
    let socket: Socket;
    if (s.address !== undefined) {
      socket = s.address.kind === 'tcp' ? createConnection({ host: s.address.host, port: s.address.port }) : createConnection({ path: s.address.path });
    } else {
      this.#checkProgram();
      socket = this.#spawn(inst);
    }
    inst.conn = new FcgiConnection(socket, {
      closed: (_conn, reason) => this.#connectionClosed(inst, reason),
    });
    // A FastCGI server may multiplex requests over one connection: ask (FCGI_GET_VALUES), and
    // its answer raises the connection's capacity. PHP does not, so php-cgi is not asked.
    if (s.address !== undefined) inst.conn.askValues();
    this.#instances.push(inst);
    return inst;
  }

  /** The program must exist and be executable before processes are started from it. */
  #checkProgram(): void {
    if (this.#checkedProgram) return;
    try {
      accessSync(this.settings.fullPath, constants.X_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FastCgiRefusal(
        500,
        0,
        code === 'ENOENT'
          ? `The FastCGI executable ${this.settings.fullPath} could not be found (fastCgi application fullPath).`
          : `The FastCGI executable ${this.settings.fullPath} cannot be run by the pool's identity (${code ?? 'error'}).`,
        code === 'ENOENT' ? 0x80070002 : 0x80070005,
      );
    }
    this.#checkedProgram = true;
  }

  /**
   * Start a process with a listening socket of its own, and connect to it. A unix socket is
   * bound at once (NamedPipe). Node binds a TCP address only after a lookup, on a later tick, so
   * for Tcp the connection is returned corked, unconnected: the request's writes wait in it until
   * the process runs and it connects.
   */
  #spawn(inst: Instance): Socket {
    const s = this.settings;
    const server: Server = createServer();
    if (s.transport === 'unix') {
      this.#dir ??= mkdtempSync(join(tmpdir(), `wharf-fastcgi-${process.pid}-`));
      const path = join(this.#dir, `${inst.id}.sock`);
      server.listen(path + '.new');
      inst.socketPath = path;
      this.#launch(inst, server);
      return createConnection({ path });
    }
    const socket = new Socket();
    socket.cork();
    server.once('error', (err) => socket.destroy(err));
    server.listen(0, '127.0.0.1', () => {
      if (inst.ended) {
        server.close();
        return;
      }
      const port = (server.address() as AddressInfo).port;
      try {
        this.#launch(inst, server);
      } catch (err) {
        socket.destroy(err as Error);
        return;
      }
      socket.connect(port, '127.0.0.1');
      socket.uncork();
    });
    return socket;
  }

  /** Run the program with the listening socket as its fd 0 (FCGI_LISTENSOCK_FILENO); closes ours. */
  #launch(inst: Instance, server: Server): void {
    const s = this.settings;
    const handle = (server as unknown as { _handle?: { fd?: number } })._handle;
    const fd = handle?.fd;
    if (fd === undefined || fd < 0) {
      server.close();
      throw new FastCgiRefusal(500, 0, `${s.fullPath} - Wharf could not create the socket for a FastCGI process`, 0x80004005);
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WHARF_')) env[k] = v;
    Object.assign(env, s.environment);
    const argv = SETPRIV !== undefined ? [SETPRIV, '--pdeathsig', 'KILL', '--', s.fullPath, ...s.arguments] : [s.fullPath, ...s.arguments];
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: [fd, 'ignore', 'pipe'], env });
    } finally {
      // The process holds its own copy of the listening socket. Closing ours removes the path
      // it was bound to, so it is moved first: the process's socket keeps the final name.
      if (s.transport === 'unix') renameSync(inst.socketPath + '.new', inst.socketPath);
      server.close();
    }
    inst.child = child;
    child.once('error', (err) => this.#host.log('error', `FastCGI application ${s.fullPath}: cannot start a process: ${err.message}`));
    child.once('exit', (code, signal) => this.#processExited(inst, code, signal));
    if (child.stderr !== null) {
      readOutputLines(child.stderr, 4096, (line) => {
        if (line.trim() !== '') this.#host.log('warn', `FastCGI process ${child.pid ?? '?'} (${s.fullPath}): ${line.slice(0, 4096)}`);
      });
    }
  }

  #connectionClosed(inst: Instance, reason: string): void {
    if (inst.child === undefined) {
      // A connection to an address: it is the instance.
      if (!inst.ending && inst.active > 0) this.#failed(`${this.settings.fullPath}: ${reason}`);
      this.#remove(inst);
      this.#pump();
      return;
    }
    // A started process's connection: the process is of no use without it. Closing it under a
    // request is a failure; closing it idle is how php-cgi ends after PHP_FCGI_MAX_REQUESTS.
    if (!inst.ending && inst.active > 0) this.#failed(`process ${inst.child.pid ?? '?'}: ${reason}`);
    if (!inst.gone) this.#end(inst, false);
    this.#pump();
  }

  #processExited(inst: Instance, code: number | null, signal: NodeJS.Signals | null): void {
    const expected = inst.ending || (code === 0 && inst.active === 0);
    if (!expected) this.#failed(`process ${inst.child?.pid ?? '?'} exited unexpectedly (${signal !== null ? `signal ${signal}` : `exit code ${code ?? '?'}`})`);
    // Counted once: its connection's close (next) is the same failure.
    inst.ending = true;
    inst.gone = true;
    inst.conn?.destroy(`the FastCGI process exited (${signal ?? `code ${code ?? '?'}`})`);
    this.#remove(inst);
    this.#pump();
  }

  /** End an instance: `gracefully` lets it finish (SIGTERM, then SIGKILL after signalBeforeTerminateSeconds). */
  #end(inst: Instance, gracefully: boolean): void {
    if (inst.ended) return;
    inst.ended = true;
    inst.ending = true;
    this.#remove(inst);
    inst.conn?.destroy(gracefully ? 'the FastCGI process was retired' : 'the FastCGI process was ended');
    const pid = inst.child?.pid;
    if (pid === undefined || inst.gone) return;
    const wait = this.settings.signalBeforeTerminateMs;
    if (gracefully && wait > 0) {
      killQuietly(pid, 'SIGTERM');
      setTimeout(() => {
        if (!inst.gone) killQuietly(pid, 'SIGKILL');
      }, wait).unref();
    } else {
      killQuietly(pid, 'SIGKILL');
    }
  }

  #remove(inst: Instance): void {
    const i = this.#instances.indexOf(inst);
    if (i === -1) return;
    this.#instances.splice(i, 1);
    if (inst.socketPath !== '') rmSync(inst.socketPath, { force: true });
    if (this.#instances.length === 0 && this.#waiters.length === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #failed(what: string): void {
    const now = Date.now();
    this.#failures = this.#failures.filter((t) => now - t < 60_000);
    this.#failures.push(now);
    const limit = this.settings.rapidFailsPerMinute;
    this.#host.log('warn', `FastCGI application ${this.settings.fullPath}: ${what}`);
    if (limit > 0 && this.#failures.length > limit) {
      this.#offlineUntil = this.#failures[0]! + 60_000;
      this.#host.log(
        'error',
        `FastCGI application ${this.settings.fullPath} failed ${this.#failures.length} times in a minute (rapidFailsPerMinute ${limit}): it is offline until ${new Date(this.#offlineUntil).toISOString()}`,
      );
    }
  }

  #ensureTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), 500);
    this.#timer.unref();
  }

  /** Every half second: requests that overstay, processes idle too long. */
  #tick(): void {
    const now = Date.now();
    const s = this.settings;
    for (const inst of [...this.#instances]) {
      for (const lease of inst.leases) {
        if (now - lease.startedAt >= s.requestTimeoutMs) lease.onTimeout?.('request');
        else if (now - lease.lastActivity >= s.activityTimeoutMs) lease.onTimeout?.('activity');
      }
      if (inst.active === 0 && now - inst.lastUsed >= s.idleTimeoutMs) this.#end(inst, true);
    }
  }
}

/**
 * Remove the socket folders of workers that are gone (a worker killed with SIGKILL cannot remove
 * its own): `wharf-fastcgi-<pid>-…` in this pool's temporary folder whose pid no longer runs.
 */
export function sweepStaleSocketFolders(): void {
  const dir = tmpdir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^wharf-fastcgi-(\d+)-/.exec(name);
    if (m === null || Number(m[1]) === process.pid || processRuns(Number(m[1]))) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
