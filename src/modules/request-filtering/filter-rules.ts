/**
 * The requestFiltering section compiled into lookup tables once per configuration element, and the
 * checks IIS's RequestFilteringModule makes, as a pure function of request and tables.
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpRequest } from '../../worker/module-api.js';

interface CompiledRule {
  readonly scanUrl: boolean;
  readonly scanQueryString: boolean;
  readonly scanAllRaw: boolean;
  readonly denyUnescapedPercent: boolean;
  readonly scanHeaders: readonly string[];
  readonly appliesTo: ReadonlySet<string>;
  readonly denyStrings: readonly string[];
}

export interface RequestFilter {
  readonly allowDoubleEscaping: boolean;
  readonly allowHighBitCharacters: boolean;
  readonly unescapeQueryString: boolean;
  readonly removeServerHeader: boolean;
  readonly maxAllowedContentLength: number;
  readonly maxUrl: number;
  readonly maxQueryString: number;
  readonly headerLimits: readonly { readonly header: string; readonly sizeLimit: number }[];
  readonly verbsAllowUnlisted: boolean;
  /** Verb → allowed. Verbs are case-sensitive (schema caseSensitive="true"). */
  readonly verbs: ReadonlyMap<string, boolean>;
  readonly extensionsAllowUnlisted: boolean;
  /** Lower-case extension with its dot ('.config'; '.' = no extension) → allowed. */
  readonly extensions: ReadonlyMap<string, boolean>;
  /** Lower-case segment names. */
  readonly hiddenSegments: ReadonlySet<string>;
  /** The same as '/name' search strings, for scanning a path without splitting it. */
  readonly hiddenNeedles: readonly string[];
  readonly alwaysAllowedUrls: ReadonlySet<string>;
  readonly alwaysAllowedQueryStrings: ReadonlySet<string>;
  readonly denyUrlSequences: readonly string[];
  readonly denyQueryStringSequences: readonly string[];
  readonly rules: readonly CompiledRule[];
}

// Compiled once per section element: the config system hands out one element per configuration
// scope, so steady-state requests only do a WeakMap lookup here.
const compiled = new WeakMap<ConfigElement, RequestFilter>();

function lowerValues(items: readonly ConfigElement[], attribute: string): string[] {
  return items.map((i) => i.str(attribute).toLowerCase());
}

export function compileRequestFilter(section: ConfigElement): RequestFilter {
  let f = compiled.get(section);
  if (f) return f;
  const limits = section.child('requestLimits');
  const verbs = section.child('verbs');
  const exts = section.child('fileExtensions');
  const hidden = lowerValues(section.child('hiddenSegments').items, 'segment');
  f = {
    allowDoubleEscaping: section.bool('allowDoubleEscaping'),
    allowHighBitCharacters: section.bool('allowHighBitCharacters'),
    unescapeQueryString: section.bool('unescapeQueryString'),
    // The shipped schema spells this default "defaultvalue" (so it has none): unset means false.
    removeServerHeader: section.isSet('removeServerHeader') ? section.bool('removeServerHeader') : false,
    maxAllowedContentLength: limits.num('maxAllowedContentLength'),
    maxUrl: limits.num('maxUrl'),
    maxQueryString: limits.num('maxQueryString'),
    headerLimits: limits.child('headerLimits').items.map((i) => ({
      // IIS examples sometimes write the name with its colon ("Content-Type:").
      header: i.str('header').replace(/:$/, '').toLowerCase(),
      sizeLimit: i.num('sizeLimit'),
    })),
    verbsAllowUnlisted: verbs.bool('allowUnlisted'),
    verbs: new Map(verbs.items.map((i) => [i.str('verb'), i.bool('allowed')] as const)),
    extensionsAllowUnlisted: exts.bool('allowUnlisted'),
    extensions: new Map(exts.items.map((i) => [i.str('fileExtension').toLowerCase(), i.bool('allowed')] as const)),
    hiddenSegments: new Set(hidden),
    hiddenNeedles: hidden.map((h) => '/' + h),
    alwaysAllowedUrls: new Set(lowerValues(section.child('alwaysAllowedUrls').items, 'url')),
    alwaysAllowedQueryStrings: new Set(lowerValues(section.child('alwaysAllowedQueryStrings').items, 'queryString')),
    denyUrlSequences: lowerValues(section.child('denyUrlSequences').items, 'sequence'),
    denyQueryStringSequences: lowerValues(section.child('denyQueryStringSequences').items, 'sequence'),
    rules: section.child('filteringRules').items.map((r) => ({
      scanUrl: r.bool('scanUrl'),
      scanQueryString: r.bool('scanQueryString'),
      scanAllRaw: r.bool('scanAllRaw'),
      denyUnescapedPercent: r.bool('denyUnescapedPercent'),
      scanHeaders: lowerValues(r.child('scanHeaders').items, 'requestHeader'),
      appliesTo: new Set(lowerValues(r.child('appliesTo').items, 'fileExtension')),
      denyStrings: lowerValues(r.child('denyStrings').items, 'string'),
    })),
  };
  compiled.set(section, f);
  return f;
}

/** Extension of the last URL segment, lower-case with its dot; '.' when there is none (IIS). */
export function urlExtension(path: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash ? path.slice(dot).toLowerCase() : '.';
}

/**
 * Whether some segment of a (lower-cased) URL path equals one of the '/name' needles. Runs on every
 * request with the default web.config entry, so it searches instead of splitting the path.
 */
export function hasHiddenSegment(lowerPath: string, needles: readonly string[]): boolean {
  for (const needle of needles) {
    let at = lowerPath.indexOf(needle);
    while (at >= 0) {
      const after = at + needle.length;
      if (after === lowerPath.length || lowerPath.charCodeAt(after) === 47) return true;
      at = lowerPath.indexOf(needle, after);
    }
  }
  return false;
}

function countSegments(path: string): number {
  let n = 0;
  for (let i = 0; i < path.length; i++) {
    // A segment starts after each '/' that is followed by something other than '/'.
    if (path.charCodeAt(i) === 47 && i + 1 < path.length && path.charCodeAt(i + 1) !== 47) n++;
  }
  return n;
}

// After one decode the path must not decode again: '%XX', IIS's '%uXXXX', or '+' (which IIS's
// second unescape turns into a space) all count as double escaping (404.11).
const STILL_ESCAPED = /%[0-9a-f]{2}|%u[0-9a-f]{4}|\+/i;
const NON_ASCII = /[^\x00-\x7f]/;
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;

function rawPathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  return q < 0 ? rawUrl : rawUrl.slice(0, q);
}

/** Percent-decode a query string; bytes that are not UTF-8 stay escaped rather than failing. */
export function unescapeQuery(query: string): string {
  if (!query.includes('%')) return query;
  try {
    return decodeURIComponent(query);
  } catch {
    return query.replace(/%([0-9a-f]{2})/gi, (m: string, hex: string) => {
      const code = parseInt(hex, 16);
      return code < 0x80 ? String.fromCharCode(code) : m;
    });
  }
}

function containsAny(haystack: string, needles: readonly string[]): boolean {
  for (const n of needles) if (haystack.includes(n)) return true;
  return false;
}

/** The sub-status of a 404 rejection, or 0 when the request passes. */
export function checkRequest(f: RequestFilter, req: HttpRequest, maxUrlSegments: number): number {
  // Size limits first: they are cheap and bound the work of the scans below.
  if (req.contentLength > f.maxAllowedContentLength) return 13;
  const path = req.path;
  // maxUrl counts UTF-8 bytes; a UTF-16 length of at most a third of the limit cannot exceed it.
  if (path.length * 3 > f.maxUrl && Buffer.byteLength(path) > f.maxUrl) return 14;
  if (req.queryString.length > f.maxQueryString) return 15;
  for (const h of f.headerLimits) {
    if (headerTooLong(req.rawHeaders, h.header, h.sizeLimit)) return 10;
  }
  if (!f.allowDoubleEscaping && STILL_ESCAPED.test(path)) return 11;
  if (!f.allowHighBitCharacters && (NON_ASCII.test(path) || NON_ASCII.test(rawPathOf(req.rawUrl)))) return 12;

  const verbAllowed = f.verbs.get(req.method);
  if (verbAllowed === false || (verbAllowed === undefined && !f.verbsAllowUnlisted)) return 6;

  // Hidden segments before extensions: IIS answers /web.config with 404.8, although the shipped
  // fileExtensions list also denies .config.
  const lowerPath = path.toLowerCase();
  if (hasHiddenSegment(lowerPath, f.hiddenNeedles)) return 8;
  const ext = f.extensions.size > 0 || !f.extensionsAllowUnlisted || f.rules.length > 0 ? urlExtension(path) : '';
  if (f.extensions.size > 0 || !f.extensionsAllowUnlisted) {
    const extAllowed = f.extensions.get(ext);
    if (extAllowed === false || (extAllowed === undefined && !f.extensionsAllowUnlisted)) return 7;
  }

  // alwaysAllowedUrls overrides denyUrlSequences only (IIS docs).
  if (f.denyUrlSequences.length > 0 && !f.alwaysAllowedUrls.has(lowerPath)) {
    if (containsAny(lowerPath, f.denyUrlSequences)) return 5;
  }

  const query = req.queryString;
  let lowerQuery = '';
  let lowerUnescapedQuery = '';
  if (query !== '' && (f.denyQueryStringSequences.length > 0 || f.rules.length > 0)) {
    lowerQuery = query.toLowerCase();
    // unescapeQueryString: scan both the raw and the decoded query string (IIS makes two passes).
    lowerUnescapedQuery = f.unescapeQueryString ? unescapeQuery(query).toLowerCase() : lowerQuery;
  }
  if (f.denyQueryStringSequences.length > 0 && query !== '' && !f.alwaysAllowedQueryStrings.has(lowerQuery)) {
    if (containsAny(lowerQuery, f.denyQueryStringSequences) || containsAny(lowerUnescapedQuery, f.denyQueryStringSequences)) {
      return 18;
    }
  }

  for (const rule of f.rules) {
    if (rule.appliesTo.size > 0 && !rule.appliesTo.has(ext)) continue;
    if (ruleDenies(rule, req, lowerPath, lowerQuery, lowerUnescapedQuery)) return 19;
  }

  if (countSegments(path) > maxUrlSegments) return 20;
  return 0;
}

function headerTooLong(rawHeaders: readonly string[], name: string, limit: number): boolean {
  // Each occurrence is measured on its own, as it arrived (not the ', '-joined value).
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const n = rawHeaders[i];
    const v = rawHeaders[i + 1];
    if (n !== undefined && v !== undefined && n.toLowerCase() === name && Buffer.byteLength(v) > limit) return true;
  }
  return false;
}

function ruleDenies(rule: CompiledRule, req: HttpRequest, lowerPath: string, lowerQuery: string, lowerUnescapedQuery: string): boolean {
  const deny = rule.denyStrings;
  if (rule.scanUrl && containsAny(lowerPath, deny)) return true;
  if (rule.scanQueryString && lowerQuery !== '') {
    if (rule.denyUnescapedPercent && BAD_PERCENT.test(lowerQuery)) return true;
    if (containsAny(lowerQuery, deny) || containsAny(lowerUnescapedQuery, deny)) return true;
  }
  for (const h of rule.scanHeaders) {
    const v = req.headers[h];
    if (v !== undefined && containsAny(v.toLowerCase(), deny)) return true;
  }
  if (rule.scanAllRaw) {
    if (containsAny(req.rawUrl.toLowerCase(), deny)) return true;
    for (let i = 1; i < req.rawHeaders.length; i += 2) {
      const v = req.rawHeaders[i];
      if (v !== undefined && containsAny(v.toLowerCase(), deny)) return true;
    }
  }
  return false;
}
