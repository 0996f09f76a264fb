/**
 * appcmd.exe's grammar and output, as pure functions: `wharf <verb> <object> [identifier]
 * [/param:value …]` parsed into an AdminCommand, and AdminObjects printed the way appcmd prints
 * them (IIS docs, "Getting Started with AppCmd.exe"):
 *
 *   SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)      one line per object
 *   APPPOOL                                                               /text:*  (detail view)
 *     APPPOOL.NAME:"DefaultAppPool"
 *     [add]
 *       name:"DefaultAppPool"
 *       [processModel]
 *         identityType:"ApplicationPoolIdentity"
 *   ERROR ( message:Cannot find SITE object with identifier "x". )        errors, on stderr
 *
 * The server only lists and acts; identifiers, filters and /text are applied here.
 */
import { AdminError } from '../errors.js';
import type { AdminConfigElement, AdminObject, AdminObjectKind, AdminRequest, AdminResponse } from './types.js';

/** appcmd object names, singular and plural, to object kinds. */
const OBJECT_WORDS: Readonly<Record<string, AdminObjectKind>> = {
  site: 'SITE',
  sites: 'SITE',
  app: 'APP',
  apps: 'APP',
  vdir: 'VDIR',
  vdirs: 'VDIR',
  apppool: 'APPPOOL',
  apppools: 'APPPOOL',
  wp: 'WP',
  wps: 'WP',
  request: 'REQUEST',
  requests: 'REQUEST',
  trace: 'TRACE',
  traces: 'TRACE',
};

const VERBS = ['list', 'start', 'stop', 'recycle', 'logs'] as const;
export type AdminVerb = (typeof VERBS)[number];

/** `/text` (one line per object), `/text:*` (detail view) or `/text:<property>` (its value per object). */
export type TextMode =
  | { readonly kind: 'summary' }
  | { readonly kind: 'detail' }
  | { readonly kind: 'property'; readonly name: string };

/** `/name:value` on `list`: keeps objects whose property matches (see matchesFilter). */
export interface Filter {
  readonly name: string;
  readonly value: string;
}

export interface ListCommand {
  readonly verb: 'list';
  readonly kind: AdminObjectKind;
  readonly identifier: string | undefined;
  readonly filters: readonly Filter[];
  readonly text: TextMode;
}

export interface ActionCommand {
  readonly verb: 'start' | 'stop' | 'recycle';
  readonly kind: 'SITE' | 'APPPOOL';
  readonly name: string;
}

/** Wharf's own verb: `wharf logs apppool NAME [/lines:N]` prints what the pool's workers printed. */
export interface LogsCommand {
  readonly verb: 'logs';
  readonly kind: 'APPPOOL';
  readonly name: string;
  readonly lines: number;
}

export type AdminCommand = ListCommand | ActionCommand | LogsCommand;

export type ParsedAdminArgs =
  | {
      readonly ok: true;
      readonly help: boolean;
      readonly command: AdminCommand | undefined;
      /** `-c/--config`: the configuration whose server to talk to. */
      readonly configFile: string | undefined;
      /** `-p/--port`: which embedded-default server (see adminSocketPath). */
      readonly port: number | undefined;
    }
  | { readonly ok: false; readonly error: string };

export interface AdminOutput {
  readonly stdout: string;
  readonly stderr: string;
  /** 0 success, 1 error (appcmd's ERROR lines), 2 usage. */
  readonly code: number;
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Split {
  readonly rest: string[];
  readonly configFile: string | undefined;
  readonly port: string | undefined;
  readonly help: boolean;
}

/** Takes Wharf's own options (which may come anywhere) out of the appcmd-style arguments. */
function splitWharfOptions(argv: readonly string[]): Split | { error: string } {
  const rest: string[] = [];
  let configFile: string | undefined;
  let port: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq !== -1 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq !== -1 ? a.slice(eq + 1) : undefined;
    if (flag === '-c' || flag === '--config' || flag === '-p' || flag === '--port') {
      const value = inline ?? argv[++i];
      if (value === undefined) return { error: `${flag} needs a value` };
      if (flag === '-c' || flag === '--config') configFile = value;
      else port = value;
    } else if (flag === '-h' || flag === '--help' || flag === '/?' || flag === '-?') {
      help = true;
    } else {
      rest.push(a);
    }
  }
  return { rest, configFile, port, help };
}

/** A `/name:value`, `-name:value` or `--name=value` parameter; undefined for a positional. */
function parameter(arg: string): Filter | undefined {
  let body: string;
  let sep: string;
  if (arg.startsWith('--')) {
    body = arg.slice(2);
    sep = '=';
  } else if (arg.startsWith('/') || arg.startsWith('-')) {
    body = arg.slice(1);
    sep = ':';
  } else {
    return undefined;
  }
  if (body === '') return undefined;
  const at = body.indexOf(sep);
  const name = at === -1 ? body : body.slice(0, at);
  const value = at === -1 ? '' : body.slice(at + 1);
  return { name, value: unquote(value) };
}

/** `/apppool.name:"My Pool"` typed inside single quotes keeps its double quotes; appcmd drops them. */
function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
}

/** Whether `argv` is an appcmd-style command (list/stop/recycle, or start with an object) rather than `wharf start` of the server. */
export function isAdminInvocation(argv: readonly string[]): boolean {
  const split = splitWharfOptions(argv);
  if ('error' in split) return false;
  const verb = split.rest[0]?.toLowerCase();
  if (verb === 'list' || verb === 'stop' || verb === 'recycle' || verb === 'logs') return true;
  const object = split.rest[1]?.toLowerCase();
  return verb === 'start' && object !== undefined && object in OBJECT_WORDS;
}

/** Parses `wharf <verb> <object> [identifier] [/param:value …] [--config f] [--port n]`. */
export function parseAdminArgs(argv: readonly string[]): ParsedAdminArgs {
  const split = splitWharfOptions(argv);
  if ('error' in split) return { ok: false, error: split.error };
  let port: number | undefined;
  if (split.port !== undefined) {
    port = Number(split.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, error: `--port must be a number from 1 to 65535, not "${split.port}"` };
  }
  if (split.configFile !== undefined && port !== undefined) {
    return { ok: false, error: '--port applies to the embedded default only; with --config the configuration file names the server' };
  }
  const done = (command: AdminCommand | undefined): ParsedAdminArgs => ({ ok: true, help: split.help, command, configFile: split.configFile, port });
  if (split.help) return done(undefined);

  const [verbWord, objectWord, ...args] = split.rest;
  const verb = verbWord?.toLowerCase();
  if (verb === undefined || !(VERBS as readonly string[]).includes(verb)) {
    return { ok: false, error: `unknown command "${verbWord ?? ''}"` };
  }
  const kind = objectWord === undefined ? undefined : OBJECT_WORDS[objectWord.toLowerCase()];
  if (kind === undefined) {
    const expected = verb === 'list' ? 'site, app, vdir, apppool, wp or request' : verb === 'recycle' || verb === 'logs' ? 'apppool' : 'site or apppool';
    return { ok: false, error: objectWord === undefined ? `${verb} needs an object: ${expected}` : `unknown object "${objectWord}" (expected ${expected})` };
  }

  const positionals: string[] = [];
  const params: Filter[] = [];
  for (const a of args) {
    const p = parameter(a);
    if (p) params.push(p);
    else positionals.push(unquote(a));
  }
  if (positionals.length > 1) return { ok: false, error: `unexpected argument "${positionals[1]}" (quote an identifier that contains spaces)` };

  if (verb === 'list') {
    let text: TextMode = { kind: 'summary' };
    const filters: Filter[] = [];
    for (const p of params) {
      if (p.name.toLowerCase() !== 'text') filters.push(p);
      else text = p.value === '' ? { kind: 'summary' } : p.value === '*' ? { kind: 'detail' } : { kind: 'property', name: p.value };
    }
    return done({ verb: 'list', kind, identifier: positionals[0], filters, text });
  }

  if (verb === 'recycle' || verb === 'logs' ? kind !== 'APPPOOL' : kind !== 'SITE' && kind !== 'APPPOOL') {
    return { ok: false, error: `the command "${verb}" is not supported on object "${kind}"` };
  }
  // appcmd names the object positionally or as /site.name:, /apppool.name: (or /name:).
  let name = positionals[0];
  let lines = 100;
  for (const p of params) {
    const n = p.name.toLowerCase();
    if (verb === 'logs' && n === 'lines') {
      lines = Number(p.value);
      if (!Number.isInteger(lines) || lines < 1 || lines > 100000) return { ok: false, error: `/lines must be a number from 1 to 100000, not "${p.value}"` };
    } else if (n === `${kind.toLowerCase()}.name` || n === 'name') {
      if (name !== undefined && name !== p.value) return { ok: false, error: `two different ${kind} names given ("${name}" and "${p.value}")` };
      name = p.value;
    } else {
      return { ok: false, error: `unknown parameter "${p.name}" for ${verb} ${kind.toLowerCase()}` };
    }
  }
  if (name === undefined || name === '') return { ok: false, error: `${verb} ${kind.toLowerCase()} needs the ${kind === 'SITE' ? 'site' : 'application pool'} name` };
  if (verb === 'logs') return done({ verb, kind: 'APPPOOL', name, lines });
  return done({ verb: verb as ActionCommand['verb'], kind: kind as ActionCommand['kind'], name });
}

/** The admin socket request a command needs. */
export function requestFor(command: AdminCommand): AdminRequest {
  if (command.verb === 'list') return { op: 'list', kind: command.kind };
  if (command.verb === 'recycle') return { op: 'recycle', kind: 'APPPOOL', name: command.name };
  if (command.verb === 'logs') return { op: 'logs', kind: 'APPPOOL', name: command.name, lines: command.lines };
  return { op: command.verb, kind: command.kind, name: command.name };
}

// ---------------------------------------------------------------------------------------------
// Properties, identifiers, filters

/**
 * A configuration element's attributes as appcmd names them for filters and `/text:<name>`:
 * `name`, `processModel.idleTimeout`, `recycling.periodicRestart.time`. Collection items are not
 * flattened (there may be many of them).
 */
export function flattenConfig(element: AdminConfigElement): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (e: AdminConfigElement, prefix: string): void => {
    for (const [k, v] of e.attributes) out[prefix + k] = v;
    for (const c of e.children) walk(c, `${prefix}${c.name}.`);
  };
  walk(element, '');
  return out;
}

/** Property lookup, case-insensitive like appcmd (`/apppool.name:` finds `APPPOOL.NAME`). */
export function propertyOf(object: AdminObject, name: string): string | undefined {
  const exact = object.properties[name];
  if (exact !== undefined) return exact;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(object.properties)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function compare(actual: string, expected: string): number {
  const a = Number(actual);
  const b = Number(expected);
  if (actual.trim() !== '' && expected.trim() !== '' && Number.isFinite(a) && Number.isFinite(b)) return a - b;
  return actual.toLowerCase().localeCompare(expected.toLowerCase());
}

function wildcard(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 'is');
}

/**
 * appcmd's filter values: `value` (equal, case-insensitive), and its range operators `$>v`,
 * `$>=v`, `$<v`, `$<=v`, `$<>v` (not equal) and `$=pattern` (`*` wildcard). Numbers compare as
 * numbers. REQUEST's `/elapsed:N` keeps requests running for N ms or more.
 */
export function matchesFilter(object: AdminObject, filter: Filter): boolean {
  if (object.kind === 'REQUEST' && filter.name.toLowerCase() === 'elapsed') {
    const time = Number(propertyOf(object, 'time'));
    return Number.isFinite(time) && time >= Number(filter.value);
  }
  const actual = propertyOf(object, filter.name);
  if (actual === undefined) return false;
  const v = filter.value;
  if (v.startsWith('$>=')) return compare(actual, v.slice(3)) >= 0;
  if (v.startsWith('$<=')) return compare(actual, v.slice(3)) <= 0;
  if (v.startsWith('$<>')) return compare(actual, v.slice(3)) !== 0;
  if (v.startsWith('$>')) return compare(actual, v.slice(2)) > 0;
  if (v.startsWith('$<')) return compare(actual, v.slice(2)) < 0;
  if (v.startsWith('$=')) return wildcard(v.slice(2)).test(actual);
  return compare(actual, v) === 0;
}

/** Applies `list`'s identifier and filters; an identifier that matches nothing is appcmd's error. */
export function selectObjects(command: ListCommand, objects: readonly AdminObject[]): { ok: true; objects: AdminObject[] } | { ok: false; error: string } {
  let selected = objects.filter((o) => o.kind === command.kind);
  if (command.identifier !== undefined) {
    const id = command.identifier.toLowerCase();
    selected = selected.filter((o) => o.id.toLowerCase() === id);
    if (selected.length === 0) return { ok: false, error: `Cannot find ${command.kind} object with identifier "${command.identifier}".` };
  }
  for (const f of command.filters) {
    const known = (command.kind === 'REQUEST' && f.name.toLowerCase() === 'elapsed') || selected.length === 0 || selected.some((o) => propertyOf(o, f.name) !== undefined);
    if (!known) return { ok: false, error: `Unknown attribute "${f.name}".` };
    selected = selected.filter((o) => matchesFilter(o, f));
  }
  return { ok: true, objects: selected };
}

// ---------------------------------------------------------------------------------------------
// Output

/** `SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)`. */
export function formatSummary(object: AdminObject): string {
  const pairs = object.summary.map(([k, v]) => `${k}:${v}`).join(',');
  return pairs === '' ? `${object.kind} "${object.id}"` : `${object.kind} "${object.id}" (${pairs})`;
}

function elementLines(e: AdminConfigElement, indent: string, out: string[]): void {
  out.push(`${indent}[${e.name}]`);
  const inner = indent + '  ';
  for (const [k, v] of e.attributes) out.push(`${inner}${k}:"${v}"`);
  for (const c of e.children) elementLines(c, inner, out);
  for (const i of e.items) elementLines(i, inner, out);
}

/**
 * `/text:*`: the kind, the generated properties (`APPPOOL.NAME:"…"`, `state:"…"`), then the
 * configuration element nested as `[add]`, `[processModel]`, … with `name:"value"` lines.
 */
export function formatDetail(object: AdminObject): string[] {
  const out: string[] = [object.kind];
  const fromConfig = object.config ? flattenConfig(object.config) : {};
  for (const [k, v] of Object.entries(object.properties)) if (!(k in fromConfig)) out.push(`  ${k}:"${v}"`);
  if (object.config) elementLines(object.config, '  ', out);
  return out;
}

/** `ERROR ( message:… )`, appcmd's error line. */
export function formatError(message: string): string {
  return `ERROR ( message:${message} )`;
}

/** What `list` prints for the objects the server returned. */
export function renderList(command: ListCommand, objects: readonly AdminObject[]): AdminOutput {
  const picked = selectObjects(command, objects);
  if (!picked.ok) return { stdout: '', stderr: formatError(picked.error) + '\n', code: 1 };
  const lines: string[] = [];
  for (const o of picked.objects) {
    if (command.text.kind === 'summary') lines.push(formatSummary(o));
    else if (command.text.kind === 'detail') lines.push(...formatDetail(o));
    else lines.push(propertyOf(o, command.text.name) ?? '');
  }
  return { stdout: lines.map((l) => l + '\n').join(''), stderr: '', code: 0 };
}

const PAST: Readonly<Record<ActionCommand['verb'], string>> = { start: 'started', stop: 'stopped', recycle: 'recycled' };

/** appcmd's confirmation: `"DefaultAppPool" successfully recycled.` */
export function successMessage(verb: ActionCommand['verb'], name: string): string {
  return `"${name}" successfully ${PAST[verb]}.`;
}

/** Runs a parsed command against the server (`call` sends one request) and says what to print. */
export async function runAdminCommand(command: AdminCommand, call: (request: AdminRequest) => Promise<AdminResponse>): Promise<AdminOutput> {
  let response: AdminResponse;
  try {
    response = await call(requestFor(command));
  } catch (err) {
    const message = err instanceof AdminError ? err.message : String((err as Error)?.message ?? err);
    return { stdout: '', stderr: formatError(message) + '\n', code: 1 };
  }
  if (!response.ok) return { stdout: '', stderr: formatError(response.error) + '\n', code: 1 };
  if (command.verb === 'list') return renderList(command, response.objects ?? []);
  if (command.verb === 'logs') {
    const lines = response.lines ?? [];
    if (lines.length === 0) {
      return { stdout: '', stderr: `No output from application pool "${command.name}" since the server started (its files are in ${response.folder ?? '?'}).\n`, code: 0 };
    }
    return { stdout: lines.join('\n') + '\n', stderr: '', code: 0 };
  }
  return { stdout: (response.message ?? successMessage(command.verb, command.name)) + '\n', stderr: '', code: 0 };
}
