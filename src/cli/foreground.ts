/**
 * `wharf start`'s process control: what stops the server (SIGTERM, SIGINT, `wharf stop`, a
 * launcher that was told to stop) and what reloads it (SIGHUP, a launcher that died of a SIGHUP
 * it did not pass on). Every stop is the same drain: stop taking connections, finish the requests
 * in progress within the pools' shutdownTimeLimit, stop the workers, exit 0. docs/cli.md,
 * "Stopping and reloading"; launcher.ts for the npm/npx process chain.
 */
import { findLaunchers, watchLaunchers, type Launcher } from './launcher.js';
import type { WharfServer } from '../server.js';
import type { ListenerLogger } from '../listener/listener.js';

/**
 * A second stop signal this long after the first stops at once. Closer together they are one
 * event seen twice: Ctrl+C reaches npm, which passes SIGINT on, and Wharf in the same process
 * group; systemd's KillMode=control-group signals every process of the unit.
 */
const REPEAT_SIGNAL_MS = 1000;

export interface Foreground {
  /** Call once the server has started: a stop asked for during start-up begins now. */
  started(): void;
  /** Settles when the drain is over. */
  readonly stopped: Promise<void>;
}

export function runInForeground(server: WharfServer, log: ListenerLogger): Foreground {
  let started = false;
  let stopRequested: string | undefined;
  let stoppingSince: number | undefined;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));

  const beginDrain = (source: string): void => {
    stoppingSince = Date.now();
    const budget = server.shutdownTimeLimitMs;
    log.info(`${source}: draining (requests in progress get up to ${budget / 1000} s, the pools' shutdownTimeLimit; send the signal again to stop at once)`);
    server.stop(budget).then(stopped, stopped);
  };

  /** `signal` true for SIGTERM/SIGINT (repeatable: the second one stops at once). */
  const stop = (source: string, signal: boolean): void => {
    if (stoppingSince !== undefined) {
      if (signal && Date.now() - stoppingSince >= REPEAT_SIGNAL_MS) {
        log.warn(`${source} again: stopping at once`);
        process.exit(1);
      }
      return;
    }
    if (!started) {
      // start-up sees it and stops when it is done
      if (stopRequested !== undefined && signal) {
        log.warn(`${source} again during start-up: stopping at once`);
        process.exit(1);
      }
      stopRequested ??= source;
      return;
    }
    beginDrain(source);
  };

  const reload = (source: string): void => {
    if (!started || stoppingSince !== undefined) return;
    void server.reloadNow().then((outcome) => {
      if (outcome === 'unchanged') log.info(`${source}: ${server.configFile} is unchanged (generation kept)`);
      else if (outcome === 'unreadable') log.warn(`${source}: ${server.configFile} cannot be read right now; still serving the last good configuration`);
      else if (outcome === 'applied') log.info(`${source}: ${server.configFile} re-read and applied`);
    });
  };

  // Wired before start-up, so a signal that arrives early is never fatal by default.
  process.on('SIGTERM', () => stop('SIGTERM', true));
  process.on('SIGINT', () => stop('SIGINT', true));
  // SIGHUP: re-read applicationHost.config now (it is also watched; this is for scripts and file
  // systems without change notification).
  process.on('SIGHUP', () => reload('SIGHUP'));
  server.setShutdownHandler(() => stop('wharf stop', false));

  const launchers = findLaunchers();
  const describe = (l: Launcher): string => `${l.command} (pid ${l.pid})`;

  return {
    started(): void {
      started = true;
      if (launchers.length > 0) {
        log.info(`launched by ${launchers.map(describe).join(' under ')}: stopping or hanging up the launcher stops or reloads Wharf`);
        watchLaunchers(launchers, {
          stopped: (l) => stop(`the launcher ${describe(l)} was stopped`, false),
          hungUp: (l) => reload(`the launcher ${describe(l)} is gone without passing a signal on (npm does not pass SIGHUP on)`),
        });
      }
      if (stopRequested !== undefined) beginDrain(`${stopRequested} during start-up`);
    },
    stopped: done,
  };
}
