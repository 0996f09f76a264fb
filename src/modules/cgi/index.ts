/**
 * CgiModule, IIS's CGI handler (cgi.dll): a request mapped to it runs a program per request, the
 * handler's `scriptProcessor` (IIS form, see command-line.ts) or the mapped file itself, as the
 * pool's identity, with the request's CGI/1.1 variables (environment.ts), and answers with what
 * the program prints (cgi-exchange.ts).
 *
 *     <add name="Perl" path="*.pl" verb="*" modules="CgiModule" scriptProcessor="/usr/bin/perl &quot;%s&quot; %s" resourceType="File" />
 *     <add name="CGI-exe" path="*.cgi" verb="*" modules="CgiModule" resourceType="File" requireAccess="Execute" />
 *
 * Before anything runs: `isapiCgiRestriction` must allow the program (else 404.2), and a file
 * that runs itself must exist (404.0) and be executable by the pool's identity (403.1, IIS's
 * "execute access forbidden", the answer IIS gives when a CGI may not be executed).
 * `system.webServer/cgi`: `timeout` is honoured (502.1); `createProcessAsUser` cannot be on Linux
 * (the worker has given up root), which is said once per worker when it would matter;
 * `createCGIWithNewConsole` has no meaning without consoles (config-warnings, schema.ts).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import type { HandlerMapping, HttpContext, ModuleDefinition, WorkerServices } from '../../worker/module-api.js';
import { cgiAllowed, compiledRestriction, CGI_RESTRICTION_SECTION } from './cgi-restriction.js';
import { commandArguments, parseScriptProcessor, programPath, restrictionKey, type CommandTemplate } from './command-line.js';
import { runCgi } from './cgi-exchange.js';

export { cgiEnvironment, cgiVariables, CGI_SERVER_SOFTWARE } from './environment.js';
export type { CgiEnvironmentOptions } from './environment.js';
export { applyCgiHead, CgiHeadError, CgiHeadParser, MAX_CGI_HEAD_BYTES } from './response-head.js';
export type { CgiHead } from './response-head.js';

export const CGI_SECTION = 'system.webServer/cgi';

let services: WorkerServices | undefined;

/** A handler's scriptProcessor, parsed and its program mapped to a Linux path, once per handler. */
interface HandlerCommand {
  readonly template: CommandTemplate | undefined;
  /** The program's Linux path (undefined: the mapped file runs itself). */
  readonly program: string | undefined;
  readonly key: string | undefined;
  /** Why the scriptProcessor cannot be used (an unclosed quote, a UNC path). */
  readonly error: string | undefined;
}
const commands = new WeakMap<HandlerMapping, HandlerCommand>();

function commandOf(h: HandlerMapping): HandlerCommand {
  let c = commands.get(h);
  if (c !== undefined) return c;
  const text = h.scriptProcessor.trim();
  if (text === '') {
    c = { template: undefined, program: undefined, key: undefined, error: undefined };
  } else {
    try {
      const template = parseScriptProcessor(text);
      const source = h.element.source;
      const program = programPath(template.program, { systemDrive: services?.systemDrive() ?? '/', baseDir: source !== undefined ? dirname(source.file) : '/' });
      c = { template, program, key: restrictionKey(program, template.args), error: undefined };
    } catch (err) {
      c = { template: undefined, program: undefined, key: undefined, error: (err as Error).message };
    }
  }
  commands.set(h, c);
  return c;
}

/** Whether <modules> has the URL Rewrite module (per effective modules element). */
const rewriteLoaded = new WeakMap<ConfigElement, boolean>();
function urlRewriteLoaded(ctx: HttpContext): boolean {
  const modules = ctx.config.section('system.webServer/modules');
  let v = rewriteLoaded.get(modules);
  if (v === undefined) rewriteLoaded.set(modules, (v = modules.items.some((m) => m.str('name') === 'RewriteModule')));
  return v;
}

/** cgi sections already warned about (createProcessAsUser), so the warning comes once. */
const warnedAsUser = new WeakSet<ConfigElement>();

/**
 * IIS starts the program with the request's user token (createProcessAsUser="true", the
 * default). A Wharf worker has given up root and cannot: the program runs as the pool's identity.
 * That matters only when the request runs as a Linux account other than the pool's, so only then
 * is it said, once per worker and configuration.
 */
function warnNotAsUser(ctx: HttpContext, cgi: ConfigElement): void {
  const id = ctx.identity;
  if (id === undefined || id.uid < 0 || id.uid === process.getuid?.() || warnedAsUser.has(cgi) || !cgi.bool('createProcessAsUser')) return;
  warnedAsUser.add(cgi);
  ctx.log(
    'warn',
    `SECURITY: ${CGI_SECTION}: createProcessAsUser="true" is not enforced: CGI programs run as the pool's identity (uid ${process.getuid?.() ?? '?'}), ` +
      `not as the request's user ("${id.name}", uid ${id.uid}); the program has the pool's file rights, not the user's (docs/configuration.md, "CGI")`,
  );
}

async function serve(ctx: HttpContext): Promise<void> {
  const h = ctx.handler!;
  const cmd = commandOf(h);
  if (cmd.error !== undefined) {
    ctx.setStatus(500, 0, { description: `Handler "${h.name}" has a scriptProcessor CgiModule cannot run: ${cmd.error}.` });
    ctx.finish();
    return;
  }
  const script = ctx.physicalPath;
  const program = cmd.program ?? script;
  const shown = cmd.program === undefined ? script : h.scriptProcessor.trim();

  const restriction = compiledRestriction(ctx.config.section(CGI_RESTRICTION_SECTION), services?.systemDrive() ?? '/');
  if (!cgiAllowed(restriction, cmd.key ?? restrictionKey(script, []))) {
    ctx.setStatus(404, 2, {
      hresult: 0x800704ec,
      description: `The CGI program ${shown} is not allowed to run: add it to ${CGI_RESTRICTION_SECTION} with allowed="true" (path="${shown}"), or set notListedCgisAllowed="true" there.`,
    });
    ctx.finish();
    return;
  }

  if (cmd.program === undefined) {
    const info = await ctx.stat(script);
    if (info === undefined || !info.isFile) {
      ctx.response.win32Status = 2;
      ctx.setStatus(404, 0, { hresult: 0x80070002, description: `The CGI program ${script} does not exist.` });
      ctx.finish();
      return;
    }
    try {
      await access(script, constants.X_OK);
    } catch {
      ctx.response.win32Status = 5;
      ctx.setStatus(403, 1, {
        hresult: 0x80070005,
        description: `The file ${script} is mapped to run as a CGI program, but the pool's identity may not execute it (chmod +x, or map the handler to a scriptProcessor).`,
      });
      ctx.finish();
      return;
    }
  }

  const cgi = ctx.config.section(CGI_SECTION);
  warnNotAsUser(ctx, cgi);
  await runCgi(ctx, {
    program,
    args: commandArguments(cmd.template, script, ctx.request.queryString),
    shown,
    timeoutMs: cgi.num('timeout'),
    urlRewrite: urlRewriteLoaded(ctx),
  });
}

export const CgiModule: ModuleDefinition = {
  name: 'CgiModule',
  executeHandler: serve,
  attach(worker) {
    services = worker;
  },
};
