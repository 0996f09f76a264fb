/**
 * ServerSideIncludeModule (IIS iis_ssi.dll): the handler of the SSINC-stm, SSINC-shtm and
 * SSINC-shtml mappings. It reads the page, runs its `#include`, `#echo`, `#fsize`, `#flastmod`,
 * `#config` and `#exec` directives (ssi-processor.ts) and streams the result. The response is
 * dynamic, as IIS makes it: no validators, no 304, never kernel-cached. `serverSideInclude
 * ssiExecDisable` is read for each request; `#exec cmd` also needs SSIEnableCmdDirective
 * (w3svc-parameters.ts).
 */
import { dirname } from 'node:path';
import type { HttpContext, HttpResponse, ModuleDefinition } from '../../worker/module-api.js';
import { mimeMapFor, mimeTypeOf, STATIC_CONTENT_SECTION } from '../static-file/index.js';
import { statusText } from '../sub-status.js';
import { containedPath, readDocument, SsiBudget, SsiRun, SSI_LIMITS } from './ssi-processor.js';
import { parseW3svcParameters, W3SVC_PARAMETERS_ENV, type W3svcParameters } from './w3svc-parameters.js';

export { SERVER_SIDE_INCLUDE_SECTION, SSI_LIMITS } from './ssi-processor.js';
export { W3SVC_PARAMETERS_ENV, parseW3svcParameters } from './w3svc-parameters.js';

/**
 * The budget of the page a response is being made for. A page's `#exec cgi` runs a child request
 * that writes into the same response: an SSI page there finds its parent's budget, so limits,
 * depth and cycles count across both.
 */
const budgets = new WeakMap<HttpResponse, SsiBudget>();

/** Read from the worker's environment once, at the first SSI request (problems logged then). */
let w3svc: W3svcParameters | undefined;

function parameters(ctx: HttpContext): W3svcParameters {
  if (w3svc === undefined) {
    w3svc = parseW3svcParameters(process.env[W3SVC_PARAMETERS_ENV]);
    for (const p of w3svc.problems) ctx.log('error', p);
  }
  return w3svc;
}

// HRESULTs and Win32 codes IIS shows and logs with these statuses (as StaticFileModule).
const E_FILE_NOT_FOUND = 0x80070002;
const E_ACCESS_DENIED = 0x80070005;

function fail(ctx: HttpContext, status: number, sub: number, hresult: number, win32: number, description?: string): void {
  ctx.setStatus(status, sub, { module: 'ServerSideIncludeModule', hresult, description: description ?? statusText(status, sub).description });
  if (win32 !== 0) ctx.response.win32Status = win32;
  ctx.finish();
}

async function executeHandler(ctx: HttpContext): Promise<void> {
  const res = ctx.response;
  const outer = budgets.get(res);
  const path = ctx.physicalPath;
  const root = ctx.config.virtualDirectory.physicalPath;
  // The page itself stays inside its virtual directory, as a static file does.
  const where = await containedPath(path, root);
  if ('problem' in where) {
    if (where.problem === 'denied') return fail(ctx, 401, 3, E_ACCESS_DENIED, 5);
    return fail(ctx, 404, 0, E_FILE_NOT_FOUND, 2);
  }
  const doc = await readDocument(where.real, SSI_LIMITS.maxDocumentBytes);
  if ('problem' in doc) {
    if (doc.problem === 'denied') return fail(ctx, 401, 3, E_ACCESS_DENIED, 5);
    if (doc.problem === 'too-large') {
      return fail(ctx, 500, 0, 0x80004005, 0, `The page is larger than ${SSI_LIMITS.maxDocumentBytes} bytes, the most ServerSideIncludeModule processes.`);
    }
    return fail(ctx, 404, 0, E_FILE_NOT_FOUND, 2);
  }
  const budget = outer ?? new SsiBudget();
  if (outer === undefined) {
    // IIS's MIME map has no .shtml, .shtm or .stm entry: an SSI page is HTML unless one is added.
    res.setHeader('Content-Type', mimeTypeOf(mimeMapFor(ctx.config.section(STATIC_CONTENT_SECTION)), path) ?? 'text/html');
    // Made per request: never kept by the kernel cache, and no validators, so no 304.
    res.kernelCache.disable();
    budgets.set(res, budget);
  }
  const run = new SsiRun(ctx, budget, { cmdEnabled: parameters(ctx).ssiEnableCmdDirective, mtimeMs: doc.mtimeMs });
  res.onClientAbort(() => run.stop());
  try {
    await run.run({ realPath: where.real, url: ctx.scriptPath, dir: dirname(path), root }, doc.bytes, path);
  } finally {
    if (outer === undefined) budgets.delete(res);
  }
  ctx.finish();
}

export const ServerSideIncludeModule: ModuleDefinition = {
  name: 'ServerSideIncludeModule',
  executeHandler,
};
