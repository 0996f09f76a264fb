/**
 * The web.config files a configuration's sites reach, looked at without a request: each folder
 * holding one is resolved as a request for its URL would resolve it (parent files, <location>s,
 * locks), so what is found is what a request would meet. `wharf check` walks every folder;
 * start-up looks at each virtual directory's own folder only (cheap, and where a site's rules
 * usually are); workers report the rest as they read them.
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigError, SourcePosition } from '../errors.js';
import { ConfigSystem } from './config-system.js';
import { securityModuleWarnings, servingWarnings } from './config-warnings.js';
import type { ConfigWarning } from './config-warnings.js';
import type { AppHostConfig, UnsupportedUse } from './types.js';

export interface ScanOptions {
  readonly systemDrive: string;
  readonly variables?: Readonly<Record<string, string>> | undefined;
  /** false: only each virtual directory's own folder. */
  readonly recursive: boolean;
  /** Folders looked at in all (a huge tree is cut; `truncated` says so). */
  readonly maxFolders?: number;
  /** A web.config (or a merge with it) that would give its URLs a 500.19. */
  readonly onError: (error: ConfigError) => void;
  /** Settings not enforced, and handler mappings that cannot serve, each with its position. */
  readonly onWarning: (warning: ConfigWarning) => void;
  readonly onUnsupported?: (use: UnsupportedUse) => void;
  /** A virtual directory whose physicalPath does not exist. */
  readonly onMissingFolder?: (message: string) => void;
}

export interface ScanResult {
  /** web.config files found. */
  readonly files: number;
  readonly truncated: boolean;
}

const CONFIG_NAMES = ['web.config', 'Web.config'] as const;

interface Folder {
  readonly url: string;
  readonly path: string;
}

function webConfigIn(folder: string): string | undefined {
  for (const name of CONFIG_NAMES) {
    const file = join(folder, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** Folders under a virtual directory with their URLs; symbolic links are not followed (no loops). */
function walk(root: Folder, recursive: boolean, budget: { left: number }, visit: (f: Folder) => void): void {
  const stack: Folder[] = [root];
  while (stack.length > 0 && budget.left > 0) {
    const f = stack.pop()!;
    budget.left--;
    visit(f);
    if (!recursive) continue;
    let names: string[];
    try {
      names = readdirSync(f.path).sort().reverse();
    } catch {
      continue; // unreadable: what a request would meet there was reported by visit
    }
    for (const name of names) {
      const path = join(f.path, name);
      let isDirectory = false;
      try {
        isDirectory = lstatSync(path).isDirectory();
      } catch {
        // vanished meanwhile
      }
      if (isDirectory) stack.push({ url: f.url === '/' ? '/' + name : `${f.url}/${name}`, path });
    }
  }
}

export function scanSiteConfigs(appHost: AppHostConfig, o: ScanOptions): ScanResult {
  const config = new ConfigSystem(appHost, {
    systemDrive: o.systemDrive,
    variables: o.variables,
    onUnsupported: (u) => {
      if (u.position.file !== appHost.file) o.onUnsupported?.(u);
    },
    onWarning: o.onWarning,
  });
  const files = new Set<string>();
  const budget = { left: o.maxFolders ?? 20_000 };
  // A warning without a position stands for the server level, which appHostWarnings covers;
  // the same entry seen from many folders is reported each time (callers report it once).
  const serverLevel: SourcePosition = { file: appHost.file, line: 0, column: 0 };
  for (const site of appHost.sites) {
    for (const app of site.applications) {
      for (const vdir of app.virtualDirectories) {
        const url = app.path === '/' ? vdir.path : vdir.path === '/' ? app.path : app.path + vdir.path;
        if (!existsSync(vdir.physicalPath)) {
          o.onMissingFolder?.(`site "${site.name}": ${url} maps to ${vdir.physicalPath}, which does not exist`);
          continue;
        }
        walk({ url, path: vdir.physicalPath }, o.recursive, budget, (folder) => {
          const file = webConfigIn(folder.path);
          if (file === undefined && folder.path !== vdir.physicalPath) return;
          if (file !== undefined) files.add(file);
          const r = config.resolve(site.id, folder.url);
          if (!r.ok) {
            o.onError(r.error);
            return;
          }
          // A folder hidden behind another virtual directory or application is not reached by its URL.
          if (r.config.physicalPath !== folder.path) return;
          const modules = r.config.section('system.webServer/modules');
          for (const w of servingWarnings(r.config.section('system.webServer/handlers'), modules, serverLevel)) {
            if (w.position.line > 0) o.onWarning(w);
          }
          for (const w of securityModuleWarnings((path) => r.config.section(path), modules)) o.onWarning(w);
        });
      }
    }
  }
  return { files: files.size, truncated: budget.left <= 0 };
}
