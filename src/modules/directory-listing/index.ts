/**
 * DirectoryListingModule (IIS dirlist): answers folder URLs that no default document served —
 * an IIS-style listing when directoryBrowse is enabled, else 403.14.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { redirectToSlash } from '../default-document/index.js';
import { sendBody } from '../html-response.js';
import { requestFilterFor } from '../request-filtering/index.js';
import { statusText } from '../sub-status.js';
import { renderListing, sortEntries, type ListingEntry } from './listing-page.js';
import { forDirectories } from '../directory-handler.js';

export { renderListing } from './listing-page.js';
export type { ListingEntry, ListingOptions } from './listing-page.js';

export const DIRECTORY_BROWSE_SECTION = 'system.webServer/directoryBrowse';

function fail(ctx: HttpContext, status: number, sub: number, hresult = 0): void {
  ctx.setStatus(status, sub, {
    module: 'DirectoryListingModule',
    notification: ctx.notification,
    hresult,
    description: statusText(status, sub).description,
  });
  ctx.finish();
}

/** The Host header without its port (IIS shows the server name). */
function hostName(ctx: HttpContext): string {
  const host = ctx.request.headers['host'] ?? ctx.request.localAddress;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close < 0 ? host : host.slice(0, close + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

async function readEntries(folder: string, hidden: ReadonlySet<string>): Promise<ListingEntry[]> {
  const names = await readdir(folder);
  const entries = await Promise.all(
    names.map(async (name): Promise<ListingEntry | undefined> => {
      // Hidden segments (web.config, bin…) would only answer 404.8: do not offer them.
      if (hidden.has(name.toLowerCase())) return undefined;
      try {
        // stat, not lstat: a link is listed as what it points to; broken links are left out.
        const s = await stat(join(folder, name));
        return { name, isDirectory: s.isDirectory(), size: s.size, mtimeMs: s.mtimeMs };
      } catch {
        return undefined;
      }
    }),
  );
  return sortEntries(entries.filter((e): e is ListingEntry => e !== undefined));
}

/** Runs only for URLs that map to a directory (see forDirectories). */
async function forDirectory(ctx: HttpContext): Promise<void> {
  // Normally DefaultDocumentModule has redirected already; needed when it is not in the handler.
  if (!ctx.request.path.endsWith('/')) return redirectToSlash(ctx);

  const section = ctx.config.section(DIRECTORY_BROWSE_SECTION);
  if (!section.bool('enabled')) return fail(ctx, 403, 14);
  const method = ctx.request.method;
  if (method !== 'GET' && method !== 'HEAD') {
    fail(ctx, 405, 0, 0x80070001);
    ctx.response.setHeader('Allow', 'GET, HEAD, OPTIONS, TRACE');
    return;
  }

  const entries = await readEntries(ctx.physicalPath, requestFilterFor(ctx).hiddenSegments);
  const html = renderListing(entries, { host: hostName(ctx), path: ctx.request.path, flags: section.flagNames('showFlags') });
  ctx.response.statusCode = 200;
  sendBody(ctx, Buffer.from(html, 'utf8'), 'text/html; charset=utf-8');
  ctx.finish();
}

export const DirectoryListingModule: ModuleDefinition = {
  name: 'DirectoryListingModule',
  executeHandler: forDirectories(forDirectory),
};
