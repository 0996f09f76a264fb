/**
 * URL Rewrite's inbound rules compiled once per effective `<rules>` / `<globalRules>` element:
 * patterns (ECMAScript, Wildcard, ExactMatch), conditions, `{…}` substitutions (server
 * variables, back-references, functions, rewrite maps) and actions, as reference §2.1 describes
 * them. Evaluation is in ./index.ts; everything here is pure.
 */
import type { ConfigElement, ResolvedConfig } from '../../config/types.js';

export type Syntax = 'ECMAScript' | 'Wildcard' | 'ExactMatch';

/** A compiled `match url` or condition `pattern`: the captures ({R:0}…) or null. */
export type Matcher = (input: string) => readonly string[] | null;

export class RuleError extends Error {}

/** Compile a pattern the way URL Rewrite reads it for `syntax`. */
export function compilePattern(pattern: string, syntax: Syntax, ignoreCase: boolean): Matcher {
  if (syntax === 'ExactMatch') {
    if (!ignoreCase) return (input) => (input === pattern ? [input] : null);
    const lower = pattern.toLowerCase();
    return (input) => (input.toLowerCase() === lower ? [input] : null);
  }
  let source = pattern;
  if (syntax === 'Wildcard') {
    // `*` matches any run of characters and is captured ({R:1}…); `?` one character; the
    // whole input must match.
    source = '^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '(.*)').replace(/\?/g, '.') + '$';
  }
  let re: RegExp;
  try {
    re = new RegExp(source, ignoreCase ? 'i' : '');
  } catch (err) {
    throw new RuleError(`the pattern "${pattern}" is not a valid ${syntax} pattern: ${(err as Error).message}`);
  }
  return (input) => {
    const m = re.exec(input);
    return m === null ? null : m.map((g) => g ?? '');
  };
}

// ---- substitutions: `{HTTP_HOST}`, `{R:1}`, `{C:2}`, `{ToLower:{R:1}}`, `{MapName:{HTTPS}}` ----------

export type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'rule'; readonly n: number }
  | { readonly kind: 'condition'; readonly n: number }
  | { readonly kind: 'variable'; readonly name: string }
  | { readonly kind: 'function'; readonly name: 'tolower' | 'urlencode' | 'urldecode' | 'escapedatastring'; readonly arg: readonly Part[] }
  | { readonly kind: 'map'; readonly map: RewriteMap; readonly arg: readonly Part[] };

export interface RewriteMap {
  readonly name: string;
  readonly defaultValue: string;
  readonly ignoreCase: boolean;
  readonly entries: ReadonlyMap<string, string>;
}

const FUNCTIONS = new Set(['tolower', 'urlencode', 'urldecode', 'escapedatastring']);

/** Parse a substitution string into parts; `{` without its `}` is an error, as in IIS. */
export function parseTemplate(text: string, maps: ReadonlyMap<string, RewriteMap>): readonly Part[] {
  const parts: Part[] = [];
  let i = 0;
  let literal = '';
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '{') {
      literal += c;
      i++;
      continue;
    }
    let depth = 0;
    let j = i;
    for (; j < text.length; j++) {
      if (text[j] === '{') depth++;
      else if (text[j] === '}' && --depth === 0) break;
    }
    if (j >= text.length) throw new RuleError(`"${text}" has a "{" without its "}"`);
    if (literal !== '') parts.push({ kind: 'text', text: literal });
    literal = '';
    parts.push(parseReference(text.slice(i + 1, j), text, maps));
    i = j + 1;
  }
  if (literal !== '') parts.push({ kind: 'text', text: literal });
  return parts;
}

function parseReference(inner: string, whole: string, maps: ReadonlyMap<string, RewriteMap>): Part {
  const colon = inner.indexOf(':');
  if (colon === -1) {
    if (!/^[A-Za-z0-9_-]+$/.test(inner)) throw new RuleError(`"{${inner}}" in "${whole}" is not a server variable name`);
    return { kind: 'variable', name: inner.toUpperCase() };
  }
  const head = inner.slice(0, colon);
  const rest = inner.slice(colon + 1);
  if ((head === 'R' || head === 'C') && /^\d$/.test(rest)) return { kind: head === 'R' ? 'rule' : 'condition', n: Number(rest) };
  const lower = head.toLowerCase();
  if (FUNCTIONS.has(lower)) return { kind: 'function', name: lower as 'tolower', arg: parseTemplate(rest, maps) };
  const map = maps.get(lower);
  if (map !== undefined) return { kind: 'map', map, arg: parseTemplate(rest, maps) };
  throw new RuleError(`"{${inner}}" in "${whole}" names no rewrite map or function "${head}"`);
}

export interface Captures {
  readonly rule: readonly string[];
  readonly condition: readonly string[];
}

export function expand(parts: readonly Part[], captures: Captures, variable: (name: string) => string): string {
  if (parts.length === 1 && parts[0]!.kind === 'text') return parts[0]!.text;
  let out = '';
  for (const p of parts) {
    switch (p.kind) {
      case 'text':
        out += p.text;
        break;
      case 'rule':
        out += captures.rule[p.n] ?? '';
        break;
      case 'condition':
        out += captures.condition[p.n] ?? '';
        break;
      case 'variable':
        out += variable(p.name);
        break;
      case 'function': {
        const v = expand(p.arg, captures, variable);
        out += applyFunction(p.name, v);
        break;
      }
      case 'map': {
        const key = expand(p.arg, captures, variable);
        const m = p.map;
        out += m.entries.get(m.ignoreCase ? key.toLowerCase() : key) ?? m.defaultValue;
        break;
      }
    }
  }
  return out;
}

function applyFunction(name: string, v: string): string {
  if (name === 'tolower') return v.toLowerCase();
  if (name === 'urldecode') {
    try {
      return decodeURIComponent(v.replace(/\+/g, ' '));
    } catch {
      return v;
    }
  }
  // UrlEncode and EscapeDataString: RFC 3986 unreserved characters stay, the rest is encoded.
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// ---- rules -----------------------------------------------------------------------------------------

export interface Condition {
  readonly input: readonly Part[];
  readonly matchType: 'Pattern' | 'IsFile' | 'IsDirectory';
  readonly matcher: Matcher | undefined;
  readonly negate: boolean;
}

export type Action =
  | { readonly type: 'None' }
  | { readonly type: 'Rewrite'; readonly url: readonly Part[]; readonly appendQueryString: boolean; readonly logRewrittenUrl: boolean }
  | { readonly type: 'Redirect'; readonly url: readonly Part[]; readonly appendQueryString: boolean; readonly status: number }
  | {
      readonly type: 'CustomResponse';
      readonly status: number;
      readonly subStatus: number;
      readonly reason: readonly Part[];
      readonly description: readonly Part[];
    }
  | { readonly type: 'AbortRequest' };

export interface Rule {
  readonly name: string;
  /** Where the rule was written (for messages). */
  readonly where: string;
  /** URL folder the rule's web.config is in, ending in '/': its pattern sees the URL below it. */
  readonly base: string;
  readonly stopProcessing: boolean;
  readonly match: Matcher;
  readonly negate: boolean;
  readonly matchAny: boolean;
  readonly trackAllCaptures: boolean;
  readonly conditions: readonly Condition[];
  readonly serverVariables: readonly { readonly name: string; readonly value: readonly Part[]; readonly replace: boolean }[];
  readonly action: Action;
  /**
   * Whether the rule's conditions, and what it does when they hold, follow from the listener
   * cache's key (site, host, path, query) and from files alone: then a response it led to may
   * still be kernel-cached under the client's URL.
   */
  readonly conditionsCacheSafe: boolean;
  readonly effectCacheSafe: boolean;
}

/** Server variables that are functions of the kernel cache key (site, Host, path, query) and files. */
const KEYED_VARIABLES: ReadonlySet<string> = new Set([
  'URL', 'REQUEST_URI', 'REQUEST_FILENAME', 'QUERY_STRING', 'PATH_INFO', 'SCRIPT_NAME', 'PATH_TRANSLATED',
  'APPL_PHYSICAL_PATH', 'APPL_MD_PATH', 'HTTP_HOST', 'SERVER_NAME', 'INSTANCE_ID', 'INSTANCE_NAME', 'APP_POOL_ID',
]);

function keyedOnly(parts: readonly Part[]): boolean {
  for (const p of parts) {
    if (p.kind === 'variable' && !KEYED_VARIABLES.has(p.name)) return false;
    if ((p.kind === 'function' || p.kind === 'map') && !keyedOnly(p.arg)) return false;
  }
  return true;
}

/** A rule list that failed to compile: every request it applies to answers 500.50 / 500.51. */
export interface BrokenRules {
  readonly error: string;
}

export function compileMaps(section: ConfigElement): ReadonlyMap<string, RewriteMap> {
  const maps = new Map<string, RewriteMap>();
  for (const item of section.items) {
    const ignoreCase = item.bool('ignoreCase');
    const entries = new Map<string, string>();
    for (const e of item.items) entries.set(ignoreCase ? e.str('key').toLowerCase() : e.str('key'), e.str('value'));
    maps.set(item.str('name').toLowerCase(), { name: item.str('name'), defaultValue: item.str('defaultValue'), ignoreCase, entries });
  }
  return maps;
}

/**
 * The URL folder of the web.config a rule was written in ('/content/'); rules from
 * applicationHost.config apply from the site root.
 */
function ruleBase(item: ConfigElement, config: ResolvedConfig): string {
  const file = item.source?.file;
  if (file !== undefined) {
    const i = config.configFiles.indexOf(file);
    if (i !== -1) {
      const url = config.configFileUrls[i]!;
      return url.endsWith('/') ? url : url + '/';
    }
  }
  return '/';
}

export function compileRules(
  section: ConfigElement,
  config: ResolvedConfig,
  maps: ReadonlyMap<string, RewriteMap>,
  kind: 'global' | 'distributed' = 'distributed',
): readonly Rule[] | BrokenRules {
  const rules: Rule[] = [];
  for (const item of section.items) {
    if (!item.bool('enabled')) continue;
    const name = item.str('name');
    const where = item.source !== undefined ? `${item.source.file}:${item.source.line}` : 'configuration';
    try {
      rules.push(compileRule(item, name, where, kind === 'global' ? '/' : ruleBase(item, config), maps, kind));
    } catch (err) {
      if (err instanceof RuleError) return { error: `rule "${name}" (${where}): ${err.message}` };
      throw err;
    }
  }
  return rules;
}

function compileRule(item: ConfigElement, name: string, where: string, base: string, maps: ReadonlyMap<string, RewriteMap>, kind: 'global' | 'distributed'): Rule {
  const syntax = item.enumName('patternSyntax') as Syntax;
  const match = item.child('match');
  // A rule without a url pattern applies to every URL (Azure's iisnode template has one).
  const url = match.str('url');
  const matcher: Matcher = url === '' ? (input) => [input] : compilePattern(url, syntax, match.bool('ignoreCase'));
  const conditionsEl = item.child('conditions');
  const conditions: Condition[] = conditionsEl.items.map((c) => {
    const matchType = c.enumName('matchType') as Condition['matchType'];
    const input = c.str('input');
    if (matchType === 'Pattern' && input === '') throw new RuleError('a condition has no input');
    return {
      // IsFile / IsDirectory without an input test the request's physical path.
      input: parseTemplate(input === '' ? '{REQUEST_FILENAME}' : input, maps),
      matchType,
      matcher: matchType === 'Pattern' ? compilePattern(c.str('pattern'), syntax, c.bool('ignoreCase')) : undefined,
      negate: c.bool('negate'),
    };
  });
  const serverVariables = item.child('serverVariables').items.map((v) => ({
    name: v.str('name').toUpperCase(),
    value: parseTemplate(v.str('value'), maps),
    replace: v.bool('replace'),
  }));
  const action = compileAction(item.child('action'), maps, kind);
  return {
    name,
    where,
    base,
    conditionsCacheSafe: conditions.every((c) => keyedOnly(c.input)),
    effectCacheSafe: serverVariables.length === 0 && (action.type === 'None' || (action.type === 'Rewrite' && keyedOnly(action.url))),
    stopProcessing: item.bool('stopProcessing'),
    match: matcher,
    negate: match.bool('negate'),
    matchAny: conditionsEl.enumName('logicalGrouping') === 'MatchAny',
    trackAllCaptures: conditionsEl.bool('trackAllCaptures'),
    conditions,
    serverVariables,
    action,
  };
}

function compileAction(a: ConfigElement, maps: ReadonlyMap<string, RewriteMap>, kind: 'global' | 'distributed'): Action {
  const type = a.enumName('type');
  switch (type) {
    case 'Rewrite':
    case 'Redirect': {
      const url = a.str('url');
      if (url === '') throw new RuleError(`its ${type} action has no url`);
      const parts = parseTemplate(url, maps);
      if (type === 'Rewrite') {
        // Global rules have no logRewrittenUrl (rewrite_schema.xml): their rewrites are not logged.
        return { type, url: parts, appendQueryString: a.bool('appendQueryString'), logRewrittenUrl: kind === 'distributed' && a.bool('logRewrittenUrl') };
      }
      return { type, url: parts, appendQueryString: a.bool('appendQueryString'), status: a.num('redirectType') };
    }
    case 'CustomResponse': {
      const status = a.isSet('statusCode') ? a.num('statusCode') : 0;
      if (status < 100 || status > 999) throw new RuleError('its CustomResponse action has no valid statusCode');
      return {
        type,
        status,
        subStatus: a.num('subStatusCode'),
        reason: parseTemplate(a.str('statusReason'), maps),
        description: parseTemplate(a.str('statusDescription'), maps),
      };
    }
    case 'AbortRequest':
      return { type };
    default:
      return { type: 'None' };
  }
}
