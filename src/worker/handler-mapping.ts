/**
 * MapRequestHandler's core step: pick the first `<handlers>` entry whose path, verb and
 * preCondition match (reference §2 "handlers"). The merged list already has web.config entries
 * first (mergeAppend=false), so a site's own mapping beats the server-level `StaticFile *`.
 */
import type { ConfigElement } from '../config/types.js';
import type { HandlerMapping } from './module-api.js';

export type HandlerMatch =
  /** `scriptPath`: the URL up to the segment the handler matched, when that is not the last one
   *  (`/test.dll` for `/test.dll/myinfo`; the rest is PATH_INFO). */
  | { readonly kind: 'handler'; readonly handler: HandlerMapping; readonly scriptPath?: string }
  | { readonly kind: 'no-handler' } // 404.4
  | { readonly kind: 'verb-not-allowed' }; // 405.0

interface CompiledHandler {
  readonly mapping: HandlerMapping;
  readonly pathTest: (fileName: string, urlPath: string) => boolean;
  /** A script map (`*.php`, `server.js`): may match a segment before the last one (PATH_INFO). */
  readonly scriptMap: boolean;
  readonly verbs: ReadonlySet<string> | undefined; // undefined = '*'
  readonly precondition: boolean;
}

const compiled = new WeakMap<ConfigElement, CompiledHandler[]>();

export interface PoolTraits {
  readonly managedRuntimeVersion: string;
  readonly managedPipelineMode: string; // Integrated | Classic
}

export function selectHandler(handlers: ConfigElement, method: string, urlPath: string, pool: PoolTraits): HandlerMatch {
  let list = compiled.get(handlers);
  if (list === undefined) {
    list = handlers.items.map((item) => compileHandler(item, pool));
    compiled.set(handlers, list);
  }
  const slash = urlPath.lastIndexOf('/');
  const fileName = urlPath.slice(slash + 1);
  let pathMatched = false;
  for (let i = 0; i < list.length; i++) {
    const h = list[i]!;
    if (!h.precondition) continue;
    let scriptPath: string | undefined;
    if (!h.pathTest(fileName, urlPath)) {
      // IIS maps /test.dll/myinfo to a *.dll handler: a script map may match an earlier segment
      // (the leftmost one), and what follows it is PATH_INFO.
      if (!h.scriptMap || slash <= 0) continue;
      scriptPath = scriptPrefix(h, urlPath, slash);
      if (scriptPath === undefined) continue;
    }
    pathMatched = true;
    if (h.verbs === undefined || h.verbs.has(method)) return scriptPath === undefined ? { kind: 'handler', handler: h.mapping } : { kind: 'handler', handler: h.mapping, scriptPath };
  }
  return pathMatched ? { kind: 'verb-not-allowed' } : { kind: 'no-handler' };
}

/** The URL up to the first segment before the last that `h` matches, if any. */
function scriptPrefix(h: CompiledHandler, urlPath: string, lastSlash: number): string | undefined {
  let start = 1;
  while (start < lastSlash) {
    const end = urlPath.indexOf('/', start);
    const segment = urlPath.slice(start, end);
    if (segment !== '' && h.pathTest(segment, urlPath.slice(0, end))) return urlPath.slice(0, end);
    start = end + 1;
  }
  return undefined;
}

function compileHandler(item: ConfigElement, pool: PoolTraits): CompiledHandler {
  const path = item.str('path');
  const verb = item.str('verb').trim();
  const modulesAttr = item.str('modules');
  const mapping: HandlerMapping = {
    name: item.str('name'),
    path,
    verb,
    modules: modulesAttr.split(',').map((m) => m.trim()).filter((m) => m !== ''),
    scriptProcessor: item.str('scriptProcessor'),
    resourceType: item.enumName('resourceType'),
    requireAccess: item.enumName('requireAccess'),
    responseBufferLimit: item.num('responseBufferLimit'),
    element: item,
  };
  return {
    mapping,
    pathTest: compilePathPattern(path),
    scriptMap: path !== '*' && path !== '*.' && !path.includes('/') && path.trim() !== '',
    verbs: verb === '*' ? undefined : new Set(verb.split(',').map((v) => v.trim()).filter((v) => v !== '')),
    precondition: preconditionHolds(item.str('preCondition'), pool),
  };
}

/**
 * Handler `path` patterns: '*' anything; '*.' extension-less names; otherwise a wildcard
 * pattern ('*.php', 'trace.axd', 'WebResource.axd') matched case-insensitively against the last
 * URL segment, or against the whole path when the pattern itself contains '/'.
 */
export function compilePathPattern(pattern: string): (fileName: string, urlPath: string) => boolean {
  if (pattern === '*') return () => true;
  if (pattern === '*.') return (name) => name.indexOf('.') === -1;
  const lower = pattern.toLowerCase();
  if (lower.startsWith('*.') && lower.indexOf('*', 1) === -1 && lower.indexOf('?') === -1 && lower.indexOf('/') === -1) {
    const ext = lower.slice(1);
    return (name) => name.length > ext.length && name.toLowerCase().endsWith(ext);
  }
  const re = new RegExp(
    '^' + lower.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$',
    'i',
  );
  if (lower.indexOf('/') !== -1) return (_name, urlPath) => re.test(urlPath.slice(1)) || re.test(urlPath);
  return (name) => re.test(name);
}

/** IIS preConditions, as they evaluate for a Wharf worker (64-bit, integrated pipeline). */
export function preconditionHolds(value: string, pool: PoolTraits): boolean {
  if (value.trim() === '') return true;
  for (const raw of value.split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === '') continue;
    if (p === 'integratedmode' && pool.managedPipelineMode.toLowerCase() !== 'integrated') return false;
    if ((p === 'classicmode' || p === 'isapimode') && pool.managedPipelineMode.toLowerCase() !== 'classic') return false;
    if (p === 'bitness32') return false;
    // runtimeVersionv2.0 / v4.0 name the .NET CLR a pool loads. Wharf's workers host no CLR
    // whatever managedRuntimeVersion says, so ASP.NET's handler mappings never match and
    // requests fall through to the next mapping (e.g. StaticFile), as on an IIS without .NET.
    if (p.startsWith('runtimeversion')) return false;
  }
  return true;
}
