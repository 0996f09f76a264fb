/**
 * Failed Request Tracing rules (`system.webServer/tracing/traceFailedRequests`, reference §2 and
 * §5.2) compiled once per effective section: which URLs a rule covers (`path`), which events it
 * keeps (`traceAreas`: provider, areas, verbosity) and when a request counts as failed
 * (`failureDefinitions`: statusCodes, timeTaken, verbosity).
 */
import type { ConfigElement } from '../config/types.js';

/** The WWW Server provider's areas and their keyword bits (traceProviderDefinitions). */
export const WWW_SERVER_AREAS: Readonly<Record<string, number>> = {
  Authentication: 2,
  Security: 4,
  Filter: 8,
  StaticFile: 16,
  CGI: 32,
  Compression: 64,
  Cache: 128,
  RequestNotifications: 256,
  Module: 512,
  Rewrite: 1024,
  RequestRouting: 2048,
  FastCGI: 4096,
  WebSocket: 16384,
  ANCM: 65536,
};
export const WWW_SERVER_PROVIDER = 'WWW Server';

/** One entry of a statusCodes list: a status or a range of them, optionally one sub-status. */
export interface StatusCodeRange {
  readonly from: number;
  readonly to: number;
  /** -1: any sub-status. */
  readonly subStatus: number;
}

export interface ParsedStatusCodes {
  readonly ranges: readonly StatusCodeRange[];
  /** Entries that are not `404`, `404.2` or `500-599` (reported, then left out). */
  readonly invalid: readonly string[];
}

const ENTRY = /^(\d{3})(?:\.(\d{1,5})|-(\d{3}))?$/;

/**
 * `statusCodes` as IIS writes it: a comma-separated list of `404`, `404.2` (that sub-status only)
 * and ranges `500-599` (every sub-status). Blanks around entries are allowed.
 */
export function parseStatusCodes(text: string): ParsedStatusCodes {
  const ranges: StatusCodeRange[] = [];
  const invalid: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = ENTRY.exec(entry);
    const from = m === null ? NaN : Number(m[1]);
    const to = m?.[3] !== undefined ? Number(m[3]) : from;
    if (m === null || from < 100 || to > 999 || to < from) {
      invalid.push(entry);
      continue;
    }
    ranges.push({ from, to, subStatus: m[2] !== undefined ? Number(m[2]) : -1 });
  }
  return { ranges, invalid };
}

export function statusMatches(ranges: readonly StatusCodeRange[], status: number, subStatus: number): boolean {
  for (const r of ranges) {
    if (status >= r.from && status <= r.to && (r.subStatus === -1 || r.subStatus === subStatus)) return true;
  }
  return false;
}

/**
 * Whether a rule's `path` covers a URL path. `*` covers every URL; a path without '/' is matched
 * against the URL's last segment (`*.aspx`, `default.htm`), one with '/' against the whole path;
 * `*` stands for any characters. Case-insensitive, as IIS compares URLs.
 */
export function pathMatches(rulePath: string, urlPath: string): boolean {
  if (rulePath === '*' || rulePath === '') return true;
  const subject = rulePath.includes('/') ? urlPath : urlPath.slice(urlPath.lastIndexOf('/') + 1);
  return globMatch(rulePath.toLowerCase(), subject.toLowerCase());
}

function globMatch(pattern: string, text: string): boolean {
  // Iterative wildcard matching with backtracking to the last '*' (linear in practice, no RegExp
  // built from configuration text).
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/** What a rule keeps of the WWW Server provider's events. */
export interface AreaFilter {
  /** Highest level kept: 0 General … 5 Verbose (traceAreas verbosity). */
  readonly verbosity: number;
  /** Area names kept ('General' events are kept whatever the areas). */
  readonly areas: ReadonlySet<string>;
  readonly allAreas: boolean;
}

export interface TraceRule {
  readonly path: string;
  readonly statusCodes: readonly StatusCodeRange[];
  /** ms; 0: time taken is not a failure definition. */
  readonly timeTakenMs: number;
  /** Keep tracing after timeTaken elapsed and write the whole request at its end. */
  readonly traceAllAfterTimeout: boolean;
  /** failureDefinitions verbosity: an event of level 1..this fails the request (0: Ignore). */
  readonly failureVerbosity: number;
  /** undefined: the rule traces no WWW Server area (its General events only). */
  readonly www: AreaFilter | undefined;
  /** What Wharf could not take as written, for the worker's log (once per rule). */
  readonly problems: readonly string[];
}

const compiled = new WeakMap<ConfigElement, readonly TraceRule[]>();

/** The rules of an effective traceFailedRequests section, compiled once per section object. */
export function traceRules(section: ConfigElement): readonly TraceRule[] {
  let rules = compiled.get(section);
  if (rules === undefined) compiled.set(section, (rules = section.items.map(compileRule)));
  return rules;
}

/** The first rule whose path covers the URL (IIS applies one rule per request). */
export function ruleFor(rules: readonly TraceRule[], urlPath: string): TraceRule | undefined {
  for (const r of rules) if (pathMatches(r.path, urlPath)) return r;
  return undefined;
}

function compileRule(item: ConfigElement): TraceRule {
  const path = item.str('path');
  const problems: string[] = [];
  const fd = item.child('failureDefinitions');
  const codes = parseStatusCodes(fd.str('statusCodes'));
  if (codes.invalid.length !== 0) {
    problems.push(`statusCodes entries ${codes.invalid.map((e) => `"${e}"`).join(', ')} are not a status (404), a status with sub-status (404.2) or a range (500-599); they are left out`);
  }
  let www: AreaFilter | undefined;
  for (const area of item.child('traceAreas').items) {
    const provider = area.str('provider');
    if (provider.toLowerCase() !== WWW_SERVER_PROVIDER.toLowerCase()) {
      // ASP, ISAPI Extension, ASPNET: providers of code Wharf does not run; nothing raises their events.
      continue;
    }
    const text = area.str('areas').trim();
    const names = new Set<string>();
    let allAreas = text === '' || text === '*';
    if (!allAreas) {
      for (const raw of text.split(',')) {
        const name = raw.trim();
        if (name === '') continue;
        if (name === '*') allAreas = true;
        const known = Object.keys(WWW_SERVER_AREAS).find((k) => k.toLowerCase() === name.toLowerCase());
        if (known === undefined) problems.push(`traceAreas area "${name}" is not an area of the WWW Server provider`);
        else names.add(known);
      }
    }
    www = { verbosity: area.num('verbosity'), areas: names, allAreas };
  }
  const customAction = item.str('customActionExe');
  if (customAction !== '') problems.push(`customActionExe "${customAction}" is not run (Wharf does not run custom actions)`);
  return {
    path,
    statusCodes: codes.ranges,
    timeTakenMs: fd.num('timeTaken'),
    traceAllAfterTimeout: fd.bool('traceAllAfterTimeout'),
    failureVerbosity: fd.num('verbosity'),
    www,
    problems,
  };
}

/** Whether a rule keeps an event of this area and level. Level 0 (LogAlways) is always kept. */
export function keepsEvent(rule: TraceRule, area: string, level: number): boolean {
  if (level === 0) return true;
  const f = rule.www;
  if (f === undefined || level > f.verbosity) return false;
  return area === 'General' || f.allAreas || f.areas.has(area);
}
