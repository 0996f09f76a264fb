/**
 * RewriteModule: URL Rewrite 2.1's inbound rules (reference §2.1). In BeginRequest, after request
 * filtering, the server's `<globalRules>` run on the whole URL path, then the distributed
 * `<rules>` of the URL's web.config files, parent folder first, each in document order. A rule's
 * pattern sees the URL below the folder of the web.config that defines it, without the leading
 * slash and the query string; a Rewrite changes the URL the rest of the pipeline serves (handler,
 * physical path, configuration) and later rules see the rewritten URL; Redirect, CustomResponse
 * and AbortRequest end the request. The client's URL stays in the log line and reaches a hosted
 * Node.js application unchanged (as under iisnode), with the X-Original-URL header IIS sets.
 */
import { dirname } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import type { FileInfo, HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { redirect } from '../html-response.js';
import { compileMaps, compileRules, expand, type BrokenRules, type Captures, type Condition, type Rule } from './rules.js';

/** A rule's back-references as evaluation fills them in: {C:n} change as conditions match. */
type LiveCaptures = { -readonly [K in keyof Captures]: Captures[K] };

export const RewriteModule: ModuleDefinition = {
  name: 'RewriteModule',
  notifications: {
    BeginRequest(ctx) {
      // A default document serves a URL the parent already rewrote; an httpErrors ExecuteURL
      // page is a URL of its own, which the rules see like a client's.
      if (ctx.isChildRequest && ctx.executedBy !== 'CustomErrorModule') return;
      // Global rules run once per client request (IIS: GL_PRE_BEGIN_REQUEST), never for a child.
      const global = ctx.isChildRequest ? undefined : ctx.config.section('system.webServer/rewrite/globalRules');
      const rules = ctx.config.section('system.webServer/rewrite/rules');
      if ((global === undefined || global.items.length === 0) && rules.items.length === 0) return;
      return rewrite(ctx, global, rules);
    },
  },
};

interface Compiled {
  readonly maps: ConfigElement;
  readonly rules: readonly Rule[] | BrokenRules;
}
const compiled = new WeakMap<ConfigElement, Compiled>();
const reported = new WeakSet<ConfigElement>();

function rulesOf(ctx: HttpContext, section: ConfigElement, global: boolean): readonly Rule[] | BrokenRules {
  const maps = ctx.config.section('system.webServer/rewrite/rewriteMaps');
  let c = compiled.get(section);
  if (c === undefined || c.maps !== maps) {
    c = { maps, rules: compileRules(section, ctx.config, compileMaps(maps), global ? 'global' : 'distributed') };
    compiled.set(section, c);
  }
  return c.rules;
}

/**
 * What the listener's kernel cache needs to know about one request's rules: whether every rule
 * that matched depends only on the cache key and files, and which files its conditions tested.
 */
interface CacheState {
  safe: boolean;
  readonly files: string[];
}

async function rewrite(ctx: HttpContext, globalSection: ConfigElement | undefined, rulesSection: ConfigElement): Promise<void> {
  const cache: CacheState = { safe: true, files: [] };
  // The rules come from the client's URL's web.config files, which a rewrite leaves behind.
  const ruleFiles = ctx.config.configFiles;
  const originalPath = ctx.request.path;
  try {
    for (const [section, global] of [[globalSection, true], [rulesSection, false]] as const) {
      if (section === undefined || section.items.length === 0) continue;
      const rules = rulesOf(ctx, section, global);
      if (!Array.isArray(rules)) {
        fail(ctx, global, (rules as BrokenRules).error, section);
        return;
      }
      const done = await runRules(ctx, rules as readonly Rule[], global, cache);
      if (done) return;
    }
  } finally {
    // A response for this URL may be kept only when another client's request for it would go
    // through the rules the same way: then a change to a tested file invalidates it.
    if (!cache.safe) ctx.response.kernelCache.disable();
    else {
      const deps = cache.files;
      // Rewritten: the web.config files of the client's URL (where its rules live) matter too;
      // those in folders that do not exist cannot be watched, nor hold rules.
      if (ctx.request.path !== originalPath) {
        for (const f of ruleFiles) {
          const folder = dirname(f);
          const info = ctx.statCached(folder);
          if ((info === undefined ? await ctx.stat(folder) : (info ?? undefined))?.isDirectory === true) deps.push(f);
        }
      }
      if (deps.length !== 0) ctx.response.kernelCache.addDependency(...deps);
    }
  }
}

/** Run one rule list; true when the request was answered (or failed) and processing ends. */
async function runRules(ctx: HttpContext, rules: readonly Rule[], global: boolean, cache: CacheState): Promise<boolean> {
  const variable = (name: string): string => ctx.getServerVariable(name);
  for (const rule of rules) {
    const path = ctx.request.path;
    let input: string;
    if (global || rule.base === '/') input = path.slice(1);
    else if (path.length >= rule.base.length && path.slice(0, rule.base.length).toLowerCase() === rule.base.toLowerCase()) input = path.slice(rule.base.length);
    else if ((path + '/').toLowerCase() === rule.base.toLowerCase()) input = '';
    else continue; // the URL is not below the rule's folder (rewritten out of it)
    const m = rule.match(input);
    if (rule.negate ? m !== null : m === null) {
      if (ctx.tracing) traceRule(ctx, rule, input, false);
      continue;
    }
    if (!rule.conditionsCacheSafe) cache.safe = false;
    const captures: LiveCaptures = { rule: rule.negate ? [] : m!, condition: [] };
    if (rule.conditions.length !== 0) {
      const r = conditionsHold(ctx, rule, captures, variable, cache.files);
      if (!(typeof r === 'boolean' ? r : await r)) {
        if (ctx.tracing) traceRule(ctx, rule, input, false);
        continue;
      }
    }
    if (ctx.tracing) traceRule(ctx, rule, input, true);
    if (!rule.effectCacheSafe) cache.safe = false;
    for (const v of rule.serverVariables) {
      if (!global && !allowed(ctx, v.name)) {
        fail(ctx, global, `rule "${rule.name}" (${rule.where}) sets the server variable ${v.name}, which is not allowed to be set: add it to <rewrite><allowedServerVariables> in applicationHost.config.`);
        return true;
      }
      if (!v.replace && ctx.getServerVariable(v.name) !== '') continue;
      ctx.setServerVariable(v.name, expand(v.value, captures, variable));
    }
    const a = rule.action;
    switch (a.type) {
      case 'Rewrite': {
        const refused = applyRewrite(ctx, rule, expand(a.url, captures, variable), a.appendQueryString, cache.safe);
        if (refused !== undefined) {
          fail(ctx, global, refused.description, undefined, refused.status, refused.subStatus);
          return true;
        }
        if (a.logRewrittenUrl) ctx.response.logUrl = { path: ctx.request.path, query: ctx.request.queryString };
        if (ctx.tracing) {
          ctx.trace({
            area: 'Rewrite',
            opcode: 'REWRITE_ACTION',
            level: 4,
            data: { RuleName: rule.name, RewriteURL: ctx.request.path, QueryString: ctx.request.queryString, AppendQueryString: a.appendQueryString, LogRewrittenURL: a.logRewrittenUrl },
          });
        }
        break;
      }
      case 'Redirect': {
        let location = expand(a.url, captures, variable);
        if (!/^[a-z][a-z0-9+.-]*:/i.test(location) && !location.startsWith('/')) location = rule.base + location;
        const q = ctx.request.queryString;
        if (a.appendQueryString && q !== '') location += (location.includes('?') ? '&' : '?') + q;
        // Back-references hold the decoded URL: what a header cannot carry is percent-encoded.
        location = location.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
        ctx.response.kernelCache.disable();
        redirect(ctx, a.status, location);
        ctx.finish();
        return true;
      }
      case 'CustomResponse': {
        ctx.response.kernelCache.disable();
        ctx.setStatus(a.status, a.subStatus, { description: expand(a.description, captures, variable) });
        const reason = expand(a.reason, captures, variable);
        if (reason !== '') ctx.response.statusReason = reason.replace(/[\r\n]/g, ' ');
        ctx.finish();
        return true;
      }
      case 'AbortRequest':
        ctx.response.abort();
        ctx.finish();
        return true;
      case 'None':
        break;
    }
    if (rule.stopProcessing) return global ? false : true;
  }
  return false;
}

/** FREB's RULE_EVALUATION_END (area Rewrite): a rule was tried against the URL. */
function traceRule(ctx: HttpContext, rule: Rule, input: string, succeeded: boolean): void {
  ctx.trace({
    area: 'Rewrite',
    opcode: 'RULE_EVALUATION_END',
    level: 5,
    data: { RuleName: rule.name, RequestURL: input, QueryString: ctx.request.queryString, StopProcessing: rule.stopProcessing, Succeeded: succeeded },
  });
}

function conditionsHold(
  ctx: HttpContext,
  rule: Rule,
  captures: LiveCaptures,
  variable: (name: string) => string,
  tested: string[],
): boolean | Promise<boolean> {
  const tracked: string[] = [];
  for (let i = 0; i < rule.conditions.length; i++) {
    const c = rule.conditions[i]!;
    const input = expand(c.input, captures, variable);
    let info: FileInfo | undefined;
    if (c.matchType !== 'Pattern') {
      const file = physical(input);
      const cached = ctx.statCached(file);
      if (cached === undefined) return conditionsFrom(ctx, rule, captures, variable, i, tracked, tested);
      tested.push(file);
      info = cached ?? undefined;
    }
    const verdict = settle(rule, c, resultOf(c, input, info), captures, tracked);
    if (verdict !== undefined) return verdict;
  }
  return undecided(rule);
}

/** conditionsHold's continuation once a condition needs a stat that is not cached. */
async function conditionsFrom(
  ctx: HttpContext,
  rule: Rule,
  captures: LiveCaptures,
  variable: (name: string) => string,
  from: number,
  tracked: string[],
  tested: string[],
): Promise<boolean> {
  for (let i = from; i < rule.conditions.length; i++) {
    const c = rule.conditions[i]!;
    const input = expand(c.input, captures, variable);
    let info: FileInfo | undefined;
    if (c.matchType !== 'Pattern') {
      const file = physical(input);
      tested.push(file);
      info = await ctx.stat(file);
    }
    const verdict = settle(rule, c, resultOf(c, input, info), captures, tracked);
    if (verdict !== undefined) return verdict;
  }
  return undecided(rule);
}

/** A condition's captures, or null when it does not match (`info`: the stat of a file test). */
function resultOf(c: Condition, input: string, info: FileInfo | undefined): readonly string[] | null {
  if (c.matchType === 'Pattern') return c.matcher!(input);
  return info !== undefined && (c.matchType === 'IsFile' ? info.isFile : info.isDirectory) ? [input] : null;
}

/** Every condition ran without deciding: MatchAll holds, MatchAny (with conditions) does not. */
function undecided(rule: Rule): boolean {
  return !rule.matchAny || rule.conditions.length === 0;
}

/** Record a condition's outcome; true/false when it decides the rule, undefined to go on. */
function settle(
  rule: Rule,
  c: Condition,
  result: readonly string[] | null,
  captures: LiveCaptures,
  tracked: string[],
): boolean | undefined {
  const ok = c.negate ? result === null : result !== null;
  if (ok && result !== null && !c.negate) {
    // {C:n} are the groups of the last matched condition, or of all of them (trackAllCaptures).
    if (rule.trackAllCaptures) {
      tracked.push(...result);
      captures.condition = tracked;
    } else {
      captures.condition = result;
    }
  }
  if (rule.matchAny && ok) return true;
  if (!rule.matchAny && !ok) return false;
  return undefined;
}

/** A condition input naming a file: IIS paths use '\', which on Linux is '/'. */
function physical(input: string): string {
  return input.replace(/\\/g, '/');
}

function allowed(ctx: HttpContext, name: string): boolean {
  for (const item of ctx.config.section('system.webServer/rewrite/allowedServerVariables').items) {
    if (item.str('name').toUpperCase() === name) return true;
  }
  return false;
}

/** Serve the request as `target` (relative to the rule's folder); why not, when refused. */
function applyRewrite(
  ctx: HttpContext,
  rule: Rule,
  target: string,
  appendQueryString: boolean,
  cacheable: boolean,
): { status: number; subStatus: number; description: string } | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    return {
      status: 500,
      subStatus: 50,
      description: `Rule "${rule.name}" rewrites to ${target}: rewriting to another server is a reverse proxy (Application Request Routing), which Wharf does not implement.`,
    };
  }
  const q = target.indexOf('?');
  let path = q === -1 ? target : target.slice(0, q);
  const current = ctx.request.queryString;
  let query: string;
  if (q === -1) query = appendQueryString ? current : '';
  else query = target.slice(q + 1) + (appendQueryString && current !== '' ? '&' + current : '');
  if (!path.startsWith('/')) path = rule.base + path;
  const normal = normalizePath(path);
  if (normal === undefined) {
    return { status: 500, subStatus: 50, description: `Rule "${rule.name}" (${rule.where}) rewrites to "${target}", which is not a valid URL path of this site.` };
  }
  return ctx.rewriteUrl(normal, query, { cacheable });
}

/** Resolve '.', '..' and '\' in a decoded path; undefined when it climbs above the root or holds control characters. */
export function normalizePath(path: string): string | undefined {
  if (/[\0-\x1f\x7f]/.test(path)) return undefined;
  const out: string[] = [];
  const segments = path.replace(/\\/g, '/').split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.' || (s === '' && i < segments.length - 1)) continue;
    if (s === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}

function fail(ctx: HttpContext, global: boolean, message: string, section?: ConfigElement, status = 500, subStatus = global ? 51 : 50): void {
  if (section === undefined || !reported.has(section)) {
    if (section !== undefined) reported.add(section);
    ctx.log('warn', `${status}.${subStatus} for ${ctx.request.path}: ${message}`);
  }
  ctx.response.kernelCache.disable();
  ctx.setStatus(status, subStatus, { description: message });
  ctx.finish();
}

