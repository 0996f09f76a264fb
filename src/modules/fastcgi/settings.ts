/**
 * A `system.webServer/fastCgi` `<application>` as the FastCGI module uses it, and how a handler's
 * `scriptProcessor` names one: `fullPath|arguments` as IIS (the two halves must equal an
 * application's fullPath and arguments), or — beyond IIS — the address of a FastCGI server that
 * runs on its own (`tcp:127.0.0.1:9000`, `unix:/run/php/php8.2-fpm.sock`), so php-fpm users keep
 * their pools. An address may also have an `<application fullPath="tcp:…">` entry for its limits.
 */
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import { mapExpandedPath } from '../../config/index.js';
import { splitWords } from '../cgi/command-line.js';

export type StderrMode = 'ReturnStdErrIn500' | 'ReturnGeneric500' | 'IgnoreAndReturn200' | 'TerminateProcess';

export type FastCgiAddress = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export interface FastCgiSettings {
  /** `fullPath|arguments` as written: the application's identity within the pool. */
  readonly key: string;
  /** The program's Linux path (after the path rule), or the address as written. */
  readonly fullPath: string;
  readonly arguments: readonly string[];
  /** Set when the application is a FastCGI server Wharf connects to instead of starting. */
  readonly address: FastCgiAddress | undefined;
  /** The most processes (or, for an address, connections) at once. */
  readonly maxInstances: number;
  readonly instanceMaxRequests: number;
  readonly idleTimeoutMs: number;
  readonly activityTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly queueLength: number;
  readonly rapidFailsPerMinute: number;
  readonly signalBeforeTerminateMs: number;
  /** 'unix' for NamedPipe, 'tcp' for Tcp: how a started process listens. */
  readonly transport: 'unix' | 'tcp';
  readonly stderrMode: StderrMode;
  /** A file whose change restarts every process ('' = none). */
  readonly monitorChangesTo: string;
  readonly environment: Readonly<Record<string, string>>;
  /** Everything above, to tell a changed application from the same one. */
  readonly signature: string;
}

/** maxInstances="0": IIS picks a count by CPU; Wharf starts up to 4 processes per core, at least 4. */
export function automaticInstances(): number {
  return Math.max(4, availableParallelism() * 4);
}

/** `tcp:host:port` / `unix:/path` → an address; anything else → undefined (a program path). */
export function parseAddress(text: string): FastCgiAddress | undefined {
  const t = text.trim();
  if (/^unix:/i.test(t)) {
    const path = t.slice(5);
    return path.startsWith('/') ? { kind: 'unix', path } : undefined;
  }
  const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/i.exec(t);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { kind: 'tcp', host: m[1] ?? m[2]!, port };
}

/** The `fullPath` and `arguments` halves of a handler's scriptProcessor. */
export function splitScriptProcessor(scriptProcessor: string): { fullPath: string; arguments: string } {
  const s = scriptProcessor.trim();
  const bar = s.indexOf('|');
  const unquote = (v: string): string => v.trim().replace(/^"(.*)"$/, '$1');
  return bar === -1 ? { fullPath: unquote(s), arguments: '' } : { fullPath: unquote(s.slice(0, bar)), arguments: s.slice(bar + 1).trim() };
}

export interface SettingsLookup {
  readonly settings?: FastCgiSettings;
  /** Why there is none: the scriptProcessor names no application. */
  readonly error?: string;
}

/**
 * The application a handler's scriptProcessor selects from the fastCgi section. Paths compare
 * after the path rule (so `C:\PHP\php-cgi.exe` in both places matches), case-sensitively on
 * Linux; arguments compare as written.
 */
export function lookupApplication(fastCgi: ConfigElement, scriptProcessor: string, systemDrive: string): SettingsLookup {
  const wanted = splitScriptProcessor(scriptProcessor);
  if (wanted.fullPath === '') return { error: 'the handler has no scriptProcessor naming a FastCGI application' };
  const address = parseAddress(wanted.fullPath);
  const map = (p: string): string => (parseAddress(p) !== undefined ? p.trim() : mapExpandedPath(p, { systemDrive, baseDir: '/' }));
  const wantedPath = address !== undefined ? wanted.fullPath : map(wanted.fullPath);
  for (const app of fastCgi.items) {
    if (map(app.str('fullPath')) === wantedPath && app.str('arguments').trim() === wanted.arguments) {
      try {
        return { settings: readSettings(app, wantedPath, address, systemDrive) };
      } catch (err) {
        return { error: `the fastCgi application's arguments cannot be read: ${(err as Error).message}` };
      }
    }
  }
  if (address !== undefined) return { settings: readSettings(undefined, wantedPath, address, systemDrive) };
  return {
    error: `the scriptProcessor "${scriptProcessor}" matches no <application> of system.webServer/fastCgi (its fullPath and arguments must equal the two halves around "|")`,
  };
}

const DEFAULTS = {
  maxInstances: 0,
  instanceMaxRequests: 200,
  idleTimeout: 300,
  activityTimeout: 70,
  requestTimeout: 90,
  queueLength: 1000,
  rapidFailsPerMinute: 10,
  signalBeforeTerminateSeconds: 0,
};

function readSettings(app: ConfigElement | undefined, fullPath: string, address: FastCgiAddress | undefined, systemDrive: string): FastCgiSettings {
  const num = (name: keyof typeof DEFAULTS): number => (app === undefined ? DEFAULTS[name] : app.num(name));
  const environment: Record<string, string> = {};
  if (app !== undefined) {
    const vars = app.child('environmentVariables');
    for (const v of vars.items) environment[v.str('name')] = v.str('value');
  }
  const instanceMaxRequests = num('instanceMaxRequests');
  // php-cgi ends itself after PHP_FCGI_MAX_REQUESTS (500 when unset) requests; IIS asks
  // administrators to set it at least to instanceMaxRequests. Wharf does it when they did not.
  if (address === undefined && !Object.keys(environment).some((k) => k.toUpperCase() === 'PHP_FCGI_MAX_REQUESTS')) {
    environment['PHP_FCGI_MAX_REQUESTS'] = String(instanceMaxRequests);
  }
  const maxInstances = num('maxInstances');
  const monitor = app?.str('monitorChangesTo').trim() ?? '';
  const settings = {
    key: app === undefined ? fullPath : `${app.str('fullPath')}|${app.str('arguments')}`,
    fullPath,
    arguments: app === undefined ? [] : splitWords(app.str('arguments')),
    address,
    maxInstances: maxInstances === 0 ? automaticInstances() : maxInstances,
    instanceMaxRequests,
    idleTimeoutMs: num('idleTimeout') * 1000,
    activityTimeoutMs: num('activityTimeout') * 1000,
    requestTimeoutMs: num('requestTimeout') * 1000,
    queueLength: num('queueLength'),
    rapidFailsPerMinute: num('rapidFailsPerMinute'),
    signalBeforeTerminateMs: num('signalBeforeTerminateSeconds') * 1000,
    transport: (app?.enumName('protocol') ?? 'NamedPipe') === 'Tcp' ? ('tcp' as const) : ('unix' as const),
    stderrMode: (app?.enumName('stderrMode') ?? 'ReturnStdErrIn500') as StderrMode,
    // A relative monitorChangesTo is relative to the program's folder, as IIS reads it.
    monitorChangesTo: monitor === '' ? '' : mapExpandedPath(monitor, { systemDrive, baseDir: address === undefined ? dirname(fullPath) : '/' }),
    environment,
  };
  return { ...settings, signature: JSON.stringify(settings) };
}
