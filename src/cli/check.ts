/**
 * `wharf check [--config F]`: validate applicationHost.config and every web.config its sites
 * reach, without serving (as `nginx -t` does). Each problem is one line,
 * `file:line:column: error|warning|note: message` (`file: …` when it is about the file as a whole);
 * the exit code is 1 when there is an error, else 0. Warnings are what start-up and workers print
 * (config-warnings.ts): settings Wharf reads but does not enforce, security ones first, and a
 * configuration that cannot serve (404.4, 500.21).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { appHostWarnings, loadAppHost, readConfigText, scanSiteConfigs } from '../config/index.js';
import { fastCgiWarnings } from '../modules/fastcgi/check.js';
import type { AppHostConfig, ConfigWarning } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import { configVariables, DEFAULT_CONFIG, defaultSystemDrive } from '../server.js';
import { TimerWheel } from '../listener/timer-wheel.js';
import { TlsTermination } from '../listener/tls-termination.js';
import { CertificateSource } from '../tls/index.js';

const USAGE = `Usage: wharf check [--config <applicationHost.config>] [--system-drive <dir>]

Validates applicationHost.config and every web.config under its sites' folders without serving,
prints each problem as file:line:column: error|warning|note: message, and exits 1 when there is an
error, else 0. Without --config it checks the embedded default. See docs/cli.md.
`;

/** Folders looked at under all the sites' virtual directories (a huge tree is cut, and says so). */
const MAX_FOLDERS = 20_000;

type Severity = 'error' | 'warning' | 'note';

interface Problem {
  readonly severity: Severity;
  readonly position: SourcePosition;
  readonly message: string;
  /** Order of printing: errors, security warnings, serving warnings, notes. */
  readonly rank: number;
}

function where(p: SourcePosition): string {
  return p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
}

class Report {
  readonly problems: Problem[] = [];
  readonly #seen = new Set<string>();

  add(severity: Severity, position: SourcePosition, message: string, rank: number): void {
    const key = `${severity}\0${where(position)}\0${message}`;
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.problems.push({ severity, position, message, rank });
  }

  error(err: ConfigError): void {
    this.add('error', err.position ?? { file: '(configuration)', line: 0, column: 0 }, err.message, 0);
  }

  /** Security warnings first, then serving problems; settings without effect are notes. */
  warning(w: ConfigWarning): void {
    this.add(w.kind === 'feature' ? 'note' : 'warning', w.position, w.message, w.kind === 'security' ? 1 : w.kind === 'serving' ? 2 : 3);
  }

  count(severity: Severity): number {
    return this.problems.filter((p) => p.severity === severity).length;
  }

  print(out: (line: string) => void): void {
    // Stable: within a rank, the order problems were found in (file order, folder by folder).
    const sorted = this.problems.map((p, i) => ({ p, i })).sort((a, b) => a.p.rank - b.p.rank || a.i - b.i);
    for (const { p } of sorted) out(`${where(p.position)}: ${p.severity}: ${p.message}`);
  }
}

/**
 * https bindings whose certificate cannot be found or used (no SSL table entry, no Central
 * Certificate Store file, a file that does not open): the listener's own words (the line it logs at
 * start), at the binding's file and line. Certificates live under the system drive.
 */
async function checkCertificates(appHost: AppHostConfig, systemDrive: string, report: Report): Promise<void> {
  const bindings = appHost.sites.flatMap((site) => site.bindings.filter((b) => b.protocol.toLowerCase() === 'https').map((binding) => ({ site: site.name, binding })));
  if (bindings.length === 0) return;
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const source = await CertificateSource.open({ systemDrive, logger: quiet });
  try {
    const tls = new TlsTermination({ provider: source, timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
    for (const p of tls.bindingProblems(bindings)) report.add('warning', p.binding.source ?? { file: appHost.file, line: 0, column: 0 }, p.message, 2);
  } finally {
    source.close();
  }
}

export async function check(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        'system-drive': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`wharf check: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const configFile = resolve(values.config ?? DEFAULT_CONFIG);
  const systemDrive = resolve(values['system-drive'] ?? defaultSystemDrive());
  const variables = configVariables(systemDrive);
  const report = new Report();
  const out = (line: string): void => void process.stdout.write(line + '\n');

  let appHost: AppHostConfig | undefined;
  try {
    appHost = loadAppHost(configFile, readConfigText(configFile), { systemDrive, variables });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    report.error(err);
  }
  let files = 0;
  let truncated = false;
  if (appHost !== undefined) {
    for (const w of appHostWarnings(appHost)) report.warning(w);
    for (const w of fastCgiWarnings(appHost, systemDrive)) report.warning(w);
    for (const u of appHost.unsupported) report.add('note', u.position, `section ${u.section} is not supported by Wharf yet; kept and ignored`, 3);
    // The embedded default's https binding is served with the development certificate.
    if (values.config !== undefined) await checkCertificates(appHost, systemDrive, report);
    ({ files, truncated } = scanSiteConfigs(appHost, {
      systemDrive,
      variables,
      recursive: true,
      maxFolders: MAX_FOLDERS,
      onError: (e) => report.error(e),
      onWarning: (w) => report.warning(w),
      onUnsupported: (u) => report.add('note', u.position, `section ${u.section} is not supported by Wharf yet; kept and ignored`, 3),
      onMissingFolder: (m) => report.add('warning', { file: appHost!.file, line: 0, column: 0 }, m, 2),
    }));
  }
  report.print(out);
  if (truncated) out(`wharf: note: stopped after ${MAX_FOLDERS} folders; web.config files deeper in the sites were not checked`);
  const errors = report.count('error');
  const counts = `${errors} error${errors === 1 ? '' : 's'}, ${report.count('warning')} warning(s), ${report.count('note')} note(s); ${files} web.config file${files === 1 ? '' : 's'} checked`;
  out(`wharf: configuration ${configFile} ${errors === 0 ? 'test is successful' : 'test failed'} (${counts})`);
  return errors === 0 ? 0 : 1;
}
