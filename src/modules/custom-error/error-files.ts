/**
 * The bytes of error pages: files named by httpErrors (re-read only when they change), and Wharf's
 * built-in pages (assets/custerr/en-US/<status>.htm, or a generated page for other statuses).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpContext } from '../../worker/module-api.js';
import { escapeHtml } from '../html-response.js';
import { statusText } from '../sub-status.js';

/**
 * Where the shipped pages live: `<package>/assets/custerr` (the folder `%IIS_BIN%\custerr` maps
 * to). This file runs from `<package>/dist/src/modules/custom-error/`.
 */
export const BUILTIN_CUSTERR_DIR = fileURLToPath(new URL('../../../../assets/custerr/', import.meta.url));

/** The language folder used under prefixLanguageFilePath. */
export const ERROR_LANGUAGE = 'en-US';

/** Statuses with a page of their own in assets/custerr/en-US (the list IIS ships). */
const SHIPPED = new Set([401, 403, 404, 405, 406, 412, 500, 501, 502]);

const builtin = new Map<number, Promise<Buffer>>();

/** A page in the style of the shipped ones for a status that has no file. */
export function genericErrorPage(status: number): string {
  const t = statusText(status, 0);
  const title = escapeHtml(`${status} - ${t.reason}.`);
  return (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<title>${title}</title>\n` +
    '<style>body{margin:0;font:0.8em Verdana,Arial,Helvetica,sans-serif;background:#eee}' +
    'header{background:#555;color:#fff;padding:6px 2%}header h1{margin:0;font:1.7em "Trebuchet MS",Verdana,sans-serif}' +
    'main{margin:0 2%}section{background:#fff;border:1px solid #ccc;margin:12px 0;padding:4px 14px 12px}' +
    'h2{font-size:1.7em;color:#c00}h3{font-size:1.2em;color:#000}</style>\n</head>\n<body>\n' +
    '<header><h1>Server Error</h1></header>\n<main>\n<section>\n' +
    `<h2>${title}</h2>\n<h3>${escapeHtml(t.description)}</h3>\n` +
    '</section>\n</main>\n</body>\n</html>\n'
  );
}

async function loadBuiltin(status: number): Promise<Buffer> {
  if (SHIPPED.has(status)) {
    try {
      return await readFile(join(BUILTIN_CUSTERR_DIR, ERROR_LANGUAGE, `${status}.htm`));
    } catch {
      // Package installed without its assets: fall back to the generated page.
    }
  }
  return Buffer.from(genericErrorPage(status), 'utf8');
}

/**
 * Wharf's bundled pages, read while the worker still runs as the user who installed Wharf: a
 * pool's own user may not be able to read the package folder (a checkout under /root), and these
 * files never change while Wharf runs. Keyed by absolute path, so `%IIS_BIN%\custerr` paths in
 * httpErrors are served from here too.
 */
const bundled = new Map<string, Buffer>();

export function preloadBuiltinErrorPages(): void {
  const dir = join(BUILTIN_CUSTERR_DIR, ERROR_LANGUAGE);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // package installed without its assets: generated pages are used
  }
  for (const name of names) {
    try {
      const body = readFileSync(join(dir, name));
      bundled.set(join(dir, name), body);
      const status = Number(/^(\d{3})\.htm$/.exec(name)?.[1]);
      if (SHIPPED.has(status)) builtin.set(status, Promise.resolve(body));
    } catch {
      // unreadable: loaded on demand, or generated
    }
  }
}

/** Wharf's own page for a status (read once per worker). */
export function builtinErrorPage(status: number): Promise<Buffer> {
  let page = builtin.get(status);
  if (page === undefined) {
    page = loadBuiltin(status);
    builtin.set(status, page);
  }
  return page;
}

interface CachedPage {
  readonly mtimeMs: number;
  readonly size: number;
  readonly body: Buffer;
}

/** Error pages are served to every scanner's 404: keep them in memory, revalidated by ctx.stat. */
const files = new Map<string, CachedPage>();
const MAX_FILES = 256;

/** A configured error file's bytes, or undefined when it is missing or unreadable. */
export async function readErrorFile(ctx: HttpContext, path: string): Promise<Buffer | undefined> {
  const shipped = bundled.get(path);
  if (shipped !== undefined) return shipped;
  const info = await ctx.stat(path);
  if (info === undefined || !info.isFile) return undefined;
  const hit = files.get(path);
  if (hit !== undefined && hit.mtimeMs === info.mtimeMs && hit.size === info.size) return hit.body;
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    return undefined;
  }
  if (files.size >= MAX_FILES) files.clear();
  files.set(path, { mtimeMs: info.mtimeMs, size: info.size, body });
  return body;
}

const warned = new Set<string>();

/** Log a missing error file once per worker and path, not once per request. */
export function warnMissingOnce(ctx: HttpContext, path: string): void {
  if (warned.has(path)) return;
  warned.add(path);
  ctx.log('warn', `error page file ${path} does not exist or cannot be read; sending the built-in page`);
}
