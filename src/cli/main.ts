/**
 * `wharf` — start the server in the foreground, or talk to a running one with appcmd's verbs
 * (list, start, stop, recycle) over its admin socket (docs/cli.md).
 */
import { parseArgs } from 'node:util';
import { isAdminInvocation, parseAdminArgs, runAdminCommand } from '../admin/appcmd.js';
import { adminCall } from '../admin/client.js';
import { adminTarget } from './admin-target.js';
import { check } from './check.js';
import { ConfigError, WharfError } from '../errors.js';
import { WharfServer, consoleLogger, defaultSystemDrive } from '../server.js';
import { runInForeground } from './foreground.js';
import { isLifecycleInvocation, runLifecycleCommand } from './lifecycle.js';
import { runMetricsCommand } from './metrics.js';
import { CERTIFICATE_HELP, CERTIFICATE_VERBS, runCertificateCommand } from './certificates.js';
import { USER_HELP, runUserCommand } from './users.js';
import { parseMetricsAddress, type MetricsAddress } from '../metrics/index.js';
import { closeInheritedDescriptors } from '../ipc/inherited-descriptors.js';

const HELP = `Wharf — IIS's architecture for Linux and Node.js

Usage:
  wharf start [--config <applicationHost.config>] [options]
  wharf stop | status [--config <file>]
  wharf list <object> [identifier] [/property:value ...] [/text:* | /text:<property>] [--config <file>]
  wharf start|stop site <name> [--config <file>]
  wharf start|stop|recycle apppool <name> [--config <file>]
  wharf logs apppool <name> [/lines:N] [--config <file>]
  wharf metrics [--config <file>]
  wharf check [--config <applicationHost.config>] [--system-drive <dir>]
${CERTIFICATE_HELP}${USER_HELP}  wharf --help | --version

Commands:
  start            Run the server in the foreground. Stops cleanly on SIGTERM or SIGINT
                   (drains: outstanding requests finish, then workers exit).
                   Started by npm start or npx, signalling npm works too (docs/cli.md).
  stop             (no object) Drain and stop the running server, like SIGTERM; returns once it
                   has exited. Exit 0, or 3 when it was not running.
  status           Show whether it runs (Status for Wharf ( W3SVC ) : Running), its pid, uptime,
                   configuration generation, sites and pools. Exit 0 running, 3 not running.
  list             Show the running server's objects, one line each as appcmd prints them.
                   Objects: site, app, vdir, apppool, wp (worker processes), request
                   (requests in flight), trace (failed-request trace files); plural forms work too. Filters such as /state:Stopped,
                   /apppool.name:DefaultAppPool, /elapsed:5000 (requests running 5 s or more).
                   /text:* shows every property, /text:<property> just that value.
  start, stop      Start or stop a site or an application pool of the running server
                   (also /site.name:<name>, /apppool.name:<name>).
  recycle          Recycle an application pool: new worker processes take over, the old ones
                   finish their requests.
  metrics          Print the running server's metrics (Prometheus text format), as its
                   /metrics endpoint serves them; it must run with --metrics-address.
  check            Validate applicationHost.config and every web.config its sites reach
                   without serving; print file:line:column: error|warning|note: message;
                   exit 0 when there is no error, else 1 (as nginx -t does).
  cert             The certificate store (Windows' Cert:\\LocalMachine\\My …): import a PFX or PEM
                   (prints its SHA-1 thumbprint), list, delete.
  sslcert          HTTP.sys's SSL bindings table, with netsh http's parameters and output:
                   which certificate an https ipport or hostnameport (SNI) entry serves.
  centralcert      IIS's Central Certificate Store: a folder of <host>.pfx files for bindings
                   with sslFlags 2.
                   These three work on files under --system-drive (no running server needed);
                   a running server applies the change within seconds.
  user             Wharf's own users (IIS Manager users): for basicAuthentication against
                   Wharf's users and for digestAuthentication. Stored under --system-drive,
                   readable by root only; a running server picks changes up within seconds.
  logs             Print the last lines (default 100) an application pool's workers wrote to
                   stdout and stderr (a hosted Node.js app's console output). The files are in
                   <system drive>/inetpub/logs/AppPools/<pool>/.

  The admin commands find the server by the --config it was started with (none: the embedded
  default; add --port if it was started with one). They print "ERROR ( message:... )" and exit 1
  when the server refuses or is not running, and exit 2 on a usage error. See docs/cli.md.

Options for start:
  -c, --config <file>      applicationHost.config to serve. Without it Wharf serves its
                           embedded default: a welcome site on port 8080.
      --system-drive <dir> Where %SystemDrive% and C:\\ map to (default: $WHARF_SYSTEM_DRIVE,
                           else /var/lib/wharf as root, else ~/.local/state/wharf).
      --root <dir>         Embedded default only: serve this folder instead of the welcome site.
  -p, --port <n>           Embedded default only: listen on this port instead of 8080.
      --https-port <n>     Embedded default only: serve https (with the self-signed "Wharf
                           Development Certificate", made once and kept) on this port instead
                           of 8443; 0 turns it off. With --port alone there is no https.
      --log-owner <user>[:<group>]
                           Owner of the log files (mode 0640, folders 0750). Default:
                           $WHARF_LOG_OWNER, else root:wharf-logs as root (the group is
                           created when missing), else Wharf's user.
      --metrics-address <host>:<port>
                           Serve Prometheus/OpenMetrics metrics at http://<host>:<port>/metrics
                           (e.g. 127.0.0.1:9464; [::1]:9464; :9464 for every address). Off by
                           default. The metrics are listed in docs/configuration.md, "Metrics".
  -h, --help               Show this help.
  -v, --version            Print the version.

Configuration changes (applicationHost.config and every web.config) apply live; an invalid
edit is rejected with file:line:column and the last good configuration keeps serving.
Docs: docs/configuration.md, docs/architecture.md, docs/cli.md, docs/errors.md.
`;

/** `wharf list|start|stop|recycle <object> …`: one request to the running server's admin socket. */
async function admin(argv: string[]): Promise<number> {
  const parsed = parseAdminArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`wharf: ${parsed.error}\n(wharf --help lists the commands)\n`);
    return 2;
  }
  if (parsed.help || parsed.command === undefined) {
    process.stdout.write(HELP);
    return 0;
  }
  const { socketPath, label } = adminTarget(parsed.configFile, parsed.port);
  const out = await runAdminCommand(parsed.command, (request) => adminCall(socketPath, request, 10000, label));
  process.stdout.write(out.stdout);
  process.stderr.write(out.stderr);
  return out.code;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'check') return check(argv.slice(1));
  if (argv[0] === 'metrics') return runMetricsCommand(argv.slice(1));
  if ((CERTIFICATE_VERBS as readonly string[]).includes(argv[0] ?? '')) return runCertificateCommand(argv);
  if (argv[0] === 'user') return runUserCommand(argv);
  if (isLifecycleInvocation(argv)) return runLifecycleCommand(argv);
  if (isAdminInvocation(argv)) return admin(argv);
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
        'https-port': { type: 'string' },
        'log-owner': { type: 'string' },
        'metrics-address': { type: 'string' },
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
  let httpsPort: number | undefined;
  if (values['https-port'] !== undefined) {
    httpsPort = Number(values['https-port']);
    if (!Number.isInteger(httpsPort) || httpsPort < 0 || httpsPort > 65535 || httpsPort === port) {
      process.stderr.write(`wharf: --https-port must be a number from 1 to 65535 other than --port's (0: no https), not "${values['https-port']}"\n`);
      return 2;
    }
  }
  if (values.config !== undefined && (values.root !== undefined || port !== undefined || httpsPort !== undefined)) {
    process.stderr.write('wharf: --root, --port and --https-port apply to the embedded default only; set them in your applicationHost.config\n');
    return 2;
  }
  let metricsAddress: MetricsAddress | undefined;
  if (values['metrics-address'] !== undefined) {
    try {
      metricsAddress = parseMetricsAddress(values['metrics-address']);
    } catch (err) {
      process.stderr.write(`wharf: ${(err as Error).message}\n`);
      return 2;
    }
  }
  // Descriptors the launcher left open must not reach workers and their children (see
  // inherited-descriptors.ts); closed before any worker is spawned.
  const inherited = closeInheritedDescriptors();
  if (inherited.length !== 0) {
    consoleLogger.info(`closed ${inherited.length} descriptor(s) inherited without close-on-exec: ${inherited.map((d) => `fd ${d.fd} (${d.target})`).join(', ')}`);
  }
  const server = new WharfServer({
    configFile: values.config,
    systemDrive: values['system-drive'] ?? defaultSystemDrive(),
    root: values.root,
    port,
    httpsPort,
    logOwner: values['log-owner'],
    metricsAddress,
  });
  // Signals (and `wharf stop`, and the npm/npx launcher) are wired before start-up.
  const foreground = runInForeground(server, consoleLogger);
  try {
    await server.start();
  } catch (err) {
    if (err instanceof ConfigError && err.code === 'CFG_READ') {
      // Not an invalid file but no file: `file: message`, never a meaningless file:0:0.
      process.stderr.write(`wharf: ${err.describe()}\n`);
    } else if (err instanceof ConfigError) {
      process.stderr.write(`wharf: invalid configuration: ${err.describe()}\n`);
    } else if (err instanceof WharfError) {
      process.stderr.write(`wharf: ${err.message}\n`);
    } else {
      process.stderr.write(`wharf: ${(err as Error).stack ?? String(err)}\n`);
    }
    await server.stop(1000).catch(() => undefined);
    return 1;
  }
  // The main process holds every client connection: an unexpected exception is logged, not
  // allowed to drop them all. (Application code never runs here; workers crash on their own.)
  process.on('uncaughtException', (err) => consoleLogger.error(`uncaught exception in the main process: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (err) => consoleLogger.error(`unhandled rejection in the main process: ${(err as Error)?.stack ?? String(err)}`));
  consoleLogger.info(`Wharf is serving ${server.configFile} (system drive ${server.systemDrive}); pid ${process.pid}`);
  foreground.started();
  await foreground.stopped;
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
