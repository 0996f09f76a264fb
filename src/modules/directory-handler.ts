/**
 * For handler modules that only act on folders (DefaultDocumentModule, DirectoryListingModule):
 * requests for files — nearly all — leave at once and, when the worker's stat is cached, without
 * creating a promise; `handler` runs only when the URL maps to a directory.
 */
import type { HttpContext } from '../worker/module-api.js';

export function forDirectories(handler: (ctx: HttpContext) => Promise<void>): (ctx: HttpContext) => void | Promise<void> {
  const slow = async (ctx: HttpContext): Promise<void> => {
    const info = await ctx.stat(ctx.physicalPath);
    if (info !== undefined && info.isDirectory) await handler(ctx);
  };
  return (ctx) => {
    const cached = ctx.statCached(ctx.physicalPath);
    if (cached === null || (cached !== undefined && !cached.isDirectory)) return;
    return cached === undefined ? slow(ctx) : handler(ctx);
  };
}
