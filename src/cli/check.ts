/**
 * `wharf check [--config F]`: validate applicationHost.config and every web.config its sites
 * reach, without serving (as `nginx -t` does). Each problem is one line,
 * `file:line:column: error|warning|note: message` (`file: …` when it is about the file as a whole);
 * the exit code is 1 when there is an error, else 0. Warnings are what start-up and workers print
 * (config-warnings.ts): settings Wharf reads but does not enforce, security ones first, and a
 * configuration that cannot serve (404.4, 500.21).
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { appHostWarnings, ConfigSystem, loadAppHost, readConfigText, servingWarnings, warningKey } from '../config/index.js';
import type { AppHostConfig, ConfigWarning } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import { configVariables, DEFAULT_CONFIG, defaultSystemDrive } from '../server.js';

const USAGE = `Usage: wharf check [--config <applicationHost.config>] [--system-drive <dir>]

Validates applicationHost.config and every web.config under its sites' folders without serving,
prints each problem as file:line:column: error|warning|note: message, and exits 1 when there is an
error, else 0. Without --config it checks the embedded default. See docs/cli.md.
`;

/** Folders looked at under all the sites' virtual directories (a huge tree is cut, and says so). */
const MAX_FOLDERS = 20_000;
const CONFIG_NAMES = ['web.config', 'Web.config'] as const;

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

  warning(w: ConfigWarning): void {
    if (!this.#seen.has(warningKey(w))) {
      this.#seen.add(warningKey(w));
      this.problems.push({ severity: w.kind === 'feature' ? 'note' : 'warning', position: w.position, message: w.message, rank: w.kind === 'security' ? 1 : w.kind === 'serving' ? 2 : 3 });
    }
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

interface Folder {
  readonly url: string;
  readonly path: string;
}

/** Folders under a virtual directory, with their URLs; symbolic links are not followed (no loops). */
function walk(root: Folder, budget: { left: number }, visit: (f: Folder) => void): void {
  const stack: Folder[] = [root];
  while (stack.length > 0 && budget.left > 0) {
    const f = stack.pop()!;
    budget.left--;
    visit(f);
    let names: string[];
    try {
      names = readdirSync(f.path).sort().reverse();
    } catch {
      continue; // unreadable folder: its web.config (if any) was reported by visit
    }
    for (const name of names) {
      const path = join(f.path, name);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) stack.push({ url: f.url === '/' ? '/' + name : `${f.url}/${name}`, path });
    }
  }
}

function webConfigIn(folder: string): string | undefined {
  for (const name of CONFIG_NAMES) {
    const file = join(folder, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Every web.config the sites reach: parse and merge errors, unenforced settings, serving problems. */
function checkSites(appHost: AppHostConfig, systemDrive: string, variables: Record<string, string>, report: Report): { files: number; truncated: boolean } {
  const config = new ConfigSystem(appHost, {
    systemDrive,
    variables,
    onUnsupported: (u) => report.add('note', u.position, `section ${u.section} is not supported by Wharf yet; kept and ignored`, 3),
    onWarning: (w) => report.warning(w),
  });
  const files = new Set<string>();
  const budget = { left: MAX_FOLDERS };
  for (const site of appHost.sites) {
    for (const app of site.applications) {
      for (const vdir of app.virtualDirectories) {
        const url = app.path === '/' ? vdir.path : vdir.path === '/' ? app.path : app.path + vdir.path;
        if (!existsSync(vdir.physicalPath)) {
          report.add('warning', { file: appHost.file, line: 0, column: 0 }, `site "${site.name}": ${url} maps to ${vdir.physicalPath}, which does not exist`, 2);
          continue;
        }
        walk({ url, path: vdir.physicalPath }, budget, (folder) => {
          const file = webConfigIn(folder.path);
          // Each folder with a web.config, and each virtual directory's own folder, is resolved as
          // a request for its URL would resolve it: ancestors, <location>s and locks included.
          if (file === undefined && folder.path !== vdir.physicalPath) return;
          if (file !== undefined) files.add(file);
          const r = config.resolve(site.id, folder.url);
          if (!r.ok) {
            report.error(r.error);
            return;
          }
          // A folder hidden behind another virtual directory or application is not reached here.
          if (r.config.physicalPath !== folder.path) return;
          // Only what a file wrote has a position; the server level was checked with applicationHost.config.
          const none = { file: appHost.file, line: 0, column: 0 };
          for (const w of servingWarnings(r.config.section('system.webServer/handlers'), r.config.section('system.webServer/modules'), none)) {
            if (w.position.line > 0) report.warning(w);
          }
        });
      }
    }
  }
  return { files: files.size, truncated: budget.left <= 0 };
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
    for (const u of appHost.unsupported) report.add('note', u.position, `section ${u.section} is not supported by Wharf yet; kept and ignored`, 3);
    ({ files, truncated } = checkSites(appHost, systemDrive, variables, report));
  }
  report.print(out);
  if (truncated) out(`wharf: note: stopped after ${MAX_FOLDERS} folders; web.config files deeper in the sites were not checked`);
  const errors = report.count('error');
  const counts = `${errors} error${errors === 1 ? '' : 's'}, ${report.count('warning')} warning(s), ${report.count('note')} note(s); ${files} web.config file${files === 1 ? '' : 's'} checked`;
  out(`wharf: configuration ${configFile} ${errors === 0 ? 'test is successful' : 'test failed'} (${counts})`);
  return errors === 0 ? 0 : 1;
}
