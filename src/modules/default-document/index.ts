/**
 * DefaultDocumentModule (IIS defdoc): for a folder URL without its trailing slash, the courtesy
 * 301 to the same URL plus '/'; with the slash, the first file of defaultDocument/files that exists
 * is executed as a child request (so index.php still reaches its own handler). Finding none, it
 * leaves the request to the next module (DirectoryListingModule → listing or 403.14).
 */
import { join } from 'node:path';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { encodeUrlPath, redirect } from '../html-response.js';
import { forDirectories } from '../directory-handler.js';

export const DEFAULT_DOCUMENT_SECTION = 'system.webServer/defaultDocument';

/**
 * The courtesy redirect of a folder URL that lacks its trailing slash: 301, Location in
 * absolute-path form with the query string kept. Shared with DirectoryListingModule.
 */
export function redirectToSlash(ctx: HttpContext): void {
  const q = ctx.request.queryString;
  redirect(ctx, 301, encodeUrlPath(ctx.request.path) + '/' + (q === '' ? '' : '?' + q));
  ctx.finish();
}

/** Runs only for URLs that map to a directory (see forDirectories). */
async function forDirectory(ctx: HttpContext): Promise<void> {
  const path = ctx.request.path;
  if (!path.endsWith('/')) return redirectToSlash(ctx);

  const section = ctx.config.section(DEFAULT_DOCUMENT_SECTION);
  if (!section.bool('enabled')) return;
  for (const item of section.child('files').items) {
    const name = item.str('value');
    // File names are matched as written: the Linux file system is case-sensitive, IIS's is not.
    const candidate = await ctx.stat(join(ctx.physicalPath, name));
    if (candidate === undefined || !candidate.isFile) continue;
    const q = ctx.request.queryString;
    await ctx.executeChildRequest(encodeUrlPath(path + name) + (q === '' ? '' : '?' + q));
    ctx.finish();
    return;
  }
}

export const DefaultDocumentModule: ModuleDefinition = {
  name: 'DefaultDocumentModule',
  executeHandler: forDirectories(forDirectory),
};
