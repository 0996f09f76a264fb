/**
 * The main process's admin socket: a Unix socket, mode 0600 in a 0700 directory, so only root and
 * the server's own user can connect (the file system is the access check, as for appcmd's
 * "run as administrator"). One JSON request per line, one JSON answer per line; a bad line gets an
 * error answer and the connection stays usable. Nothing a client sends can crash the server or
 * make it buffer without limit.
 */
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { AdminError } from '../errors.js';
import { adminCall } from './client.js';
import { ADMIN_SOCKET_ENV, MAX_SOCKET_PATH_BYTES } from './paths.js';
import { ADMIN_OBJECT_KINDS, type AdminObjectKind, type AdminRequest, type AdminResponse, type AdminTarget } from './types.js';

/** Longest request line accepted; requests are a few dozen bytes. */
export const MAX_REQUEST_LINE_BYTES = 64 * 1024;
/** A connection with nothing to say for this long is closed. */
const IDLE_TIMEOUT_MS = 60_000;
const MAX_CONNECTIONS = 32;
/** How long a socket file's owner gets to answer `hello` before it is presumed alive but mute. */
const PROBE_TIMEOUT_MS = 2000;

export interface AdminServer {
  readonly path: string;
  /** Stops accepting, drops open connections and removes the socket file. */
  close(): Promise<void>;
}

export interface AdminLog {
  warn(message: string): void;
}

function requestError(message: string): AdminError {
  return new AdminError('ADM_REQUEST', message);
}

/**
 * Creates the socket's directory 0700 when missing. An existing one must belong to this user or
 * root and not be writable by others (unless sticky, like /tmp): whoever can write the directory
 * could replace the socket with their own.
 */
function prepareDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new AdminError('ADM_REQUEST', `Cannot create the admin socket directory ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const st = statSync(dir);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw requestError(`The admin socket directory ${dir} belongs to another user (uid ${st.uid}); remove it or set ${ADMIN_SOCKET_ENV}.`);
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw requestError(`The admin socket directory ${dir} is writable by other users; make it 0700 or set ${ADMIN_SOCKET_ENV}.`);
  }
}

/** Refuses to start when a live server owns the socket; removes the file a dead one left behind. */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw requestError(`${path} exists and is not a socket; remove it or set ${ADMIN_SOCKET_ENV}.`);
  let hello: AdminResponse | undefined;
  try {
    hello = await adminCall(path, { op: 'hello' }, PROBE_TIMEOUT_MS);
  } catch (err) {
    const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
    if (code !== 'ECONNREFUSED' && code !== 'ENOENT') {
      throw requestError(`Another process listens on the admin socket ${path} (${(err as Error).message}); stop it or set ${ADMIN_SOCKET_ENV}.`);
    }
  }
  if (hello !== undefined) {
    const pid = hello.ok && hello.pid !== undefined ? `pid ${hello.pid}` : 'pid unknown';
    throw requestError(`Another Wharf serves this configuration (${pid}, admin socket ${path}).`);
  }
  // Nobody listens: a server that died without cleaning up.
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function isKind(value: unknown): value is AdminObjectKind {
  return typeof value === 'string' && (ADMIN_OBJECT_KINDS as readonly string[]).includes(value);
}

/** Checks a decoded line against the AdminRequest union (the client may be anything). */
function toRequest(value: unknown): AdminRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw requestError('Malformed request: expected a JSON object.');
  const v = value as Record<string, unknown>;
  const op = v['op'];
  const kind = v['kind'];
  const name = v['name'];
  switch (op) {
    case 'hello':
    case 'status':
    case 'metrics':
    case 'shutdown':
      return { op };
    case 'list':
      if (!isKind(kind)) throw requestError(`Malformed request: unknown object kind ${JSON.stringify(kind)}.`);
      return { op, kind };
    case 'start':
    case 'stop':
    case 'recycle': {
      const allowed = op === 'recycle' ? ['APPPOOL'] : ['APPPOOL', 'SITE'];
      if (typeof kind !== 'string' || !allowed.includes(kind)) {
        throw requestError(`The command "${op}" is not supported on object ${JSON.stringify(kind)}.`);
      }
      if (typeof name !== 'string' || name === '') throw requestError(`Malformed request: "${op}" needs the name of the ${kind}.`);
      return op === 'recycle' ? { op, kind: 'APPPOOL', name } : { op, kind: kind as 'APPPOOL' | 'SITE', name };
    }
    case 'logs': {
      if (kind !== 'APPPOOL') throw requestError(`The command "logs" is not supported on object ${JSON.stringify(kind)}.`);
      if (typeof name !== 'string' || name === '') throw requestError('Malformed request: "logs" needs the name of the APPPOOL.');
      const lines = v['lines'];
      if (typeof lines !== 'number' || !Number.isInteger(lines) || lines < 1) throw requestError('Malformed request: "logs" needs lines, a positive integer.');
      return { op, kind, name, lines };
    }
    default:
      throw requestError(`Malformed request: unknown op ${JSON.stringify(op)}.`);
  }
}

/** An answer, and what to do once it has been written (`shutdown` starts draining only then). */
interface Performed {
  readonly response: AdminResponse;
  readonly after?: () => void;
}

async function perform(target: AdminTarget, request: AdminRequest): Promise<Performed> {
  switch (request.op) {
    case 'hello':
      return { response: { ok: true, pid: process.pid } };
    case 'list':
      return { response: { ok: true, objects: target.list(request.kind) } };
    case 'start':
      return { response: { ok: true, message: await (request.kind === 'SITE' ? target.startSite(request.name) : target.startAppPool(request.name)) } };
    case 'stop':
      return { response: { ok: true, message: await (request.kind === 'SITE' ? target.stopSite(request.name) : target.stopAppPool(request.name)) } };
    case 'recycle':
      return { response: { ok: true, message: await target.recycleAppPool(request.name) } };
    case 'logs':
      return { response: { ok: true, ...target.poolOutput(request.name, request.lines) } };
    case 'status':
      return { response: { ok: true, status: target.status() } };
    case 'metrics':
      return { response: { ok: true, metrics: await target.metrics() } };
    case 'shutdown': {
      // The drain closes this socket first thing: answer, then begin.
      const { pid, drainMs, begin } = target.shutdown();
      return { response: { ok: true, pid, drainMs, message: `Wharf (pid ${pid}) is stopping.` }, after: begin };
    }
  }
}

/** One answer line for one request line (and what to do once it is written); never rejects. */
async function answer(line: string, target: AdminTarget, log: AdminLog): Promise<{ text: string; after?: (() => void) | undefined }> {
  let request: AdminRequest | undefined;
  try {
    let decoded: unknown;
    try {
      decoded = JSON.parse(line);
    } catch {
      throw requestError('Malformed request: not JSON.');
    }
    request = toRequest(decoded);
    const performed = await perform(target, request);
    return { text: JSON.stringify(performed.response), after: performed.after };
  } catch (err) {
    if (err instanceof AdminError) return { text: JSON.stringify({ ok: false, code: err.code, error: err.message } satisfies AdminResponse) };
    // A bug in the server's target (or an unserialisable answer): reported, not fatal.
    log.warn(`admin socket: ${request?.op ?? 'request'} failed: ${(err as Error)?.stack ?? String(err)}`);
    const message = err instanceof Error ? err.message : String(err);
    return { text: JSON.stringify({ ok: false, code: 'ADM_REQUEST', error: message } satisfies AdminResponse) };
  }
}

function serveConnection(socket: Socket, target: AdminTarget, log: AdminLog): void {
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  // A client that goes away mid-answer is its own problem.
  socket.on('error', () => undefined);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let done = false;
  const tooLong = (): void => {
    done = true;
    const error = `Request line longer than ${MAX_REQUEST_LINE_BYTES} bytes.`;
    socket.end(JSON.stringify({ ok: false, code: 'ADM_REQUEST', error } satisfies AdminResponse) + '\n');
  };
  // Answers go out in request order even when one takes a while (starting a site listens).
  let queue: Promise<void> = Promise.resolve();
  const reply = (line: string): void => {
    queue = queue.then(async () => {
      const { text, after } = await answer(line, target, log);
      if (socket.destroyed) {
        after?.();
        return;
      }
      // Backpressure: a client that sends without reading stops being read. `after` runs once
      // the answer is handed to the kernel (or the client is gone), never before.
      if (!socket.write(text + '\n', () => after?.())) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  };
  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      const piece = chunk.subarray(start, nl);
      const line = pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      if (line.length > MAX_REQUEST_LINE_BYTES) return tooLong();
      const text = line.toString('utf8').trim();
      if (text !== '') reply(text);
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_REQUEST_LINE_BYTES) tooLong();
    }
  });
}

/**
 * Listens on `socketPath` and answers with `target`. Rejects with AdminError ADM_REQUEST when
 * another live server owns the socket, or the path or its directory cannot be used safely.
 */
export async function startAdminServer(socketPath: string, target: AdminTarget, log: AdminLog): Promise<AdminServer> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw requestError(`The admin socket path ${socketPath} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket allows; set ${ADMIN_SOCKET_ENV} to a shorter path.`);
  }
  prepareDirectory(dirname(socketPath));
  await clearStaleSocket(socketPath);

  const connections = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serveConnection(socket, target, log);
  });
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'another server took it at the same moment' : err.message;
      reject(new AdminError('ADM_REQUEST', `Cannot listen on the admin socket ${socketPath}: ${why}`, { cause: err }));
    });
    // With the usual umask the socket starts without group/other write (connect needs write);
    // the chmod below makes it exactly 0600 whatever the umask.
    server.listen({ path: socketPath, readableAll: false, writableAll: false }, resolve);
  });
  let inode: number;
  try {
    chmodSync(socketPath, 0o600);
    inode = lstatSync(socketPath).ino;
  } catch (err) {
    server.close();
    throw new AdminError('ADM_REQUEST', `Cannot secure the admin socket ${socketPath}: ${(err as Error).message}`, { cause: err });
  }
  server.on('error', (err) => log.warn(`admin socket ${socketPath}: ${err.message}`));

  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of connections) s.destroy();
      }).then(() => {
        // Only our own socket: a server started after us may have replaced the file.
        try {
          if (lstatSync(socketPath).ino === inode) unlinkSync(socketPath);
        } catch {
          // already gone
        }
      });
      return closing;
    },
  };
}
