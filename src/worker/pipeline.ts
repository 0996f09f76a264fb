/**
 * The integrated pipeline (reference §3): stages in IIS order, module handlers per stage in
 * `<modules>` order, one handler chosen at MapRequestHandler, LogRequest and EndRequest always
 * run, SendResponse fires once when the head is flushed.
 */
import { STATUS_CODES } from 'node:http';
// The pipeline's events are timed with performance.now(): imported, as the global is a lazy getter
// (a few ns on each of the ~10 reads a watched request makes).
import { performance } from 'node:perf_hooks';
import {
  handlerChanged,
  moduleEnd,
  moduleStart,
  notificationEnd,
  notificationStart,
  pipelineEnd,
  pipelineStart,
  statusSet,
  type ModuleEvent,
  type NotificationEvent,
  type TypedChannel,
} from '../diagnostics.js';
import type { ConfigError } from '../errors.js';
import { formatHResult, ModuleError } from '../errors.js';
import type { ConfigElement, ResolveResult } from '../config/types.js';
import type { RequestHeadMessage } from '../ipc/messages.js';
import { canonicalizePath } from '../http/url-path.js';
import { selectHandler, type PoolTraits } from './handler-mapping.js';
import {
  WorkerContext,
  WorkerRequest,
  WorkerResponse,
  type ContextHost,
  type ResponseTransport,
} from './http-context.js';
import { STAGES, type ChildRequestOptions, type ChildRequestResult, type FileInfo, type HandlerMapping, type ModuleDefinition, type Notification } from './module-api.js';
import type { ChainEntry, ModuleChain, ModuleRegistry } from './module-registry.js';
import type { RequestBody } from './request-body.js';
import { StatCache } from './stat-cache.js';
import { checkSslAccess, sslAccessCacheable } from './ssl-access.js';
import { renderConfigErrorPage } from './config-error-page.js';
import { ANONYMOUS_SECTION } from '../modules/authentication/index.js';
import { FileRights, type RightsVerdict } from '../modules/file-rights/index.js';
import { AUTHORIZATION_SECTION } from '../modules/url-authorization/index.js';
import { describeWarning, securityModuleWarnings, warningKey } from '../config/config-warnings.js';

export interface ConfigResolver {
  resolve(siteId: number, urlPath: string): ResolveResult;
}

export interface PipelineOptions {
  readonly poolName: string;
  readonly pool: PoolTraits;
  readonly registry: ModuleRegistry;
  readonly config: ConfigResolver;
  readonly statCache: StatCache;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/** Access flags of `handlers accessPolicy` and the sub-status IIS answers when one is missing. */
const ACCESS: Readonly<Record<string, { flag: string; sub: number }>> = {
  Read: { flag: 'Read', sub: 2 },
  Write: { flag: 'Write', sub: 3 },
  Script: { flag: 'Script', sub: 1 },
  Execute: { flag: 'Execute', sub: 1 },
};

const MAX_CHILD_DEPTH = 8;

/** Characters of a client-supplied string (a URL, a path) a server log line carries. */
const MAX_LOGGED_CHARS = 256;

/** `text` cut to MAX_LOGGED_CHARS for a log line, saying how long it was. */
export function textForLog(text: string): string {
  return text.length <= MAX_LOGGED_CHARS ? text : `${text.slice(0, MAX_LOGGED_CHARS)}… (${text.length} characters)`;
}

/** accessPolicy flags per effective `<handlers>` element (computed once, not per request). */
const accessCache = new WeakMap<ConfigElement, ReadonlySet<string>>();
function grantedAccess(handlers: ConfigElement): ReadonlySet<string> {
  let set = accessCache.get(handlers);
  if (set === undefined) accessCache.set(handlers, (set = handlers.flagNames('accessPolicy')));
  return set;
}

/** The URL as the worker got it, for the pipeline's start event. */
function requestUrl(head: RequestHeadMessage): string {
  return head.query === '' ? head.path : `${head.path}?${head.query}`;
}

/** A handler's modules in `<modules>` order (IIS runs them in that order), per chain, and the
 *  first module it names that is not enabled there (→ 500.21). */
interface HandlerModules {
  readonly defs: readonly ModuleDefinition[];
  readonly bad: string | undefined;
}
const handlerModuleCache = new WeakMap<ModuleChain, Map<HandlerMapping, HandlerModules>>();
function handlerModules(chain: ModuleChain, h: HandlerMapping): HandlerModules {
  let perChain = handlerModuleCache.get(chain);
  if (perChain === undefined) handlerModuleCache.set(chain, (perChain = new Map()));
  let entry = perChain.get(h);
  if (entry === undefined) {
    const bad = h.modules.find((name) => chain.enabled.get(name.toLowerCase())?.executeHandler === undefined);
    const wanted = new Set(h.modules.map((m) => m.toLowerCase()));
    const defs = [...chain.enabled].filter(([key]) => wanted.has(key)).map(([, def]) => def);
    entry = { defs, bad };
    perChain.set(h, entry);
  }
  return entry;
}

// Publishing the pipeline's events (src/diagnostics.ts). Callers test the channel's
// hasSubscribers first, so with nobody listening a module call costs one property read and no
// payload is built; these run only when someone listens.
// Module and notification events are one object per channel, rewritten for each publication
// (src/diagnostics.ts, NotificationEvent): subscribers copy what they keep. The key is cleared
// after each call so that the object does not keep a finished request alive.
const NO_KEY: object = Object.freeze({});
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const moduleStartEvent: Mutable<ModuleEvent> = { key: NO_KEY, module: '', notification: '', at: 0 };
const moduleEndEvent: Mutable<ModuleEvent> = { key: NO_KEY, module: '', notification: '', at: 0 };
const notificationStartEvent: Mutable<NotificationEvent> = { key: NO_KEY, notification: '', at: 0 };
const notificationEndEvent: Mutable<NotificationEvent> = { key: NO_KEY, notification: '', at: 0 };
function publishModule(ch: TypedChannel<ModuleEvent>, ctx: WorkerContext, module: string, notification: Notification): void {
  const ev = ch === moduleStart ? moduleStartEvent : moduleEndEvent;
  ev.key = ctx.root;
  ev.module = module;
  ev.notification = notification;
  ev.at = performance.now();
  ch.publish(ev);
  ev.key = NO_KEY;
}
function publishNotification(ch: TypedChannel<NotificationEvent>, ctx: WorkerContext, notification: Notification): void {
  const ev = ch === notificationStart ? notificationStartEvent : notificationEndEvent;
  ev.key = ctx.root;
  ev.notification = notification;
  ev.at = performance.now();
  ch.publish(ev);
  ev.key = NO_KEY;
}

/** Modules that enforce a security section (config-warnings.ts securityModuleWarnings), by lower-case name. */
const SECURITY_MODULES = ['anonymousauthenticationmodule', 'basicauthenticationmodule', 'digestauthenticationmodule', 'urlauthorizationmodule'];
const lacksCache = new WeakMap<ModuleChain, boolean>();
function lacksSecurityModule(chain: ModuleChain): boolean {
  let lacks = lacksCache.get(chain);
  if (lacks === undefined) lacksCache.set(chain, (lacks = SECURITY_MODULES.some((m) => !chain.enabled.has(m))));
  return lacks;
}

/** resourceType File / Directory / Either needs the target on disk (IIS Web Core: 404.0). */
function checkResource(ctx: WorkerContext, h: HandlerMapping, info: FileInfo | undefined): void {
  const ok = info !== undefined && (h.resourceType === 'Either' || (h.resourceType === 'File' ? info.isFile : info.isDirectory));
  if (ok) return;
  ctx.response.win32Status = 2;
  ctx.setStatus(404, 0, {
    hresult: 0x80070002,
    description: 'The resource you are looking for has been removed, had its name changed, or is temporarily unavailable.',
  });
  ctx.finish();
}

export class Pipeline implements ContextHost {
  readonly #o: PipelineOptions;
  readonly #fileRights: FileRights;
  /** Per <modules> element, the authorization sections already checked by #warnUnenforced. */
  readonly #securityChecked = new WeakMap<ConfigElement, WeakSet<ConfigElement>>();
  readonly #warned = new Set<string>();

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#fileRights = new FileRights({ log: (m) => options.log('warn', m) });
  }

  /** Serve one request from head to end frame. Never throws. */
  async run(head: RequestHeadMessage, transport: ResponseTransport, body: RequestBody | undefined): Promise<void> {
    const response = new WorkerResponse(transport, head.method === 'HEAD');
    const request = new WorkerRequest(head, body);
    const resolved = this.#o.config.resolve(head.siteId, head.path === '*' ? '/' : head.path);
    if (!resolved.ok) {
      // No context can be built (its configuration is what failed): the request object is the
      // events' key, and no Failed Request Tracing rule applies (they live in that configuration).
      if (pipelineStart.hasSubscribers) pipelineStart.publish({ key: request, siteId: head.siteId, method: head.method, url: requestUrl(head), traceparent: head.traceparent ?? '', at: performance.now() });
      this.#sendConfigError(request, response, resolved.error, request);
      await response.finish('');
      if (pipelineEnd.hasSubscribers) pipelineEnd.publish({ key: request, status: response.statusCode, subStatus: response.subStatus, bytesSent: response.bodyLength, at: performance.now() });
      return;
    }
    const ctx = new WorkerContext({ request, response, config: resolved.config, appPoolName: this.#o.poolName, host: this });
    if (pipelineStart.hasSubscribers) pipelineStart.publish({ key: ctx, siteId: head.siteId, method: head.method, url: requestUrl(head), traceparent: head.traceparent ?? '', at: performance.now() });
    response.setSendResponseHook(this, ctx);
    await this.#runStages(ctx);
    if (head.method === 'GET') offerToCache(ctx);
    try {
      await response.finish(ctx.user);
    } catch (err) {
      this.#o.log('error', `sending the response for ${head.path} failed: ${(err as Error).stack ?? String(err)}`);
      response.abort();
      try {
        await response.finish(ctx.user);
      } catch {
        // reported above: the aborted response only ends its stream
      }
    }
    if (pipelineEnd.hasSubscribers) pipelineEnd.publish({ key: ctx, status: response.statusCode, subStatus: response.subStatus, bytesSent: response.bodyLength, at: performance.now() });
  }

  // The stage runners below return a promise only when a handler went asynchronous: most
  // notifications finish synchronously, and an async function per step would cost a promise
  // and a microtask hop each, several times per request.

  async #runStages(ctx: WorkerContext): Promise<void> {
    const modules = ctx.config.section('system.webServer/modules');
    const chain = this.#o.registry.chain(modules);
    if (lacksSecurityModule(chain)) this.#warnUnenforced(ctx, modules);
    const n = chain.notifications;
    for (let s = 0; s < STAGES.length; s++) {
      const stage = STAGES[s]!;
      if (stage === 'LogRequest') break;
      if (ctx.finished || ctx.response.aborted) break;
      ctx.notification = stage;
      if (stage === 'AuthenticateRequest') {
        // IIS Web Core checks security/access before any authentication module runs.
        this.#checkSslAccess(ctx);
        if (ctx.finished) break;
      } else if (stage === 'MapRequestHandler') {
        this.#mapHandler(ctx);
        if (ctx.finished) break;
        // The stage's modules (HttpRedirectionModule) run before the core checks the handler's
        // access and resource, so a URL with no file behind it can still be redirected, as IIS
        // redirects every URL of a removed folder.
        const list = n.MapRequestHandler;
        if (list.length !== 0) {
          const r = this.#notify(ctx, list, stage, false);
          if (r !== undefined) await r;
          if (ctx.finished || ctx.response.aborted) break;
        }
        const r = this.#checkHandler(ctx);
        if (r !== undefined) await r;
        continue;
      } else if (stage === 'ExecuteRequestHandler') {
        // The handler's modules are one notification; the stage's other modules (below) another.
        if (notificationStart.hasSubscribers) publishNotification(notificationStart, ctx, stage);
        const r = this.#executeHandler(ctx, chain);
        if (r !== undefined) await r;
        if (notificationEnd.hasSubscribers) publishNotification(notificationEnd, ctx, stage);
        if (ctx.finished) break;
      }
      const list = n[stage];
      if (list.length !== 0) {
        const r = this.#notify(ctx, list, stage, false);
        if (r !== undefined) await r;
      }
      if (stage === 'AuthenticateRequest' && !ctx.finished) this.#requireUser(ctx);
    }
    // LogRequest and EndRequest always run (for child requests only EndRequest: the parent logs).
    if (!ctx.isChildRequest && n.LogRequest.length !== 0) {
      const r = this.#notify(ctx, n.LogRequest, 'LogRequest', true);
      if (r !== undefined) await r;
    }
    if (n.EndRequest.length !== 0) {
      const r = this.#notify(ctx, n.EndRequest, 'EndRequest', true);
      if (r !== undefined) await r;
    }
  }

  #notify(ctx: WorkerContext, list: readonly ChainEntry[], stage: Notification, always: boolean): void | Promise<void> {
    ctx.notification = stage;
    if (notificationStart.hasSubscribers) publishNotification(notificationStart, ctx, stage);
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      ctx.currentModule = e.module;
      if (moduleStart.hasSubscribers) publishModule(moduleStart, ctx, e.module, stage);
      let r: void | Promise<void>;
      try {
        r = e.fn(ctx);
      } catch (err) {
        this.#moduleFailed(ctx, err);
        if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, e.module, stage);
        if (!always) return this.#notificationEnded(ctx, stage);
        continue;
      }
      if (r !== undefined) return this.#notifyFrom(ctx, list, stage, always, i, r);
      if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, e.module, stage);
      if (ctx.finished && !always) return this.#notificationEnded(ctx, stage);
    }
    ctx.currentModule = 'IIS Web Core';
    if (notificationEnd.hasSubscribers) publishNotification(notificationEnd, ctx, stage);
  }

  /** A notification ended early (the request finished): its end event, the module left as it was. */
  #notificationEnded(ctx: WorkerContext, stage: Notification): void {
    if (notificationEnd.hasSubscribers) publishNotification(notificationEnd, ctx, stage);
  }

  /** #notify's continuation once handler `i` returned a promise. */
  async #notifyFrom(
    ctx: WorkerContext,
    list: readonly ChainEntry[],
    stage: Notification,
    always: boolean,
    i: number,
    pending: Promise<void>,
  ): Promise<void> {
    for (;;) {
      try {
        await pending;
      } catch (err) {
        this.#moduleFailed(ctx, err);
        if (!always) {
          if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, list[i]!.module, stage);
          return this.#notificationEnded(ctx, stage);
        }
      }
      if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, list[i]!.module, stage);
      if (ctx.finished && !always) return this.#notificationEnded(ctx, stage);
      let next: void | Promise<void> = undefined;
      for (i++; i < list.length; i++) {
        const e = list[i]!;
        ctx.notification = stage;
        ctx.currentModule = e.module;
        if (moduleStart.hasSubscribers) publishModule(moduleStart, ctx, e.module, stage);
        try {
          next = e.fn(ctx);
        } catch (err) {
          this.#moduleFailed(ctx, err);
          if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, e.module, stage);
          if (!always) return this.#notificationEnded(ctx, stage);
          continue;
        }
        if (next !== undefined) break;
        if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, e.module, stage);
        if (ctx.finished && !always) return this.#notificationEnded(ctx, stage);
      }
      if (next === undefined) break;
      pending = next;
    }
    ctx.currentModule = 'IIS Web Core';
    if (notificationEnd.hasSubscribers) publishNotification(notificationEnd, ctx, stage);
  }

  #moduleFailed(ctx: WorkerContext, err: unknown): void {
    // A module (or the application) may throw anything: a non-Error is reported as MOD_FAILED.
    const e = err instanceof Error ? err : new ModuleError('MOD_FAILED', String(err));
    if (e instanceof ModuleError && e.code === 'MOD_BODY_TOO_LARGE') return bodyTooLarge(ctx, e);
    this.#o.log('error', `${ctx.currentModule} failed in ${ctx.notification} for ${ctx.request.path}: ${e.stack ?? e.message}`);
    if (!ctx.response.headersSent) {
      ctx.setStatus(500, 0, { hresult: 0x80004005, description: e.message });
    } else {
      ctx.response.abort();
    }
    ctx.finish();
  }

  /** security/access sslFlags: 403.4/.5/.7/.13/.16/.17 (src/worker/ssl-access.ts). */
  #checkSslAccess(ctx: WorkerContext): void {
    const flags = ctx.config.section('system.webServer/security/access').num('sslFlags');
    if (flags === 0) return;
    if (!sslAccessCacheable(flags)) ctx.response.kernelCache.disable();
    const denied = checkSslAccess(flags, ctx.request.tls);
    if (denied === undefined) return;
    ctx.currentModule = 'IIS Web Core';
    ctx.response.win32Status = denied.win32Status;
    ctx.setStatus(denied.status, denied.subStatus, { hresult: denied.hresult, description: denied.description });
    ctx.finish();
  }

  /**
   * IIS Web Core after AuthenticateRequest: a request no scheme authenticated may go on only as
   * anonymous, so with anonymousAuthentication off it is refused with 401.2, which the enabled
   * schemes' modules turn into their challenges. A child request runs as its parent.
   */
  #requireUser(ctx: WorkerContext): void {
    if (ctx.user !== '' || ctx.isChildRequest) return;
    if (ctx.config.section(ANONYMOUS_SECTION).bool('enabled')) return;
    ctx.currentModule = 'IIS Web Core';
    ctx.setStatus(401, 2, {
      hresult: 0x80070005,
      description: 'Logon failed due to server configuration: anonymous access is disabled and the request carried no credentials of an enabled authentication scheme.',
    });
    ctx.finish();
  }

  /**
   * A security section that restricts access where its module is not in <modules> (a web.config
   * below the site root, which the start-up scan does not read): warned once per worker, per
   * effective section, as config-warnings.ts words it.
   */
  #warnUnenforced(ctx: WorkerContext, modules: ConfigElement): void {
    const authorization = ctx.config.section(AUTHORIZATION_SECTION);
    let seen = this.#securityChecked.get(modules);
    if (seen === undefined) this.#securityChecked.set(modules, (seen = new WeakSet()));
    if (seen.has(authorization)) return;
    seen.add(authorization);
    for (const w of securityModuleWarnings((path) => ctx.config.section(path), modules)) {
      const key = warningKey(w);
      if (this.#warned.has(key)) continue;
      if (this.#warned.size < 10_000) this.#warned.add(key);
      this.#o.log('warn', describeWarning(w));
    }
  }

  /** Choose the handler (404.4, 405 when none fits) and what it serves. */
  #mapHandler(ctx: WorkerContext): void {
    ctx.currentModule = 'IIS Web Core';
    const req = ctx.request;
    const handlers = ctx.config.section('system.webServer/handlers');
    const m = selectHandler(handlers, req.method, req.path, this.#o.pool);
    if (m.kind === 'no-handler') {
      ctx.setStatus(404, 4, { description: 'The resource you are looking for does not have a handler associated with it.' });
      ctx.finish();
      return;
    }
    if (m.kind === 'verb-not-allowed') {
      ctx.setStatus(405, 0, { description: `The HTTP verb ${req.method} used to access this page is not allowed.` });
      ctx.finish();
      return;
    }
    const h = m.handler;
    if (handlerChanged.hasSubscribers) {
      handlerChanged.publish({
        key: ctx.root,
        oldHandler: ctx.handler?.name ?? '',
        newHandler: h.name,
        modules: h.modules.join(','),
        scriptProcessor: h.scriptProcessor,
        type: h.element.str('type'),
      });
    }
    ctx.handler = h;
    if (m.scriptPath !== undefined) {
      // A script map matched an earlier segment: the handler serves that file, the rest is PATH_INFO.
      const script = this.#o.config.resolve(ctx.site.id, m.scriptPath);
      if (script.ok) {
        ctx.scriptPath = m.scriptPath;
        ctx.physicalPath = script.config.physicalPath;
      }
    }
    ctx.response.bufferLimit = h.responseBufferLimit;
  }

  /** The core's checks of the chosen handler: accessPolicy (403.1/2/3) and resourceType (404.0). */
  #checkHandler(ctx: WorkerContext): void | Promise<void> {
    const h = ctx.handler;
    if (h === undefined) return;
    ctx.currentModule = 'IIS Web Core';
    const handlers = ctx.config.section('system.webServer/handlers');
    const access = ACCESS[h.requireAccess];
    if (access !== undefined && !grantedAccess(handlers).has(access.flag)) {
      ctx.setStatus(403, access.sub, {
        description: `The handler ${h.name} requires ${h.requireAccess} access, which the handlers accessPolicy does not grant.`,
      });
      ctx.finish();
      return;
    }
    if (h.resourceType !== 'Unspecified') {
      // A fresh cached stat answers without a promise (the common case on a hot URL).
      const cached = this.#o.statCache.peek(ctx.physicalPath);
      if (cached === undefined) return this.stat(ctx.physicalPath).then((info) => this.#resourceAndRights(ctx, h, info));
      checkResource(ctx, h, cached.info);
      if (ctx.finished) return;
    }
    return this.#checkFileRights(ctx);
  }

  #resourceAndRights(ctx: WorkerContext, h: HandlerMapping, info: FileInfo | undefined): void | Promise<void> {
    checkResource(ctx, h, info);
    if (!ctx.finished) return this.#checkFileRights(ctx);
  }

  /**
   * 401.3: the authenticated account (or anonymousAuthentication's named account) may not read
   * the file the handler serves or runs, as IIS finds when it opens it with the user's token
   * (src/modules/file-rights/). Wharf's users (uid -1) have no Linux account: the pool's rights apply.
   */
  #checkFileRights(ctx: WorkerContext): void | Promise<void> {
    const id = ctx.identity;
    if (id === undefined || id.uid < 0) return;
    const r = this.#fileRights.check(id, ctx.physicalPath);
    if (r === undefined) return;
    if (!(r instanceof Promise)) return this.#rightsVerdict(ctx, r);
    return r.then((v) => {
      if (v !== undefined) this.#rightsVerdict(ctx, v);
    });
  }

  #rightsVerdict(ctx: WorkerContext, v: RightsVerdict): void {
    if (v.allowed) return;
    ctx.currentModule = 'IIS Web Core';
    ctx.response.win32Status = 5;
    ctx.setStatus(401, 3, { hresult: 0x80070005, description: `Access is denied by the file's permissions: ${v.why}.` });
    ctx.finish();
  }

  #executeHandler(ctx: WorkerContext, chain: ModuleChain): void | Promise<void> {
    const h = ctx.handler;
    if (h === undefined) return;
    const { defs, bad } = handlerModules(chain, h);
    if (bad !== undefined) {
      // Every module the handler names must be enabled here (IIS 500.21 otherwise).
      ctx.setStatus(500, 21, { description: `Handler "${h.name}" has a bad module "${bad}" in its module list.` });
      ctx.finish();
      return;
    }
    for (let i = 0; i < defs.length; i++) {
      const def = defs[i]!;
      ctx.currentModule = def.name;
      if (moduleStart.hasSubscribers) publishModule(moduleStart, ctx, def.name, 'ExecuteRequestHandler');
      let r: void | Promise<void>;
      try {
        r = def.executeHandler!(ctx);
      } catch (err) {
        this.#moduleFailed(ctx, err);
        if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, def.name, 'ExecuteRequestHandler');
        return;
      }
      if (r !== undefined) return this.#executeFrom(ctx, defs, i, r);
      if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, def.name, 'ExecuteRequestHandler');
      if (ctx.finished || ctx.response.produced) break;
    }
    ctx.currentModule = 'IIS Web Core';
  }

  async #executeFrom(ctx: WorkerContext, defs: readonly ModuleDefinition[], i: number, pending: Promise<void>): Promise<void> {
    try {
      await pending;
    } catch (err) {
      this.#moduleFailed(ctx, err);
      return;
    } finally {
      if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, defs[i]!.name, 'ExecuteRequestHandler');
    }
    for (i++; i < defs.length && !ctx.finished && !ctx.response.produced; i++) {
      const def = defs[i]!;
      ctx.currentModule = def.name;
      if (moduleStart.hasSubscribers) publishModule(moduleStart, ctx, def.name, 'ExecuteRequestHandler');
      try {
        const r = def.executeHandler!(ctx);
        if (r !== undefined) await r;
      } catch (err) {
        this.#moduleFailed(ctx, err);
        return;
      } finally {
        if (moduleEnd.hasSubscribers) publishModule(moduleEnd, ctx, def.name, 'ExecuteRequestHandler');
      }
    }
    ctx.currentModule = 'IIS Web Core';
  }

  runSendResponse(ctx: WorkerContext): void | Promise<void> {
    const chain = this.#o.registry.chain(ctx.config.section('system.webServer/modules'));
    const list = chain.notifications.SendResponse;
    if (list.length !== 0) return this.#notify(ctx, list, 'SendResponse', true);
  }

  async runChildRequest(parent: WorkerContext, url: string, options: ChildRequestOptions | undefined): Promise<ChildRequestResult> {
    const res = parent.response;
    const failed = (status: number, subStatus: number, description: string): ChildRequestResult => {
      parent.setStatus(status, subStatus, { description });
      return { status, subStatus };
    };
    let depth = 0;
    for (let p: WorkerContext | undefined = parent; p !== undefined; p = p.parent) depth++;
    if (depth > MAX_CHILD_DEPTH) return failed(500, 0, `Child requests nest deeper than ${MAX_CHILD_DEPTH} levels (${url}).`);
    const q = url.indexOf('?');
    const path = canonicalizePath(q === -1 ? url : url.slice(0, q));
    const query = q === -1 ? parent.request.queryString : url.slice(q + 1);
    if (path === undefined) return failed(500, 0, `Invalid child request URL ${url}.`);
    const pr = parent.request;
    const head: RequestHeadMessage = {
      method: options?.method ?? pr.method,
      rawUrl: options?.ownUrl === true ? url : pr.rawUrl,
      path,
      query,
      protocol: pr.protocol,
      siteId: parent.site.id,
      remoteAddress: pr.remoteAddress,
      remotePort: pr.remotePort,
      localAddress: pr.localAddress,
      localPort: pr.localPort,
      contentLength: options?.method === undefined || options.method === pr.method ? pr.contentLength : 0,
      rawHeaders: options?.rawHeaders ?? pr.rawHeaders,
      // The same connection: HTTPS, CERT_* and security/access see what the parent saw.
      ...(pr.secure ? { tls: pr.tlsText } : {}),
    };
    const resolved = this.#o.config.resolve(parent.site.id, path);
    if (!resolved.ok) {
      this.#sendConfigError(new WorkerRequest(head, undefined), res, resolved.error, parent.root);
      return { status: 500, subStatus: 19 };
    }
    const pool = resolved.config.application.applicationPool;
    if (pool !== this.#o.poolName) {
      // IIS runs a child only in the parent's pool (403.18: ExecuteURL into another application's pool).
      return failed(403, 18, `${path} belongs to application ${resolved.config.application.path} of application pool "${pool}"; a child request runs only in this request's pool ("${this.#o.poolName}").`);
    }
    const child = new WorkerContext({
      request: new WorkerRequest(head, undefined),
      response: res,
      config: resolved.config,
      appPoolName: this.#o.poolName,
      host: this,
      parent,
    });
    const produced = res.produced;
    const keep = options?.keepStatus === true;
    if (keep) {
      res.pinStatus();
      res.statusCode = 200;
      res.subStatus = 0;
      res.statusReason = '';
    }
    // The child's handler starts from nothing produced, whatever the parent's status says.
    res.produced = false;
    try {
      await this.#runStages(child);
      return { status: res.statusCode, subStatus: res.subStatus };
    } finally {
      if (keep) res.unpinStatus();
      res.produced ||= produced;
    }
  }

  stat(path: string): Promise<FileInfo | undefined> {
    return this.#o.statCache.stat(path);
  }

  statCached(path: string): FileInfo | null | undefined {
    const e = this.#o.statCache.peek(path);
    return e === undefined ? undefined : (e.info ?? null);
  }

  log(level: 'info' | 'warn' | 'error', message: string): void {
    this.#o.log(level, message);
  }

  resolve(siteId: number, urlPath: string): ResolveResult {
    return this.#o.config.resolve(siteId, urlPath);
  }

  get poolName(): string {
    return this.#o.poolName;
  }

  /**
   * 500.19: the configuration for this URL is invalid. No module can run (their configuration is
   * what failed), so the core answers: the detailed page for local clients, a plain one for
   * remote clients, as IIS's default errorMode DetailedLocalOnly does.
   */
  #sendConfigError(request: WorkerRequest, response: WorkerResponse, error: ConfigError, key: object): void {
    this.#o.log('warn', `500.19 for ${textForLog(request.path)}: ${textForLog(error.describe())} (${formatHResult(error.hresult)})`);
    response.clear();
    response.statusCode = 500;
    response.subStatus = 19;
    response.win32Status = error.hresult & 0xffff;
    if (statusSet.hasSubscribers) {
      statusSet.publish({
        key,
        module: 'IIS Web Core',
        notification: 'BeginRequest',
        status: 500,
        subStatus: 19,
        reason: STATUS_CODES[500] ?? '',
        errorCode: error.hresult,
        description: error.describe(),
      });
    }
    response.setHeader('Content-Type', 'text/html; charset=utf-8');
    response.write(renderConfigErrorPage(request, error));
  }
}

/** Request headers that keep a response out of the kernel cache (HTTP.sys's rules). */
const UNCACHEABLE_REQUEST_HEADERS = ['authorization', 'range', 'if-range', 'translate'];

/**
 * A chunked body grew past requestFiltering maxAllowedContentLength while a handler read it
 * (RequestBody.limit): the client's doing, not a module failure, so 404.13 as for a Content-Length
 * over the limit, with the handler's partial answer dropped; reset if the answer had started.
 */
function bodyTooLarge(ctx: WorkerContext, e: ModuleError): void {
  if (ctx.response.headersSent) {
    ctx.response.abort();
  } else {
    ctx.response.clear();
    ctx.setStatus(404, 13, { module: 'RequestFilteringModule', hresult: 0, description: e.message });
  }
  ctx.finish();
}

/**
 * The kernel cache decision a worker can make (the listener adds frequent-hit counting): a module
 * set a policy (StaticFileModule: until the file changes) or a `caching/profiles` entry for the
 * extension asks for one; the request is an anonymous GET with no Authorization or Range; caching
 * and enableKernelCache are on for the URL; a static response has no query string
 * (STATIC_REQUEST_QUERYSTRING). WorkerResponse.finish checks the final status and headers.
 */
function offerToCache(ctx: WorkerContext): void {
  const res = ctx.response;
  const set = res.kernelCacheIfSet;
  if (set?.policy === 'disabled' || ctx.user !== '' || ctx.childRequests !== 0 || ctx.response.aborted) return;
  const extra = set?.extraDependencies ?? [];
  const caching = ctx.config.section('system.webServer/caching');
  if (!caching.bool('enabled') || !caching.bool('enableKernelCache')) return;
  let policy: 'untilChange' | 'timePeriod';
  let durationMs = 0;
  const dependencies: string[] = [];
  if (set !== undefined && set.policy !== 'none') {
    if (set.policy === 'untilChange' && ctx.request.queryString !== '') return;
    policy = set.policy;
    durationMs = set.durationMs;
    dependencies.push(...set.dependencies);
  } else {
    const profiles = caching.child('profiles').items;
    if (profiles.length === 0) return;
    const path = ctx.request.path;
    const dot = path.lastIndexOf('.');
    const ext = dot > path.lastIndexOf('/') ? path.slice(dot).toLowerCase() : '';
    const profile = profiles.find((p) => p.str('extension').toLowerCase() === ext || p.str('extension') === '*');
    if (profile === undefined) return;
    const kp = profile.enumName('kernelCachePolicy');
    if (kp === 'CacheUntilChange') {
      // Until the file behind the URL changes (a script), or the configuration does.
      policy = 'untilChange';
      dependencies.push(ctx.physicalPath);
    } else if (kp === 'CacheForTimePeriod') {
      policy = 'timePeriod';
      durationMs = profile.num('duration');
    } else return;
  }
  const h = ctx.request.headers;
  for (const name of UNCACHEABLE_REQUEST_HEADERS) if (h[name] !== undefined) return;
  dependencies.push(...extra, ...ctx.config.configFiles);
  const runtime = ctx.config.section('system.webServer/serverRuntime');
  res.cacheHint = {
    policy,
    durationMs,
    dependencies,
    frequentHitThreshold: runtime.num('frequentHitThreshold'),
    frequentHitTimePeriodMs: runtime.num('frequentHitTimePeriod'),
  };
  res.maxCacheableBytes = caching.num('maxResponseSize');
}
