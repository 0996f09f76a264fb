/**
 * Windows paths in IIS configuration, mapped to Linux. This is the ONE rule (docs/configuration.md
 * states it in the same words):
 *
 *   1. `%VAR%` is expanded only in attributes whose schema says expanded="true" (physicalPath,
 *      logFile/traceFailedRequestsLogging directory, httpErrors path and prefixLanguageFilePath,
 *      handlers scriptProcessor, fastCgi fullPath/arguments, httpCompression directory, …), as IIS
 *      expands them when read. `%SystemDrive%` (any case) is `C:`. Other names are looked up,
 *      case-insensitively, in the configured variables, then in the process environment. An
 *      unknown variable stays as written (`%NOPE%`), as on Windows.
 *   2. A path that starts with a drive letter (`X:\` or `X:/`) maps to `<systemDrive>/<rest>`
 *      when X is C, else to `<systemDrive>/drives/<x in lower case>/<rest>`. `..` cannot climb
 *      above the drive root, as on Windows.
 *   3. Backslashes become slashes.
 *   4. An absolute Linux path is kept; a relative path resolves against the folder of the
 *      configuration file that contains it.
 *   5. UNC paths (`\\server\share\…`) are not supported on Linux and are reported as
 *      CFG_INVALID_VALUE.
 *
 * Example (systemDrive /srv/wharf): `%SystemDrive%\inetpub\wwwroot` → `/srv/wharf/inetpub/wwwroot`,
 * `D:\sites\shop` → `/srv/wharf/drives/d/sites/shop`, `wwwroot` in /etc/wharf/applicationHost.config
 * → `/etc/wharf/wwwroot`.
 */
import { posix } from 'node:path';
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import type { PathMapOptions } from './types.js';

export interface VariableOptions {
  readonly variables?: Readonly<Record<string, string>> | undefined;
}

const VARIABLE = /%([^%\r\n]+)%/g;
const DRIVE = /^([A-Za-z]):(?:[\\/]|$)/;

// Lower-cased copies of the configured variable tables, built once per table object.
const loweredTables = new WeakMap<object, Map<string, string>>();

function lowered(table: Readonly<Record<string, string>>): Map<string, string> {
  let map = loweredTables.get(table);
  if (!map) {
    map = new Map();
    for (const [k, v] of Object.entries(table)) if (!map.has(k.toLowerCase())) map.set(k.toLowerCase(), v);
    loweredTables.set(table, map);
  }
  return map;
}

// Windows environment names are case-insensitive; Linux ones are not, so try the name as written,
// then scan. Expansion runs when a file is parsed, never per request.
function fromEnvironment(name: string, key: string): string | undefined {
  const direct = process.env[name];
  if (direct !== undefined) return direct;
  for (const k of Object.keys(process.env)) if (k.toLowerCase() === key) return process.env[k];
  return undefined;
}

/** Expands `%VAR%` references (rule 1). */
export function expandVariables(value: string, opts: VariableOptions = {}): string {
  if (value.indexOf('%') === -1) return value;
  return value.replace(VARIABLE, (whole: string, name: string) => {
    const key = name.toLowerCase();
    if (key === 'systemdrive') return 'C:';
    const fromOptions = opts.variables ? lowered(opts.variables).get(key) : undefined;
    if (fromOptions !== undefined) return fromOptions;
    return fromEnvironment(name, key) ?? whole;
  });
}

/** Rules 2–5 on a value whose variables are already expanded. */
export function mapExpandedPath(value: string, opts: PathMapOptions, position?: SourcePosition): string {
  if (value.startsWith('\\\\') || value.startsWith('//')) {
    throw new ConfigError(
      'CFG_INVALID_VALUE',
      `The UNC path '${value}' is not supported on Linux: mount the share and use its local path`,
      position,
      HRESULT.invalidData,
    );
  }
  const drive = DRIVE.exec(value);
  if (drive) {
    // Normalising under a leading '/' keeps '..' from leaving the drive, as Windows does.
    const rest = posix.normalize('/' + value.slice(2).replace(/\\/g, '/'));
    const letter = drive[1]!.toLowerCase();
    const root = letter === 'c' ? opts.systemDrive : posix.join(opts.systemDrive, 'drives', letter);
    return trimSlash(posix.join(root, rest));
  }
  const slashed = value.replace(/\\/g, '/');
  if (slashed.startsWith('/')) return trimSlash(posix.normalize(slashed));
  return trimSlash(posix.resolve(opts.baseDir, slashed));
}

/** The whole rule: expands `%VAR%`, then maps the Windows path to a Linux one. */
export function mapWindowsPath(value: string, opts: PathMapOptions, position?: SourcePosition): string {
  return mapExpandedPath(expandVariables(value, opts), opts, position);
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
