/**
 * `wharf stop` and `wharf status`: the whole server, as `net stop w3svc` and `iisreset /status`
 * are to IIS, over the admin socket (docs/cli.md, "Stopping and reloading"). `wharf stop` asks
 * for the same drain as SIGTERM and waits until the main process has exited; `wharf status`
 * prints the state and exits 0 when a server answers, 3 when none does (LSB's "not running",
 * which `systemctl status` also uses), 4 when it cannot tell.
 */
import { readFileSync } from 'node:fs';
import { formatError, formatSummary } from '../admin/appcmd.js';
import { adminCall } from '../admin/client.js';
import { formatTimeSpan } from '../admin/objects.js';
import type { AdminObject, AdminResponse, AdminStatus } from '../admin/types.js';
import { AdminError } from '../errors.js';
import { adminTarget, type AdminTarget } from './admin-target.js';

export const EXIT_NOT_RUNNING = 3;
export const EXIT_UNKNOWN = 4;
/** How long past its drain budget `wharf stop` waits for the main process before giving up. */
const STOP_GRACE_MS = 15_000;

const SERVICE = 'Wharf ( W3SVC )';

/** `wharf stop` alone (no object: `wharf stop site X` is appcmd's) or `wharf status`. */
export function isLifecycleInvocation(argv: readonly string[]): boolean {
  const words = positionals(argv);
  if (words === undefined) return false;
  const verb = words[0]?.toLowerCase();
  return verb === 'status' || (verb === 'stop' && words.length === 1);
}

/** The words that are not options (or option values); undefined when an option lacks its value. */
function positionals(argv: readonly string[]): string[] | undefined {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config' || a === '-p' || a === '--port') {
      if (argv[++i] === undefined) return undefined;
    } else if (!a.startsWith('-')) {
      out.push(a);
    }
  }
  return out;
}

interface LifecycleArgs {
  readonly verb: 'stop' | 'status';
  readonly configFile: string | undefined;
  readonly port: number | undefined;
  readonly help: boolean;
}

function parse(argv: readonly string[]): LifecycleArgs | string {
  let configFile: string | undefined;
  let port: number | undefined;
  let help = false;
  let verb: 'stop' | 'status' | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq === -1 ? a : a.slice(0, eq);
    const inline = eq === -1 ? undefined : a.slice(eq + 1);
    if (flag === '-c' || flag === '--config') {
      configFile = inline ?? argv[++i];
      if (configFile === undefined || configFile === '') return `${flag} needs a value`;
    } else if (flag === '-p' || flag === '--port') {
      const value = inline ?? argv[++i];
      port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65535) return `--port must be a number from 1 to 65535, not "${value ?? ''}"`;
    } else if (flag === '-h' || flag === '--help') {
      help = true;
    } else if (verb === undefined && (a.toLowerCase() === 'stop' || a.toLowerCase() === 'status')) {
      verb = a.toLowerCase() as 'stop' | 'status';
    } else {
      return `unexpected argument "${a}"`;
    }
  }
  if (verb === undefined) return 'expected stop or status';
  if (configFile !== undefined && port !== undefined) {
    return '--port applies to the embedded default only; with --config the configuration file names the server';
  }
  return { verb, configFile, port, help };
}

const USAGE = `Usage:
  wharf stop [--config <applicationHost.config> | --port <n>]
  wharf status [--config <applicationHost.config> | --port <n>]

stop     Drain and stop the server started with that --config (none: the embedded default, with
         --port if it was started with one), as SIGTERM does; waits until it has exited.
         Exit 0 stopped, 3 not running, 1 error.
status   Print the server's state, pid, uptime, configuration, sites and pools.
         Exit 0 running, 3 not running, 4 unknown (no permission, no answer).
`;

/** Where the server for these arguments listens, and how to name it in messages. */
function target(args: LifecycleArgs): AdminTarget {
  return adminTarget(args.configFile, args.port);
}

/** Nothing listens on the socket (as opposed to: something is there but we may not, or it is mute). */
function notRunning(err: unknown): boolean {
  const code = (err as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code;
  return err instanceof AdminError && err.code === 'ADM_CONNECT' && (code === 'ENOENT' || code === 'ECONNREFUSED');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A live process (a zombie has exited: only its parent has not collected it yet). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // no /proc (or gone): ask the kernel
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function count(objects: readonly AdminObject[], state: string): number {
  return objects.filter((o) => o.properties['state'] === state).length;
}


/** The status screen: iisreset's first line, the server's particulars, then `list`'s lines for sites and pools. */
export function formatStatus(s: AdminStatus): string {
  const lines = [
    `Status for ${SERVICE} : Running`,
    `  pid:               ${s.pid}`,
    `  uptime:            ${formatTimeSpan(s.uptimeMs - (s.uptimeMs % 1000))} (since ${s.startedAt})`,
    `  configuration:     ${s.configFile} (generation ${s.generation})`,
    `  system drive:      ${s.systemDrive}`,
    `  admin socket:      ${s.adminSocket}`,
    `  sites:             ${count(s.sites, 'Started')} started, ${count(s.sites, 'Stopped')} stopped`,
    `  application pools: ${count(s.appPools, 'Started')} started, ${count(s.appPools, 'Stopped')} stopped; ` +
      `${s.workerProcesses} worker process${s.workerProcesses === 1 ? '' : 'es'}, ` +
      `${s.requestsInFlight} request${s.requestsInFlight === 1 ? '' : 's'} in flight`,
    ...s.sites.map(formatSummary),
    ...s.appPools.map(formatSummary),
  ];
  return lines.join('\n') + '\n';
}

async function status(args: LifecycleArgs): Promise<number> {
  const { socketPath, label } = target(args);
  let response: AdminResponse;
  try {
    response = await adminCall(socketPath, { op: 'status' }, 10000, label);
  } catch (err) {
    if (notRunning(err)) {
      process.stdout.write(`Status for ${SERVICE} : Stopped\n`);
      process.stderr.write(`${messageOf(err)}\n`);
      return EXIT_NOT_RUNNING;
    }
    process.stdout.write(`Status for ${SERVICE} : Unknown\n`);
    process.stderr.write(formatError(messageOf(err)) + '\n');
    return EXIT_UNKNOWN;
  }
  if (!response.ok || response.status === undefined) {
    process.stdout.write(`Status for ${SERVICE} : Unknown\n`);
    process.stderr.write(formatError(response.ok ? 'The server did not report its status.' : response.error) + '\n');
    return EXIT_UNKNOWN;
  }
  process.stdout.write(formatStatus(response.status));
  return 0;
}

async function stop(args: LifecycleArgs): Promise<number> {
  const { socketPath, label } = target(args);
  let response: AdminResponse;
  try {
    response = await adminCall(socketPath, { op: 'shutdown' }, 10000, label);
  } catch (err) {
    if (notRunning(err)) {
      process.stdout.write('The Wharf service is not started.\n');
      process.stderr.write(`${messageOf(err)}\n`);
      return EXIT_NOT_RUNNING;
    }
    process.stderr.write(formatError(messageOf(err)) + '\n');
    return 1;
  }
  if (!response.ok || response.pid === undefined) {
    process.stderr.write(formatError(response.ok ? 'The server did not say which process stops.' : response.error) + '\n');
    return 1;
  }
  const pid = response.pid;
  const limitMs = (response.drainMs ?? 90_000) + STOP_GRACE_MS;
  process.stdout.write(`The Wharf service (pid ${pid}) is stopping.\n`);
  const deadline = Date.now() + limitMs;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      const err = new AdminError(
        'ADM_STOP_TIMEOUT',
        `Wharf (pid ${pid}) is still running ${Math.round(limitMs / 1000)} s after it was asked to stop (its drain budget plus ${STOP_GRACE_MS / 1000} s). Send SIGTERM again to stop it at once.`,
      );
      process.stderr.write(formatError(err.message) + '\n');
      return 1;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write('The Wharf service was stopped successfully.\n');
  return 0;
}

/** Runs `wharf stop|status …`; resolves with the exit code. */
export async function runLifecycleCommand(argv: readonly string[]): Promise<number> {
  const args = parse(argv);
  if (typeof args === 'string') {
    process.stderr.write(`wharf: ${args}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  return args.verb === 'stop' ? stop(args) : status(args);
}
