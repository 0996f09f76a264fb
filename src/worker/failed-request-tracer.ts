/**
 * Failed Request Tracing in the worker (IIS's FailedRequestsTracingModule, reference §5.2): a
 * subscriber of the pipeline's diagnostics channels that buffers the events of the requests a
 * `traceFailedRequests` rule covers and, when one fails a definition (status code, time taken,
 * an event at the failure verbosity), sends the trace to the main process, which writes
 * `W3SVC<id>/frNNNNNN.xml` (the worker has no access to the log folders).
 *
 * Cost (issue 15: a rule that covers every request and never fires must cost next to nothing):
 * - While no site enables traceFailedRequestsLogging nothing is subscribed.
 * - Otherwise `wharf:pipeline:start` is. What a URL's effective configuration decides (its rule,
 *   the site's size limit) is worked out once per ResolvedConfig object and cached: the config
 *   system hands out a new one when applicationHost.config or a web.config on the path changes,
 *   so the cache follows configuration without being told. A request no rule covers costs one
 *   WeakMap lookup.
 * - The other channels are subscribed when a traced request starts and stay subscribed until a
 *   request no rule covers starts with no traced request in flight. Subscribing and
 *   unsubscribing per request would be cheap-looking but is not: each one swaps the channel
 *   object's prototype in Node (markActive/maybeMarkInactive), which throws away the publishers'
 *   inline caches; measured at several µs per request when requests arrive one at a time.
 * - A watched request's events are kept in arrays reused from request to request (see Kind): a
 *   module start or end keeps its module and notification names and its payload's time, not the
 *   payload, so nothing it allocated outlives the publish (objects kept across a request's
 *   asynchronous steps were the garbage collector's main extra work). They become FREB events
 *   only when a trace is written; the activity id is drawn only then too.
 *
 * A request that runs longer than timeTaken is written when the time elapses, with the events
 * so far, as IIS does; with traceAllAfterTimeout it is written at its end, whole.
 */
import { randomUUID } from 'node:crypto';
// Imported rather than the global: the global `performance` is a lazy getter (a few ns per read).
import { performance } from 'node:perf_hooks';
import type { AppHostConfig, ResolvedConfig } from '../config/types.js';
import {
  handlerChanged,
  moduleEnd,
  moduleStart,
  moduleTrace,
  pipelineEnd,
  pipelineStart,
  statusSet,
  type HandlerChangedEvent,
  type ModuleEvent,
  type ModuleTraceEvent,
  type PipelineRequestEndEvent,
  type PipelineRequestEvent,
  type StatusSetEvent,
} from '../diagnostics.js';
import { formatHResult } from '../errors.js';
import type { TraceEventRecord, TraceRecordMessage } from '../ipc/messages.js';
import { keepsEvent, ruleFor, statusMatches, traceRules, type TraceRule } from './failed-request-rules.js';
import { WorkerContext } from './http-context.js';

export const TRACING_SECTION = 'system.webServer/tracing/traceFailedRequests';

/** Events kept per request at most (a long-lived request must not grow without bound). */
const MAX_EVENTS = 20_000;
/** Bytes of a record when the site's maxLogFileSizeKB is 0 (no limit of its own): the IPC frame's bound, with room. */
const UNLIMITED_RECORD_BYTES = 32 * 1024 * 1024;
/**
 * Traced requests in flight found by scanning an array (the usual case: a few at a time); any
 * beyond this many are kept in a WeakMap. A WeakMap set and delete per request cost ~130 ns here,
 * a scan of a few entries a few ns.
 */
const SCANNED_IN_FLIGHT = 32;
/** Event arrays kept for reuse (one per request in flight, as many as are usually in flight at once). */
const SPARE_ARRAYS = 64;
/** A kept array longer than this (a long request's) is left to the garbage collector rather than reused. */
const SPARE_ARRAY_SLOTS = 384;
/** Times kept at first (events of a simple request); doubled as needed. */
const FIRST_TIMES = 64;

/** IIS's request notification masks (reference §3.1), shown in a trace's Notification data. */
const NOTIFICATION_MASK: Readonly<Record<string, [mask: number, name: string]>> = {
  BeginRequest: [0x1, 'BEGIN_REQUEST'],
  AuthenticateRequest: [0x2, 'AUTHENTICATE_REQUEST'],
  AuthorizeRequest: [0x4, 'AUTHORIZE_REQUEST'],
  ResolveRequestCache: [0x8, 'RESOLVE_REQUEST_CACHE'],
  MapRequestHandler: [0x10, 'MAP_REQUEST_HANDLER'],
  AcquireRequestState: [0x20, 'ACQUIRE_REQUEST_STATE'],
  PreExecuteRequestHandler: [0x40, 'PRE_EXECUTE_REQUEST_HANDLER'],
  ExecuteRequestHandler: [0x80, 'EXECUTE_REQUEST_HANDLER'],
  ReleaseRequestState: [0x100, 'RELEASE_REQUEST_STATE'],
  UpdateRequestCache: [0x200, 'UPDATE_REQUEST_CACHE'],
  LogRequest: [0x400, 'LOG_REQUEST'],
  EndRequest: [0x800, 'END_REQUEST'],
  SendResponse: [0x20000000, 'SEND_RESPONSE'],
};

/**
 * How an event is kept: three slots of Traced.events, [kind, module name, notification] for a
 * module start or end (constant strings: nothing of the payload is retained, so it dies young,
 * which is what the garbage collector handles cheaply), [kind, payload, undefined] for the
 * others; its time in Traced.times.
 */
const enum Kind {
  ModuleStart,
  ModuleEnd,
  Handler,
  Status,
  Trace,
}

/** What a URL's effective configuration decides, cached per ResolvedConfig (see the file's comment). */
interface Plan {
  /** The URL path the rule was chosen for (a ResolvedConfig serves one path: checked, not assumed). */
  readonly path: string;
  /** undefined: not traced (logging off for the site, or no rule covers the URL). */
  readonly rule: TraceRule | undefined;
  readonly maxBytes: number;
}

/** One traced request. Events are kept as published (converted only if the trace is written). */
interface Traced {
  readonly ctx: WorkerContext;
  readonly rule: TraceRule;
  readonly start: PipelineRequestEvent;
  readonly maxBytes: number;
  /** Three slots per event, see Kind (the array is reused: its length is not the count). */
  readonly events: unknown[];
  /** Each event's time (performance.now()), reused too. */
  times: Float64Array;
  /** Events kept (MAX_EVENTS bounds it). */
  count: number;
  /** Still being traced (not ended, not written at timeTaken). */
  live: boolean;
  /** Kept in #overflow rather than #inFlight. */
  overflow: boolean;
  /** Status when a failure definition fired first (verbosity), for triggerStatusCode. */
  verbosityTrigger: string | undefined;
  timer: unknown;
  /** timeTaken elapsed (with traceAllAfterTimeout: written at the end). */
  timedOut: boolean;
}

export interface FailedRequestTracerOptions {
  /** The pool this worker serves (the trace's appPoolId). */
  readonly poolName: () => string;
  readonly send: (record: TraceRecordMessage) => void;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** performance.now() and its origin, injectable for tests. */
  readonly now?: () => number;
  readonly timeOrigin?: number;
  /** setTimeout/clearTimeout for timeTaken (unref'd: a trace timer never keeps a worker alive), injectable for tests. */
  readonly timers?: TraceTimers;
}

export interface TraceTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: TraceTimers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class FailedRequestTracer {
  readonly #o: FailedRequestTracerOptions;
  readonly #now: () => number;
  readonly #timeOrigin: number;
  readonly #timers: TraceTimers;
  /** Traced requests in flight (see SCANNED_IN_FLIGHT), and those beyond the scanned ones. */
  readonly #inFlight: Traced[] = [];
  readonly #overflow = new WeakMap<object, Traced>();
  #overflowCount = 0;
  readonly #plans = new WeakMap<ResolvedConfig, Plan>();
  /** How many requests are traced now (in #inFlight or #overflow). */
  #active = 0;
  /** wharf:pipeline:start is subscribed (some site enables traceFailedRequestsLogging). */
  #listening = false;
  /** The other pipeline channels are subscribed. */
  #watching = false;
  /**
   * The last key looked up and what it found: a request's events come in bursts, so most
   * lookups skip the scan. Cleared when that request ends, so no context is held past it.
   */
  #lastKey: object | undefined = undefined;
  #lastTraced: Traced | undefined = undefined;
  readonly #spare: unknown[][] = [];
  readonly #spareTimes: Float64Array[] = [];
  readonly #reported = new WeakSet<TraceRule>();

  constructor(options: FailedRequestTracerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#timeOrigin = options.timeOrigin ?? performance.timeOrigin;
    this.#timers = options.timers ?? REAL_TIMERS;
  }

  /** Listen for requests while some site enables traceFailedRequestsLogging. */
  configure(appHost: AppHostConfig): void {
    const wanted = appHost.sites.some((s) => s.traceFailedRequestsLogging.bool('enabled'));
    if (wanted === this.#listening) return;
    this.#listening = wanted;
    if (wanted) pipelineStart.subscribe(this.#onStart);
    else {
      pipelineStart.unsubscribe(this.#onStart);
      // Requests traced already finish being traced; the last one to end stops the watching.
      if (this.#active === 0) this.#watch(false);
    }
  }

  /** Stop listening (the worker is shutting down). */
  close(): void {
    if (this.#listening) pipelineStart.unsubscribe(this.#onStart);
    this.#listening = false;
    this.#watch(false);
  }

  readonly #onStart = (message: unknown): void => {
    const e = message as PipelineRequestEvent;
    const ctx = e.key;
    if (!(ctx instanceof WorkerContext)) return; // a 500.19: no rule can be read
    let plan = this.#plans.get(ctx.config);
    if (plan === undefined || plan.path !== ctx.request.path) {
      plan = this.#plan(ctx);
      this.#plans.set(ctx.config, plan);
    }
    const rule = plan.rule;
    if (rule === undefined) {
      if (this.#active === 0) this.#watch(false);
      return;
    }
    const events = this.#spare.pop() ?? [];
    const times = this.#spareTimes.pop() ?? new Float64Array(FIRST_TIMES);
    const overflow = this.#inFlight.length >= SCANNED_IN_FLIGHT;
    const t: Traced = { ctx, rule, start: e, maxBytes: plan.maxBytes, events, times, count: 0, live: true, overflow, verbosityTrigger: undefined, timer: undefined, timedOut: false };
    if (overflow) {
      this.#overflow.set(ctx, t);
      this.#overflowCount++;
    } else this.#inFlight.push(t);
    this.#lastKey = ctx;
    this.#lastTraced = t;
    if (rule.timeTakenMs > 0) t.timer = this.#timers.set(() => this.#onTimeTaken(t), rule.timeTakenMs);
    this.#active++;
    if (!this.#watching) this.#watch(true);
  };

  /** The rule and limits for a request's effective configuration (cached by #onStart). */
  #plan(ctx: WorkerContext): Plan {
    const path = ctx.request.path;
    const logging = ctx.site.traceFailedRequestsLogging;
    if (!logging.bool('enabled')) return { path, rule: undefined, maxBytes: 0 };
    const rule = ruleFor(traceRules(ctx.config.section(TRACING_SECTION)), path);
    if (rule !== undefined && rule.problems.length !== 0 && !this.#reported.has(rule)) {
      this.#reported.add(rule);
      for (const p of rule.problems) this.#o.log('warn', `MOD_TRACE_RULE: traceFailedRequests rule for path "${rule.path}": ${p}`);
    }
    const kb = logging.num('maxLogFileSizeKB');
    return { path, rule, maxBytes: kb === 0 ? UNLIMITED_RECORD_BYTES : kb * 1024 };
  }

  /** Subscribe to (or leave) the channels of a traced request's events. */
  #watch(on: boolean): void {
    if (on === this.#watching) return;
    this.#watching = on;
    const method = on ? 'subscribe' : 'unsubscribe';
    moduleStart[method](this.#onModuleStart);
    moduleEnd[method](this.#onModuleEnd);
    handlerChanged[method](this.#onHandler);
    statusSet[method](this.#onStatus);
    moduleTrace[method](this.#onTrace);
    pipelineEnd[method](this.#onEnd);
    this.#lastKey = undefined;
    this.#lastTraced = undefined;
  }

  /** The traced request of an event's key, undefined for a request not traced. */
  #find(key: object): Traced | undefined {
    if (key === this.#lastKey) return this.#lastTraced;
    let t: Traced | undefined;
    const inFlight = this.#inFlight;
    for (let i = inFlight.length - 1; i >= 0; i--) {
      if (inFlight[i]!.ctx === key) {
        t = inFlight[i];
        break;
      }
    }
    if (t === undefined && this.#overflowCount !== 0) t = this.#overflow.get(key);
    this.#lastKey = key;
    this.#lastTraced = t;
    return t;
  }

  readonly #onModuleStart = (m: unknown): void => {
    const e = m as ModuleEvent;
    const t = this.#find(e.key);
    if (t !== undefined) keep(t, Kind.ModuleStart, e.module, e.notification, e.at);
  };

  readonly #onModuleEnd = (m: unknown): void => {
    const e = m as ModuleEvent;
    const t = this.#find(e.key);
    if (t !== undefined) keep(t, Kind.ModuleEnd, e.module, e.notification, e.at);
  };

  readonly #onHandler = (m: unknown): void => {
    const t = this.#find((m as HandlerChangedEvent).key);
    if (t !== undefined) keep(t, Kind.Handler, m, undefined, this.#now());
  };

  readonly #onStatus = (m: unknown): void => {
    const s = m as StatusSetEvent;
    const t = this.#find(s.key);
    if (t === undefined || !keep(t, Kind.Status, s, undefined, this.#now())) return;
    if (t.verbosityTrigger === undefined && t.rule.failureVerbosity > 0 && statusLevel(s) <= t.rule.failureVerbosity) t.verbosityTrigger = statusText(s.status, s.subStatus);
  };

  readonly #onTrace = (m: unknown): void => {
    const tr = m as ModuleTraceEvent;
    const t = this.#find(tr.key);
    if (t === undefined || !keep(t, Kind.Trace, tr, undefined, this.#now())) return;
    const level = tr.level;
    if (t.verbosityTrigger === undefined && level > 0 && level <= t.rule.failureVerbosity) t.verbosityTrigger = statusText(t.ctx.response.statusCode, t.ctx.response.subStatus);
  };

  readonly #onEnd = (message: unknown): void => {
    const e = message as PipelineRequestEndEvent;
    const t = this.#find(e.key);
    this.#lastKey = undefined;
    this.#lastTraced = undefined;
    if (t === undefined) return;
    this.#forget(t);
    const rule = t.rule;
    const elapsed = e.at - t.start.at;
    const status = statusText(e.status, e.subStatus);
    let reason: TraceRecordMessage['failureReason'] | undefined;
    let trigger = status;
    if (statusMatches(rule.statusCodes, e.status, e.subStatus)) reason = 'STATUS_CODE';
    else if (t.timedOut || (rule.timeTakenMs > 0 && elapsed >= rule.timeTakenMs)) reason = 'TIME_TAKEN';
    else if (t.verbosityTrigger !== undefined) {
      reason = 'VERBOSITY';
      trigger = t.verbosityTrigger;
    }
    if (reason !== undefined) this.#write(t, reason, status, trigger, elapsed, e);
    this.#recycle(t);
  };

  #onTimeTaken(t: Traced): void {
    t.timer = undefined;
    if (!t.live) return;
    t.timedOut = true;
    if (t.rule.traceAllAfterTimeout) return; // written whole at the end
    // IIS writes the trace now, with the events so far, and stops tracing the request.
    this.#forget(t);
    const res = t.ctx.response;
    const status = statusText(res.statusCode, res.subStatus);
    this.#write(t, 'TIME_TAKEN', status, status, this.#now() - t.start.at, undefined);
    this.#recycle(t);
  }

  #forget(t: Traced): void {
    t.live = false;
    if (t.overflow) {
      this.#overflow.delete(t.ctx);
      this.#overflowCount--;
    } else {
      // Order does not matter: the last entry takes the place of the one leaving.
      const inFlight = this.#inFlight;
      const i = inFlight.lastIndexOf(t);
      const last = inFlight.pop()!;
      if (last !== t) inFlight[i] = last;
    }
    if (this.#lastKey === t.ctx) {
      this.#lastKey = undefined;
      this.#lastTraced = undefined;
    }
    if (t.timer !== undefined) this.#timers.clear(t.timer);
    t.timer = undefined;
    // Still watching (see the file's comment), unless no site traces any more.
    if (--this.#active === 0 && !this.#listening) this.#watch(false);
  }

  /** The request's event array, emptied (no payload kept alive), back for the next request. */
  #recycle(t: Traced): void {
    const ev = t.events;
    const n = t.count * 3;
    t.count = 0;
    if (n > SPARE_ARRAY_SLOTS || this.#spare.length >= SPARE_ARRAYS) return;
    for (let i = 0; i < n; i++) ev[i] = undefined;
    this.#spare.push(ev);
    if (t.times.length === FIRST_TIMES) this.#spareTimes.push(t.times);
  }

  #write(t: Traced, reason: TraceRecordMessage['failureReason'], status: string, trigger: string, elapsed: number, end: PipelineRequestEndEvent | undefined): void {
    const ctx = t.ctx;
    const req = ctx.request;
    const host = req.headers['host'] ?? `${req.localAddress}:${req.localPort}`;
    const secure = req.secure;
    const url = `${secure ? 'https' : 'http'}://${hostWithPort(host, req.localPort)}${t.start.url}`;
    const events = this.#events(t, end);
    const record: TraceRecordMessage = {
      siteId: ctx.site.id,
      url,
      verb: req.method,
      userName: ctx.user,
      authenticationType: ctx.user === '' ? 'anonymous' : 'NOT_AVAILABLE',
      // IIS's activity id names the request in ETW; only a written trace shows it, so it is drawn here.
      activityId: `{${randomUUID().toUpperCase()}}`,
      failureReason: reason,
      statusCode: status,
      triggerStatusCode: trigger,
      timeTaken: Math.max(0, Math.round(elapsed)),
      events: fitEvents(events, t.maxBytes),
    };
    this.#o.send(record);
  }

  /** The buffered events as FREB events, filtered by the rule's areas and verbosity. */
  #events(t: Traced, end: PipelineRequestEndEvent | undefined): TraceEventRecord[] {
    const rule = t.rule;
    const out: TraceEventRecord[] = [];
    const origin = this.#timeOrigin;
    const add = (opcode: string, area: string, level: number, at: number, data: [string, string, string][]): void => {
      if (keepsEvent(rule, area, level)) out.push({ opcode, area, level, time: origin + at, data });
    };
    const s = t.start;
    const req = t.ctx.request;
    add('GENERAL_REQUEST_START', 'General', 0, s.at, [
      ['SiteId', String(s.siteId), ''],
      ['AppPoolId', this.#o.poolName(), ''],
      ['RequestURL', s.url, ''],
      ['RequestVerb', s.method, ''],
    ]);
    add('GENERAL_ENDPOINT_INFORMATION', 'General', 4, s.at, [
      ['RemoteAddress', req.remoteAddress, ''],
      ['RemotePort', String(req.remotePort), ''],
      ['LocalAddress', req.localAddress, ''],
      ['LocalPort', String(req.localPort), ''],
    ]);
    add('GENERAL_REQUEST_HEADERS', 'General', 4, s.at, [['Headers', headerBlock(req.rawHeaders), '']]);
    const ev = t.events;
    for (let n = 0; n < t.count; n++) {
      const kind = ev[n * 3] as Kind;
      const payload = ev[n * 3 + 1];
      const at = t.times[n]!;
      switch (kind) {
        case Kind.ModuleStart:
        case Kind.ModuleEnd: {
          add(kind === Kind.ModuleStart ? 'NOTIFY_MODULE_START' : 'NOTIFY_MODULE_END', 'RequestNotifications', 5, at, [
            ['ModuleName', payload as string, ''],
            notificationData(ev[n * 3 + 2] as string),
            ['fIsPostNotification', 'false', ''],
          ]);
          break;
        }
        case Kind.Handler: {
          const h = payload as HandlerChangedEvent;
          add('HANDLER_CHANGED', 'General', 4, at, [
            ['OldHandlerName', h.oldHandler, ''],
            ['NewHandlerName', h.newHandler, ''],
            ['NewHandlerModules', h.modules, ''],
            ['NewHandlerScriptProcessor', h.scriptProcessor, ''],
            ['NewHandlerType', h.type, ''],
          ]);
          break;
        }
        case Kind.Status: {
          const st = payload as StatusSetEvent;
          const error = st.status >= 400;
          add(error ? 'MODULE_SET_RESPONSE_ERROR_STATUS' : 'MODULE_SET_RESPONSE_SUCCESS_STATUS', 'RequestNotifications', statusLevel(st), at, [
            ['ModuleName', st.module, ''],
            notificationData(st.notification),
            ['HttpStatus', String(st.status), ''],
            ['HttpReason', st.reason, ''],
            ['HttpSubStatus', String(st.subStatus), ''],
            ['ErrorCode', String(st.errorCode >>> 0), st.errorCode === 0 ? 'The operation completed successfully. (0x0)' : formatHResult(st.errorCode)],
            ['ConfigExceptionInfo', '', ''],
          ]);
          if (error && st.description !== '') add('SET_RESPONSE_ERROR_DESCRIPTION', 'RequestNotifications', 3, at, [['ErrorDescription', st.description, '']]);
          break;
        }
        case Kind.Trace: {
          const tr = payload as ModuleTraceEvent;
          const data: [string, string, string][] = [['ModuleName', tr.module, '']];
          for (const [name, value] of Object.entries(tr.data)) data.push([name, String(value), '']);
          add(tr.opcode, tr.area, tr.level, at, data);
          break;
        }
      }
    }
    if (end !== undefined) {
      add('GENERAL_REQUEST_END', 'General', 0, end.at, [
        ['BytesSent', String(end.bytesSent), ''],
        ['BytesReceived', String(Math.max(0, req.contentLength)), ''],
        ['HttpStatus', String(end.status), ''],
        ['HttpSubStatus', String(end.subStatus), ''],
      ]);
    }
    return out;
  }
}

/** Keeps one event (see Kind); false when the request has MAX_EVENTS already. */
function keep(t: Traced, kind: Kind, a: unknown, b: string | undefined, at: number): boolean {
  const n = t.count;
  if (n >= MAX_EVENTS) return false;
  if (n === t.times.length) {
    const grown = new Float64Array(Math.min(n * 2, MAX_EVENTS));
    grown.set(t.times);
    t.times = grown;
  }
  t.times[n] = at;
  const ev = t.events;
  ev[n * 3] = kind;
  ev[n * 3 + 1] = a;
  ev[n * 3 + 2] = b;
  t.count = n + 1;
  return true;
}

/** MODULE_SET_RESPONSE_ERROR_STATUS is a Warning (3), a success status Informational (4). */
function statusLevel(s: StatusSetEvent): number {
  return s.status >= 400 ? 3 : 4;
}

/** `404`, `404.2`: the status as FREB's statusCode attribute shows it. */
export function statusText(status: number, subStatus: number): string {
  return subStatus === 0 ? String(status) : `${status}.${subStatus}`;
}

function notificationData(notification: string): [string, string, string] {
  const n = NOTIFICATION_MASK[notification];
  return n === undefined ? ['Notification', '0', notification] : ['Notification', String(n[0]), n[1]];
}

function headerBlock(raw: readonly string[]): string {
  let s = '';
  for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return s;
}

function hostWithPort(host: string, port: number): string {
  // IIS's trace url always names the port.
  if (/:\d+$/.test(host) && !host.endsWith(']')) return host;
  return `${host}:${port}`;
}

/**
 * Events that fit the site's maxLogFileSizeKB: the record is sent (and the file written) with the
 * events up to the limit, as IIS stops writing a trace file at its size cap. The request's end is
 * kept when anything was dropped, so the trace still shows how it ended.
 */
export function fitEvents(events: readonly TraceEventRecord[], maxBytes: number): TraceEventRecord[] {
  // The envelope (root attributes, XML declaration) is under 2 KiB; each event's XML is about
  // three times its JSON, which is what the limit is checked against here.
  let budget = Math.max(0, maxBytes - 2048);
  const out: TraceEventRecord[] = [];
  const last = events[events.length - 1];
  const lastCost = last === undefined ? 0 : eventCost(last);
  for (let i = 0; i < events.length; i++) {
    const cost = eventCost(events[i]!);
    const reserve = i === events.length - 1 ? 0 : lastCost;
    if (cost + reserve > budget) {
      if (last !== undefined && lastCost <= budget && last.opcode === 'GENERAL_REQUEST_END') out.push(last);
      return out;
    }
    budget -= cost;
    out.push(events[i]!);
  }
  return out;
}

/** Bytes an event takes in the trace file, estimated from its JSON (escaping included). */
function eventCost(e: TraceEventRecord): number {
  return 1100 + Buffer.byteLength(JSON.stringify(e.data)) * 2;
}
