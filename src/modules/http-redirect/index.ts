/**
 * HttpRedirectionModule (IIS redirect.dll): system.webServer/httpRedirect. In MapRequestHandler —
 * after URL Rewrite, before the core looks for a file, so every URL of a removed folder is
 * redirected — a request below the folder the section is written for is answered with
 * `httpResponseStatus` (301, 302, 307, 308), a Location and IIS's "Document Moved" body.
 *
 * The Location is `destination` with its redirect variables expanded (IIS 6's redirect reference,
 * which IIS 7+ kept): `$S` the URL path below that folder, `$V` the whole URL path, `$Q` the
 * query string with its `?`, `$P` without it, `$0`…`$9` what the `*`s of a matching wildcard
 * entry took. Unless `exactDestination` is true, the path below the folder is appended. With an
 * empty `destination`, the first `<add wildcard destination>` entry whose wildcard matches the
 * path below the folder is used. `childOnly` redirects only the folder itself and what is directly
 * in it (IIS Manager: "Only redirect requests to content in this directory (not subdirectories)"),
 * which keeps a destination below the folder from redirecting again.
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { encodeUrlPath, redirect } from '../html-response.js';

export const HTTP_REDIRECT_SECTION = 'system.webServer/httpRedirect';

/** httpResponseStatus names (IIS 10 added PermRedirect, 308). */
const STATUS: Readonly<Record<string, number>> = { Permanent: 301, Found: 302, Temporary: 307, PermRedirect: 308 };

interface WildcardEntry {
  readonly pattern: RegExp;
  /** A wildcard written with a leading '/' matches the path below the folder with its '/'. */
  readonly rooted: boolean;
  readonly destination: string;
}

/** Wildcard entries compiled once per effective section element. */
const compiled = new WeakMap<ConfigElement, readonly WildcardEntry[]>();

/**
 * `*` takes any run of characters ('/' included), everything else is literal, case-insensitive
 * as IIS URLs are. Each `*` is a capture ($0 for the first).
 */
export function wildcardPattern(wildcard: string): RegExp {
  const body = wildcard
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('(.*?)');
  return new RegExp(`^${body}$`, 'is');
}

function wildcardsOf(section: ConfigElement): readonly WildcardEntry[] {
  let list = compiled.get(section);
  if (list === undefined) {
    list = section.items.map((item) => {
      const wildcard = item.str('wildcard');
      return { pattern: wildcardPattern(wildcard), rooted: wildcard.startsWith('/'), destination: item.str('destination') };
    });
    compiled.set(section, list);
  }
  return list;
}

/** What the Location is built from (all URL parts encoded). */
export interface RedirectInput {
  /** The URL path being served (decoded, canonical), after any rewrite. */
  readonly path: string;
  /** Query string without '?' (encoded). */
  readonly query: string;
  /** URL path of the folder (or file) the section is written for (ResolvedConfig.sectionScope). */
  readonly scope: string;
}

/** Expand $S $P $Q $V $0…$9 in a destination; other `$` text stays as written. */
export function expandDestination(destination: string, vars: { S: string; P: string; Q: string; V: string }, captures: readonly string[]): string {
  return destination.replace(/\$([SPQV0-9])/g, (_whole, name: string) => {
    if (name >= '0' && name <= '9') return captures[Number(name)] ?? '';
    return vars[name as 'S' | 'P' | 'Q' | 'V'];
  });
}

/**
 * The Location for a request, or undefined when the section does not redirect it (outside the
 * folder, a subfolder under childOnly, no destination and no matching wildcard).
 */
export function redirectLocation(section: ConfigElement, input: RedirectInput): string | undefined {
  const { path, query, scope } = input;
  let below: string;
  if (scope === '/') below = path;
  else {
    const lower = path.toLowerCase();
    const scopeLower = scope.toLowerCase();
    if (lower !== scopeLower && !lower.startsWith(scopeLower + '/')) return undefined;
    below = path.slice(scope.length);
  }
  const rest = below.startsWith('/') ? below.slice(1) : below;
  if (section.bool('childOnly') && rest.includes('/')) return undefined;
  const suffix = encodeUrlPath(below);
  let destination = section.str('destination');
  let captures: readonly string[] = [];
  if (destination === '') {
    // IIS uses the wildcard entries only while destination is empty.
    let hit: WildcardEntry | undefined;
    let m: RegExpExecArray | null = null;
    for (const w of wildcardsOf(section)) {
      m = w.pattern.exec(w.rooted ? below : rest);
      if (m !== null) {
        hit = w;
        break;
      }
    }
    if (hit === undefined || m === null) return undefined;
    destination = hit.destination;
    captures = m.slice(1).map((c) => encodeUrlPath(c ?? ''));
  }
  const expanded = expandDestination(destination, { S: suffix, P: query, Q: query === '' ? '' : '?' + query, V: encodeUrlPath(path) }, captures);
  if (section.bool('exactDestination') || suffix === '') return expanded;
  // "Append the rest of the path": one '/' between them, not two.
  return expanded.endsWith('/') && suffix.startsWith('/') ? expanded + suffix.slice(1) : expanded + suffix;
}

/** Whether `location` names the very URL being served (a redirect that would only repeat itself). */
function isSelf(ctx: HttpContext, location: string): boolean {
  const req = ctx.request;
  const here = encodeUrlPath(req.path) + (req.queryString === '' ? '' : '?' + req.queryString);
  if (location.startsWith('/') && !location.startsWith('//')) return location === here;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return false;
  }
  const host = (req.headers['host'] ?? '').toLowerCase();
  return url.host.toLowerCase() === host && url.pathname + url.search === here;
}

const warned = new Set<string>();

function handle(ctx: HttpContext): void {
  // A child request (a default document, an error page) serves content of a request that already
  // went past redirection.
  if (ctx.isChildRequest) return;
  const section = ctx.config.section(HTTP_REDIRECT_SECTION);
  if (!section.bool('enabled')) return;
  const req = ctx.request;
  const location = redirectLocation(section, { path: req.path, query: req.queryString, scope: ctx.config.sectionScope(HTTP_REDIRECT_SECTION) });
  if (location === undefined || location === '') return;
  if (isSelf(ctx, location)) {
    // IIS would send it and the client would loop until it gives up; serve the URL instead.
    const key = `${ctx.site.id}:${location}`;
    if (!warned.has(key)) {
      if (warned.size > 1000) warned.clear();
      warned.add(key);
      ctx.log('warn', `httpRedirect: ${req.path} would redirect to itself (${location}); serving it instead (set childOnly or exactDestination, or disable httpRedirect below the destination)`);
    }
    return;
  }
  redirect(ctx, STATUS[section.enumName('httpResponseStatus')] ?? 302, location);
  ctx.finish();
}

export const HttpRedirectionModule: ModuleDefinition = {
  name: 'HttpRedirectionModule',
  notifications: { MapRequestHandler: handle },
};
