/**
 * `wharf` — start the server in the foreground. (The appcmd-style verbs — list, start, stop,
 * recycle — arrive with the admin socket.)
 */
import { parseArgs } from 'node:util';
import { ConfigError, WharfError } from '../errors.js';
import { WharfServer, consoleLogger, defaultSystemDrive } from '../server.js';

const HELP = `Wharf — IIS's architecture for Linux and Node.js

Usage:
  wharf start [--config <applicationHost.config>] [options]
  wharf --help | --version

Commands:
  start            Run the server in the foreground. Stops cleanly on SIGTERM or SIGINT
                   (drains: outstanding requests finish, then workers exit).

Options for start:
  -c, --config <file>      applicationHost.config to serve. Without it Wharf serves its
                           embedded default: a welcome site on port 8080.
      --system-drive <dir> Where %SystemDrive% and C:\\ map to (default: $WHARF_SYSTEM_DRIVE,
                           else /var/lib/wharf as root, else ~/.local/state/wharf).
      --root <dir>         Embedded default only: serve this folder instead of the welcome site.
  -p, --port <n>           Embedded default only: listen on this port instead of 8080.
  -h, --help               Show this help.
  -v, --version            Print the version.

Configuration changes (applicationHost.config and every web.config) apply live; an invalid
edit is rejected with file:line:column and the last good configuration keeps serving.
Docs: docs/configuration.md, docs/architecture.md, docs/errors.md.
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'system-drive': { type: 'string' },
        root: { type: 'string' },
        port: { type: 'string', short: 'p' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`wharf: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write('wharf 0.1.0\n');
    return 0;
  }
  const command = positionals[0] ?? 'start';
  if (command !== 'start') {
    process.stderr.write(`wharf: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      process.stderr.write(`wharf: --port must be a number from 1 to 65535, not "${values.port}"\n`);
      return 2;
    }
  }
  if (values.config !== undefined && (values.root !== undefined || port !== undefined)) {
    process.stderr.write('wharf: --root and --port apply to the embedded default only; set them in your applicationHost.config\n');
    return 2;
  }
  const server = new WharfServer({
    configFile: values.config,
    systemDrive: values['system-drive'] ?? defaultSystemDrive(),
    root: values.root,
    port,
  });
  try {
    await server.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`wharf: invalid configuration: ${err.describe()}\n`);
    } else if (err instanceof WharfError) {
      process.stderr.write(`wharf: ${err.message}\n`);
    } else {
      process.stderr.write(`wharf: ${(err as Error).stack ?? String(err)}\n`);
    }
    await server.stop(1000).catch(() => undefined);
    return 1;
  }
  consoleLogger.info(`Wharf is serving ${server.configFile} (system drive ${server.systemDrive}); pid ${process.pid}`);
  // The main process holds every client connection: an unexpected exception is logged, not
  // allowed to drop them all. (Application code never runs here; workers crash on their own.)
  process.on('uncaughtException', (err) => consoleLogger.error(`uncaught exception in the main process: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (err) => consoleLogger.error(`unhandled rejection in the main process: ${(err as Error)?.stack ?? String(err)}`));
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        consoleLogger.warn(`${signal} again: stopping at once`);
        process.exit(1);
      }
      stopping = true;
      consoleLogger.info(`${signal}: draining (open connections get up to 10 s; send the signal again to stop at once)`);
      server.stop(10000).then(resolve, resolve);
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  consoleLogger.info('stopped');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`wharf: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
