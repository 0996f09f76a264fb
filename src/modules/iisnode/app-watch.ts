/**
 * What recycles a hosted application: iisnode's watchedFiles (a semicolon-separated list of
 * files relative to the entry's folder, wildcards in the file name only: `*.js;iisnode.yml;
 * lib\options.json`) and app_offline.htm appearing in the application's root. Node cannot unload
 * an application, so a change asks WAS for an overlapped recycle of the whole worker: the new
 * worker loads the new code while this one finishes its requests (iisnode's gracefulShutdown).
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, WorkerServices } from '../../worker/module-api.js';

let services: WorkerServices | undefined;
const watchers: FSWatcher[] = [];
let pendingRecycle: NodeJS.Timeout | undefined;

export function attachWorker(worker: WorkerServices): void {
  services = worker;
}

/** Changes are gathered for this long: an editor's save or a deploy touches several files. */
const SETTLE_MS = 300;

function recycleSoon(reason: string): void {
  if (pendingRecycle !== undefined) return;
  pendingRecycle = setTimeout(() => services?.requestRecycle(reason), SETTLE_MS);
  pendingRecycle.unref();
}

/**
 * Tell WAS what the app's `<iisnode>` asks of the pool, once the app is loaded: iisnode's
 * nodeProcessCountPerApplication (0 = one per CPU) becomes the pool's worker count, as a web
 * garden of at least maxProcesses; gracefulShutdownTimeout bounds how long a draining worker
 * may finish its requests (at most the pool's shutdownTimeLimit). Unset attributes ask nothing.
 */
export function sendAppHints(settings: ConfigElement): void {
  let processes = 0;
  if (settings.isSet('nodeProcessCountPerApplication')) {
    const n = settings.num('nodeProcessCountPerApplication');
    processes = n === 0 ? availableParallelism() : n;
  }
  const shutdown = settings.isSet('gracefulShutdownTimeout') ? Math.max(1, settings.num('gracefulShutdownTimeout')) : 0;
  // Sent even when unset: a web.config that drops the attributes takes back the last wish.
  services?.appHints(processes, shutdown);
}

/** app_offline.htm was seen by a request while an app is loaded: it must stop. */
export function appOfflineChanged(present: boolean): void {
  if (present && watchers.length !== 0) recycleSoon('app_offline.htm appeared');
}

/** A wildcard file-name pattern (`*`, `?`) as a test, case-sensitive as Linux file names are. */
function nameTest(pattern: string): (name: string) => boolean {
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
  return (name) => re.test(name);
}

/** Start watching once, when the application is loaded. */
export function watchApplication(ctx: HttpContext, entry: string, settings: ConfigElement): void {
  if (watchers.length !== 0) return;
  const base = dirname(entry);
  const byDir = new Map<string, Array<(name: string) => boolean>>();
  const add = (dir: string, test: (name: string) => boolean): void => {
    const list = byDir.get(dir);
    if (list === undefined) byDir.set(dir, [test]);
    else list.push(test);
  };
  for (const raw of settings.str('watchedFiles').split(';')) {
    const item = raw.trim().replace(/\\/g, '/');
    if (item === '') continue;
    const slash = item.lastIndexOf('/');
    const dir = slash === -1 ? base : resolve(base, item.slice(0, slash));
    add(dir, nameTest(item.slice(slash + 1)));
  }
  const root = ctx.config.application.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? base;
  const offlineTest = (name: string): boolean => name === 'app_offline.htm';
  add(root, offlineTest);
  for (const [dir, tests] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        if (filename === null) return;
        const name = filename.toString();
        if (!tests.some((t) => t(name))) return;
        recycleSoon(name === 'app_offline.htm' && dir === root ? 'app_offline.htm appeared' : `watchedFiles: ${join(dir, name)} changed`);
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch (err) {
      ctx.log('warn', `iisnode watchedFiles: cannot watch ${dir}: ${(err as Error).message}`);
    }
  }
}
