/**
 * IIS's FastCgiModule: requests mapped to it (`modules="FastCgiModule"`) are answered by a
 * FastCGI application — PHP's php-cgi processes started and kept by this worker from
 * `system.webServer/fastCgi`, or a FastCGI server at an address (php-fpm) — as IIS runs PHP.
 *
 *     <fastCgi><application fullPath="/usr/bin/php-cgi" /></fastCgi>
 *     <handlers><add name="PHP" path="*.php" verb="GET,HEAD,POST" modules="FastCgiModule"
 *                    scriptProcessor="/usr/bin/php-cgi" resourceType="Either" /></handlers>
 *
 * See docs/configuration.md, "PHP and FastCGI", for what each setting does on Linux.
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, ModuleDefinition, WorkerServices } from '../../worker/module-api.js';
import { cgiVariableList } from '../cgi/environment.js';
import { FastCgiApplication, sweepStaleSocketFolders } from './application.js';
import { exchange, NO_BODY, spooledBody, streamedBody, type BodySource } from './exchange.js';
import { encodePairs } from './records.js';
import { lookupApplication, type SettingsLookup } from './settings.js';

let services: WorkerServices | undefined;
/** This worker's FastCGI applications by `fullPath|arguments` (or address). */
const applications = new Map<string, FastCgiApplication>();
/** Lookups per fastCgi section object and scriptProcessor: config objects are replaced on reload. */
const lookups = new WeakMap<ConfigElement, Map<string, SettingsLookup>>();
const rewriteLoaded = new WeakMap<ConfigElement, boolean>();

export const FastCgiModule: ModuleDefinition = {
  name: 'FastCgiModule',
  executeHandler: serve,
  attach(worker) {
    services = worker;
    // The processes are this worker's: they end with it, however it ends.
    process.on('exit', () => {
      for (const app of applications.values()) app.close(true);
    });
  },
};

/** The running applications (tests and diagnostics). */
export function fastCgiApplications(): ReadonlyMap<string, FastCgiApplication> {
  return applications;
}

function lookup(ctx: HttpContext, scriptProcessor: string): SettingsLookup {
  const section = ctx.config.section('system.webServer/fastCgi');
  let perSection = lookups.get(section);
  if (perSection === undefined) lookups.set(section, (perSection = new Map()));
  let found = perSection.get(scriptProcessor);
  if (found === undefined) {
    found = lookupApplication(section, scriptProcessor, services?.systemDrive() ?? '/');
    perSection.set(scriptProcessor, found);
  }
  return found;
}

let swept = false;

function applicationFor(ctx: HttpContext): FastCgiApplication | string {
  const handler = ctx.handler!;
  const found = lookup(ctx, handler.scriptProcessor);
  const settings = found.settings;
  if (settings === undefined) return found.error ?? 'no FastCGI application';
  let app = applications.get(settings.key);
  if (app !== undefined && app.settings.signature !== settings.signature) {
    // The configuration changed: the old processes finish what they serve and end.
    app.close(false);
    app = undefined;
  }
  if (app === undefined) {
    if (!swept) {
      swept = true;
      sweepStaleSocketFolders();
    }
    app = new FastCgiApplication(settings, { log: (level, message) => (services ? services.log(level, message) : ctx.log(level, message)) });
    applications.set(settings.key, app);
  }
  return app;
}

function urlRewriteLoaded(ctx: HttpContext): boolean {
  const modules = ctx.config.section('system.webServer/modules');
  let loaded = rewriteLoaded.get(modules);
  if (loaded === undefined) {
    loaded = modules.items.some((m) => m.str('name') === 'RewriteModule');
    rewriteLoaded.set(modules, loaded);
  }
  return loaded;
}

async function serve(ctx: HttpContext): Promise<void> {
  const app = applicationFor(ctx);
  if (typeof app === 'string') {
    ctx.setStatus(500, 0, { description: `Handler "${ctx.handler!.name}": ${app}.`, hresult: 0x80070585 });
    ctx.finish();
    return;
  }
  if (app.settings.address === undefined) {
    // The script must be a file here: PHP would otherwise (cgi.fix_pathinfo) walk up the path
    // and run whatever file it finds, an uploaded image in /uploads/cat.jpg/x.php included.
    // (A FastCGI server by address may see another file system: it decides for itself.)
    const cached = ctx.statCached(ctx.physicalPath);
    const info = cached === undefined ? await ctx.stat(ctx.physicalPath) : cached;
    if (info === null || info === undefined || !info.isFile) {
      ctx.setStatus(404, 0, { description: `The script ${ctx.scriptPath} does not exist.`, hresult: 0x80070002 });
      ctx.finish();
      return;
    }
  }
  const req = ctx.request;
  let body: BodySource = NO_BODY;
  if (req.contentLength > 0) body = streamedBody(ctx);
  else if (req.contentLength < 0 && req.hasBody) body = await spooledBody(ctx);
  try {
    const vars = cgiVariableList(ctx, { contentLength: body.length, urlRewrite: urlRewriteLoaded(ctx) });
    const params = encodePairs(vars.variables, vars.headersFrom);
    await exchange(ctx, { app, params, body });
  } finally {
    await body.dispose();
  }
  ctx.finish();
}
