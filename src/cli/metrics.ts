/**
 * `wharf metrics [--config F] [--port N]`: the running server's metrics, exactly what its
 * `/metrics` endpoint answers (Prometheus's text format), read over the admin socket, so an
 * administrator on the machine needs no open port. Exit 0 with the text on stdout; 1 when the
 * server refuses (metrics off) or is not running; 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import { formatError } from '../admin/appcmd.js';
import { adminCall } from '../admin/client.js';
import { AdminError } from '../errors.js';
import { adminTarget } from './admin-target.js';

const USAGE = `Usage: wharf metrics [--config <applicationHost.config>] [--port <n>]

Prints the running server's metrics in Prometheus's text format, as its /metrics endpoint
serves them (the server must have been started with --metrics-address). --config names the
server (the file it was started with); --port, the embedded default's port. docs/cli.md.
`;

export async function runMetricsCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: { config: { type: 'string', short: 'c' }, port: { type: 'string', short: 'p' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    process.stderr.write(`wharf metrics: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      process.stderr.write(`wharf metrics: --port must be a number from 1 to 65535, not "${values.port}"\n`);
      return 2;
    }
    if (values.config !== undefined) {
      process.stderr.write('wharf metrics: --port applies to the embedded default only; with --config the configuration file names the server\n');
      return 2;
    }
  }
  const { socketPath, label } = adminTarget(values.config, port);
  let response;
  try {
    response = await adminCall(socketPath, { op: 'metrics' }, 10000, label);
  } catch (err) {
    process.stderr.write(formatError(err instanceof AdminError ? err.message : String(err)) + '\n');
    return 1;
  }
  if (!response.ok) {
    process.stderr.write(formatError(response.error) + '\n');
    return 1;
  }
  if (typeof response.metrics !== 'string') {
    process.stderr.write(formatError('The server did not answer with metrics (is it an older Wharf?).') + '\n');
    return 1;
  }
  process.stdout.write(response.metrics);
  return 0;
}
