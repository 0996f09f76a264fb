/**
 * Where the admin socket of a running server lives. One socket per served configuration, named
 * after the absolute path of its applicationHost.config, so `wharf list sites --config X` finds the
 * server started with `wharf start --config X` without any registry of running servers.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Environment variable that names the socket outright (both server and CLI honour it). */
export const ADMIN_SOCKET_ENV = 'WHARF_ADMIN_SOCKET';

/** Linux's sockaddr_un.sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface AdminSocketOptions {
  /**
   * The embedded default started with `--port`: several of those can run at once from the same
   * file, so the port is part of their identity. Leave undefined for any other configuration.
   */
  readonly port?: number | undefined;
  /** For tests; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** For tests; default process.getuid(). */
  readonly uid?: number;
  /** For tests; default os.tmpdir(). */
  readonly tmpdir?: string;
  /** For tests; default /run/user (where systemd puts each user's $XDG_RUNTIME_DIR). */
  readonly runUserDir?: string;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function socketName(configFile: string, port: number | undefined): string {
  const identity = resolve(configFile) + (port === undefined ? '' : `\0port=${port}`);
  return `wharf-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}.sock`;
}

function uidOf(options: AdminSocketOptions): number {
  return options.uid ?? process.getuid?.() ?? 0;
}

/** /run/wharf as root, else $XDG_RUNTIME_DIR/wharf, else <tmpdir>/wharf-<uid>. */
function primaryDir(options: AdminSocketOptions): string {
  const uid = uidOf(options);
  if (uid === 0) return '/run/wharf';
  const xdg = (options.env ?? process.env)['XDG_RUNTIME_DIR'];
  if (xdg) return join(xdg, 'wharf');
  return join(options.tmpdir ?? tmpdir(), `wharf-${uid}`);
}

/**
 * The socket a server serving `configFile` listens on: `$WHARF_ADMIN_SOCKET` when set, else
 * `<dir>/wharf-<first 16 hex digits of sha256(absolute config path)>.sock`.
 */
export function adminSocketPath(configFile: string, options: AdminSocketOptions = {}): string {
  const override = (options.env ?? process.env)[ADMIN_SOCKET_ENV];
  if (override) return resolve(override);
  return join(primaryDir(options), socketName(configFile, options.port));
}

/**
 * Where the CLI looks, in order. Besides the primary path it tries this user's other directory
 * ($XDG_RUNTIME_DIR is often unset under systemd or sudo while set in a login shell, so server and
 * CLI may disagree about it) and, for a non-root user, root's /run/wharf (a connection there
 * then fails with a clear "permission denied" rather than "not running"). Root, who can reach
 * every user's socket, also looks in each user's directories.
 */
export function adminSocketCandidates(configFile: string, options: AdminSocketOptions = {}): string[] {
  const env = options.env ?? process.env;
  if (env[ADMIN_SOCKET_ENV]) return [adminSocketPath(configFile, options)];
  const uid = uidOf(options);
  const tmp = options.tmpdir ?? tmpdir();
  const name = socketName(configFile, options.port);
  const dirs = [primaryDir(options)];
  if (uid !== 0) {
    if (env['XDG_RUNTIME_DIR']) dirs.push(join(env['XDG_RUNTIME_DIR'], 'wharf'));
    dirs.push(join(tmp, `wharf-${uid}`));
    dirs.push('/run/wharf');
  } else {
    const runUser = options.runUserDir ?? '/run/user';
    for (const u of listDir(runUser).filter((e) => /^\d+$/.test(e))) dirs.push(join(runUser, u, 'wharf'));
    for (const d of listDir(tmp).filter((e) => /^wharf-\d+$/.test(e))) dirs.push(join(tmp, d));
  }
  return [...new Set(dirs.map((d) => join(d, name)))];
}
