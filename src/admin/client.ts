/**
 * The CLI's side of the admin socket: one JSON request line out, one JSON answer line back.
 * Failures to reach the server become AdminError ADM_CONNECT with a message that says what to do.
 */
import { createConnection } from 'node:net';
import { AdminError } from '../errors.js';
import type { AdminRequest, AdminResponse } from './types.js';
import { ADMIN_SOCKET_ENV, MAX_SOCKET_PATH_BYTES } from './paths.js';

/** Answers carry whole object lists (`list apppools /text:*`); cap them anyway. */
export const MAX_RESPONSE_LINE_BYTES = 64 * 1024 * 1024;

function connectError(err: NodeJS.ErrnoException, socketPath: string, configFile: string | undefined): AdminError {
  const serving = configFile !== undefined ? ` for ${configFile}` : '';
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new AdminError(
        'ADM_CONNECT',
        `Wharf is not running${serving}: nothing answers on its admin socket ${socketPath}. ` +
          `If it runs as another user, run this command as that user or as root (or point ${ADMIN_SOCKET_ENV} at its socket).`,
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new AdminError(
        'ADM_CONNECT',
        `Permission denied on the admin socket ${socketPath}${serving}: run as root or as the user the server runs as.`,
        { cause: err },
      );
    default:
      return new AdminError('ADM_CONNECT', `Cannot reach the admin socket ${socketPath}${serving}: ${err.message}`, { cause: err });
  }
}

function isResponse(value: unknown): value is AdminResponse {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (v['ok'] === true) return v['objects'] === undefined || Array.isArray(v['objects']);
  return v['ok'] === false && typeof v['error'] === 'string' && typeof v['code'] === 'string';
}

/**
 * Sends one request to the server listening on `socketPath` and resolves with its answer (which
 * may itself be `{ok:false}`). Rejects with AdminError: ADM_CONNECT when the server cannot be
 * reached or does not answer in time, ADM_REQUEST when the answer is not a Wharf answer.
 * `configFile` only improves the messages ("Wharf is not running for …").
 */
export function adminCall(socketPath: string, request: AdminRequest, timeoutMs = 10000, configFile?: string): Promise<AdminResponse> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    return Promise.reject(
      new AdminError('ADM_CONNECT', `The admin socket path ${socketPath} is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket allows; set ${ADMIN_SOCKET_ENV} to a shorter path.`),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: socketPath });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (err: AdminError | undefined, response?: AdminResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(
      () => finish(new AdminError('ADM_CONNECT', `The server on the admin socket ${socketPath} did not answer within ${timeoutMs} ms.`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(JSON.stringify(request) + '\n'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(connectError(err, socketPath, configFile)));
    socket.on('close', () => finish(new AdminError('ADM_CONNECT', `The server on the admin socket ${socketPath} closed the connection without answering.`)));
    socket.on('data', (chunk: Buffer) => {
      const nl = chunk.indexOf(0x0a);
      chunks.push(nl === -1 ? chunk : chunk.subarray(0, nl));
      bytes += nl === -1 ? chunk.length : nl;
      if (bytes > MAX_RESPONSE_LINE_BYTES) {
        finish(new AdminError('ADM_REQUEST', `The answer on the admin socket ${socketPath} is longer than ${MAX_RESPONSE_LINE_BYTES} bytes.`));
        return;
      }
      if (nl === -1) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        parsed = undefined;
      }
      if (!isResponse(parsed)) {
        finish(new AdminError('ADM_REQUEST', `Something that is not Wharf answers on the admin socket ${socketPath}.`));
        return;
      }
      finish(undefined, parsed);
    });
  });
}
