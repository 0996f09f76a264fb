/**
 * The requestFiltering section compiled into lookup tables once per configuration element, and the
 * checks IIS's RequestFilteringModule makes, as a pure function of request and tables.
 *
 * Every scan is linear in what it scans: string lists are SequenceMatcher automatons (one pass
 * whatever the list's length), hidden segments are set lookups per segment, and the regular
 * expressions below have no nested or overlapping repetition.
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpRequest } from '../../worker/module-api.js';
import { SequenceMatcher } from './sequence-matcher.js';

interface CompiledRule {
  readonly scanUrl: boolean;
  readonly scanQueryString: boolean;
  readonly scanAllRaw: boolean;
  readonly denyUnescapedPercent: boolean;
  /** Lower-case header names. */
  readonly scanHeaders: ReadonlySet<string>;
  readonly appliesTo: ReadonlySet<string>;
  readonly denyStrings: SequenceMatcher;
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
  /** Their lengths: a URL segment of another length is not looked up (no slice, no hash). */
  readonly hiddenSegmentLengths: ReadonlySet<number>;
  readonly alwaysAllowedUrls: ReadonlySet<string>;
  readonly alwaysAllowedQueryStrings: ReadonlySet<string>;
  readonly denyUrlSequences: SequenceMatcher;
  readonly denyQueryStringSequences: SequenceMatcher;
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
  const strings = (element: ConfigElement, attribute: string): SequenceMatcher => new SequenceMatcher(element.items.map((i) => i.str(attribute)));
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
    hiddenSegmentLengths: new Set(hidden.map((h) => h.length)),
    alwaysAllowedUrls: new Set(lowerValues(section.child('alwaysAllowedUrls').items, 'url')),
    alwaysAllowedQueryStrings: allowedQueryStrings(lowerValues(section.child('alwaysAllowedQueryStrings').items, 'queryString'), section.bool('unescapeQueryString')),
    denyUrlSequences: strings(section.child('denyUrlSequences'), 'sequence'),
    denyQueryStringSequences: strings(section.child('denyQueryStringSequences'), 'sequence'),
    rules: section.child('filteringRules').items.map((r) => ({
      scanUrl: r.bool('scanUrl'),
      scanQueryString: r.bool('scanQueryString'),
      scanAllRaw: r.bool('scanAllRaw'),
      denyUnescapedPercent: r.bool('denyUnescapedPercent'),
      scanHeaders: new Set(lowerValues(r.child('scanHeaders').items, 'requestHeader').map((h) => h.replace(/:$/, ''))),
      appliesTo: new Set(lowerValues(r.child('appliesTo').items, 'fileExtension')),
      denyStrings: strings(r.child('denyStrings'), 'string'),
    })),
  };
  compiled.set(section, f);
  return f;
}

/** alwaysAllowedQueryStrings entries as written, and decoded when query strings are compared decoded too. */
function allowedQueryStrings(entries: readonly string[], unescape: boolean): ReadonlySet<string> {
  return new Set(unescape ? [...entries, ...entries.map((e) => unescapeQuery(e))] : entries);
}

/** Extension of the last URL segment, lower-case with its dot; '.' when there is none (IIS). */
export function urlExtension(path: string): string {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash ? path.slice(dot).toLowerCase() : '.';
}

/**
 * Whether some segment of a (lower-cased) URL path is a hidden segment. Runs on every request with
 * the default web.config entry: one walk over the path, a set lookup only for a segment whose
 * length is one of the names'.
 */
export function hasHiddenSegment(lowerPath: string, names: ReadonlySet<string>, lengths: ReadonlySet<number>): boolean {
  if (names.size === 0) return false;
  let start = 0;
  for (let i = 0; i <= lowerPath.length; i++) {
    if (i < lowerPath.length && lowerPath.charCodeAt(i) !== 47) continue;
    if (lengths.has(i - start) && names.has(lowerPath.slice(start, i))) return true;
    start = i + 1;
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
// A '%' that starts neither '%XX' nor IIS's '%uXXXX' (filteringRule denyUnescapedPercent).
const BAD_PERCENT = /%(?![0-9a-f]{2}|u[0-9a-f]{4})/i;

/**
 * The path of the request-target as the client sent it (still escaped, dot segments kept): what
 * IIS's raw URL scans see. An absolute-form target ('http://host/a') loses its scheme and host.
 */
export function rawPathOf(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  const target = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (target.charCodeAt(0) === 47) return target;
  const scheme = target.indexOf('://');
  if (scheme < 0) return target; // '*'
  const slash = target.indexOf('/', scheme + 3);
  return slash < 0 ? '/' : target.slice(slash);
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

/** UTF-8 length of `s` without encoding it when its UTF-16 length already settles the comparison. */
function longerThan(s: string, maxBytes: number): boolean {
  if (s.length > maxBytes) return true;
  return s.length * 3 > maxBytes && Buffer.byteLength(s) > maxBytes;
}

/** The request's URL and query string in the forms the scans look at, each made once, when first needed. */
class ScanText {
  readonly #req: HttpRequest;
  readonly #unescape: boolean;
  #lowerPath: string | undefined;
  #lowerRawPath: string | undefined;
  #lowerQuery: string | undefined;
  #lowerUnescapedQuery: string | undefined;

  constructor(req: HttpRequest, unescapeQueryString: boolean) {
    this.#req = req;
    this.#unescape = unescapeQueryString;
  }
  /** The decoded, canonical path. */
  get path(): string {
    return (this.#lowerPath ??= this.#req.path.toLowerCase());
  }
  /** The path as sent ('%2e%2e', '..' and '%' still there). */
  get rawPath(): string {
    return (this.#lowerRawPath ??= rawPathOf(this.#req.rawUrl).toLowerCase());
  }
  get query(): string {
    return (this.#lowerQuery ??= this.#req.queryString.toLowerCase());
  }
  /** unescapeQueryString: the decoded query string, scanned as well as the raw one (IIS's two passes). */
  get unescapedQuery(): string {
    return (this.#lowerUnescapedQuery ??= this.#unescape ? unescapeQuery(this.#req.queryString).toLowerCase() : this.query);
  }
  /** Whether the path, as sent or decoded, holds one of the strings. */
  urlHas(m: SequenceMatcher): boolean {
    return m.test(this.path) || m.test(this.rawPath);
  }
  queryHas(m: SequenceMatcher): boolean {
    return this.#req.queryString !== '' && (m.test(this.query) || (this.#unescape && m.test(this.unescapedQuery)));
  }
}

/**
 * The sub-status of a 404 rejection, or 0 when the request passes. The order decides which
 * sub-status a request that breaks several rules gets (docs/configuration.md lists it): sizes
 * first (cheap, and they bound the scans after them), then the URL's form (double escaping, high-bit
 * characters), the verb, the path's names (hidden segment before extension: IIS answers
 * /web.config 404.8 although .config is a denied extension too), then the sequence scans and the
 * custom rules, and last the segment count of the site's limits.
 */
export function checkRequest(f: RequestFilter, req: HttpRequest, maxUrlSegments: number): number {
  if (req.contentLength > f.maxAllowedContentLength) return 13;
  const path = req.path;
  if (longerThan(path, f.maxUrl)) return 14;
  if (longerThan(req.queryString, f.maxQueryString)) return 15;
  for (const h of f.headerLimits) {
    if (headerTooLong(req.rawHeaders, h.header, h.sizeLimit)) return 10;
  }
  if (!f.allowDoubleEscaping && STILL_ESCAPED.test(path)) return 11;
  if (!f.allowHighBitCharacters && (NON_ASCII.test(path) || NON_ASCII.test(rawPathOf(req.rawUrl)))) return 12;

  const verbAllowed = f.verbs.get(req.method);
  if (verbAllowed === false || (verbAllowed === undefined && !f.verbsAllowUnlisted)) return 6;

  const text = new ScanText(req, f.unescapeQueryString);
  if (hasHiddenSegment(text.path, f.hiddenSegments, f.hiddenSegmentLengths)) return 8;
  const ext = f.extensions.size > 0 || !f.extensionsAllowUnlisted || f.rules.length > 0 ? urlExtension(path) : '';
  if (f.extensions.size > 0 || !f.extensionsAllowUnlisted) {
    const extAllowed = f.extensions.get(ext);
    if (extAllowed === false || (extAllowed === undefined && !f.extensionsAllowUnlisted)) return 7;
  }

  // alwaysAllowedUrls overrides denyUrlSequences only (IIS docs); an entry names the decoded path.
  if (f.denyUrlSequences.size > 0 && !f.alwaysAllowedUrls.has(text.path) && text.urlHas(f.denyUrlSequences)) return 5;

  // alwaysAllowedQueryStrings overrides denyQueryStringSequences only; an entry matches the whole
  // query string, as sent or decoded.
  if (f.denyQueryStringSequences.size > 0 && text.queryHas(f.denyQueryStringSequences)) {
    const allowed = f.alwaysAllowedQueryStrings;
    if (!allowed.has(text.query) && !(f.unescapeQueryString && allowed.has(text.unescapedQuery))) return 18;
  }

  for (const rule of f.rules) {
    if (rule.appliesTo.size > 0 && !rule.appliesTo.has(ext)) continue;
    if (ruleDenies(rule, req, text)) return 19;
  }

  if (countSegments(path) > maxUrlSegments) return 20;
  return 0;
}

function headerTooLong(rawHeaders: readonly string[], name: string, limit: number): boolean {
  // Each occurrence is measured on its own, as it arrived (not the ', '-joined value).
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === name.length && n.toLowerCase() === name && Buffer.byteLength(rawHeaders[i + 1]!) > limit) return true;
  }
  return false;
}

/**
 * One filteringRule: scanUrl (the path, as sent and decoded), scanQueryString (raw, and decoded
 * when unescapeQueryString), denyUnescapedPercent (a '%' that starts no escape in what the rule
 * scans of the URL), scanHeaders (the named headers' values), scanAllRaw (every header line as sent).
 */
function ruleDenies(rule: CompiledRule, req: HttpRequest, text: ScanText): boolean {
  const deny = rule.denyStrings;
  if (rule.scanUrl) {
    if (rule.denyUnescapedPercent && BAD_PERCENT.test(text.rawPath)) return true;
    if (text.urlHas(deny)) return true;
  }
  if (rule.scanQueryString && req.queryString !== '') {
    if (rule.denyUnescapedPercent && BAD_PERCENT.test(req.queryString)) return true;
    if (text.queryHas(deny)) return true;
  }
  if (deny.size === 0) return false;
  const raw = req.rawHeaders;
  if (rule.scanHeaders.size > 0) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (rule.scanHeaders.has(raw[i]!.toLowerCase()) && deny.test(raw[i + 1]!.toLowerCase())) return true;
    }
  }
  if (rule.scanAllRaw) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (deny.test((raw[i] + ': ' + raw[i + 1]).toLowerCase())) return true;
    }
  }
  return false;
}
