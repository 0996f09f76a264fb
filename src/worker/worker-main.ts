/**
 * A worker process (w3wp's role): `node worker-main.js -ap "<pool>"`, so `ps` shows the pool.
 * It talks to the listener over the private socket it inherits as fd 3 and serves the pool's
 * requests through the pipeline. Application code runs here, never in the main process.
 */
import { readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ConfigSystem, describeWarning, loadAppHost, warningKey } from '../config/index.js';
import type { AppHostConfig } from '../config/types.js';
import { WorkerChannel } from '../ipc/channel.js';
import { WorkerControlChannel } from '../ipc/control-channel.js';
import type { CacheableMessage, ConfigMessage, FileBodyMessage, RequestHeadMessage, ResponseEndMessage, WorkerInbound } from '../ipc/messages.js';
import { BUILTIN_MODULES, createCustomErrorModule, preloadBuiltinErrorPages } from '../modules/index.js';
import { StatCache } from './stat-cache.js';
import { ControlCredentialClient } from './credential-client.js';
import type { ResponseTransport } from './http-context.js';
import { ModuleRegistry } from './module-registry.js';
import type { WorkerServices } from './module-api.js';
import { textForLog, Pipeline } from './pipeline.js';
import { RequestBody, type BodyFlowControl } from './request-body.js';
import { runApplicationInitialization } from './app-init.js';
import { FailedRequestTracer } from './failed-request-tracer.js';
import { dropPrivileges, privilegeTargetFromEnv } from './privileges.js';
import { closeInheritedDescriptors } from '../ipc/inherited-descriptors.js';
import { ModuleError, TelemetryError } from '../errors.js';
import { tracingEnabled } from '../tracing/otel-env.js';
import type { PipelineTracingHandle } from '../tracing/index.js';
import { poolKey } from '../config/pool-key.js';

/** The pool from `-ap "<pool>"`, or undefined for `--spare` (a pool is assigned by the Init message). */
function poolFromArgv(argv: readonly string[]): string | undefined {
  if (argv.includes('--spare')) return undefined;
  const i = argv.indexOf('-ap');
  const name = i === -1 ? undefined : argv[i + 1];
  if (name === undefined || name === '') {
    process.stderr.write('usage: worker-main -ap "<application pool>" | --spare (started by the Wharf server; fd 3 is its request channel, fd 4 the control channel)\n');
    process.exit(2);
  }
  return name;
}

/** `Connection: upgrade` with an Upgrade header (the listener parsed the same rule, RFC 9110 §7.8). */
function isUpgradeRequest(raw: readonly string[]): boolean {
  let upgrade = false;
  let connection = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 7 && name.toLowerCase() === 'upgrade') upgrade = true;
    else if (name.length === 10 && name.toLowerCase() === 'connection' && /(?:^|,)\s*upgrade\s*(?:,|$)/i.test(raw[i + 1]!)) connection = true;
  }
  return upgrade && connection;
}

/** The private channel to the listener: stdio[3] of the spawn in src/was/worker-process.ts. */
const CHANNEL_FD = 3;
/** WAS's control channel (ready, ping/pong, recycle requests, app hints: src/ipc/control-messages.ts). */
const CONTROL_FD = 4;

const IDENTITY_VARIABLES = ['WHARF_WORKER_UID', 'WHARF_WORKER_GID', 'WHARF_WORKER_USER'];

/**
 * Become the pool's user (when WHARF_WORKER_UID/GID/USER say so), with Wharf's code loaded and
 * before any configuration, module or request is touched. Never serve as root by mistake.
 */
function becomePoolUser(): void {
  try {
    const target = privilegeTargetFromEnv(process.env);
    if (target !== undefined) dropPrivileges(target);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
  for (const name of IDENTITY_VARIABLES) delete process.env[name];
}

/**
 * One request's stream on the channel: its body queue, flow state, and the ResponseTransport the
 * pipeline writes to. A class rather than a bag of closures: one allocation per request.
 */
/**
 * Response bytes one turn may batch for the channel before a producer must wait for the flush: a
 * handler that writes in a synchronous loop (a hosted app piping a generator) yields to I/O here.
 */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** A buffered response with a larger body leaves as head, body and end frames (see complete()). */
const SPLIT_COMPLETE_BYTES = 16 * 1024;

class Stream implements ResponseTransport, BodyFlowControl {
  readonly id: number;
  readonly requestBody: RequestBody | undefined;
  paused = false;
  aborted = false;
  waiters: Array<() => void> = [];
  /** Handlers waiting to hear that the client went away (HttpResponse.onClientAbort). */
  abortListeners: Array<() => void> | undefined = undefined;
  /** The listener was told it may cache this response (it then needs it as one frame). */
  #cacheable = false;
  /** A body may go by reference to an open file (HttpResponse.writeFile): not when the listener asked for bytes. */
  readonly fileReferences: boolean;
  readonly #worker: Worker;
  readonly #channel: WorkerChannel;

  constructor(worker: Worker, channel: WorkerChannel, id: number, hasBody: boolean, fileReferences: boolean) {
    this.id = id;
    this.#worker = worker;
    this.#channel = channel;
    this.requestBody = hasBody ? new RequestBody(this) : undefined;
    this.fileReferences = fileReferences && !hasBody;
  }

  onAbort(listener: () => void): void {
    if (this.aborted) {
      queueMicrotask(listener);
      return;
    }
    (this.abortListeners ??= []).push(listener);
  }

  // BodyFlowControl: the handler reads the body slower than it arrives.
  pause(): void {
    this.#channel.sendRequestPause(this.id);
  }
  resume(): void {
    this.#channel.sendRequestResume(this.id);
  }

  head(status: number, reason: string, headers: string[]): void {
    if (!this.aborted) this.#channel.sendResponseHead(this.id, { status, reason, headers });
  }
  body(chunk: Buffer): boolean {
    if (this.aborted) return true;
    const channel = this.#channel;
    channel.sendResponseBody(this.id, chunk);
    return channel.writable && !this.paused && channel.queuedBytes < MAX_QUEUED_BYTES;
  }
  writable(): Promise<void> {
    const channel = this.#channel;
    if (this.aborted || (channel.writable && !this.paused && channel.queuedBytes < MAX_QUEUED_BYTES)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const check = (): void => {
        if (this.aborted || channel.closed) return resolve();
        if (this.paused) this.waiters.push(check);
        else if (!channel.writable) channel.onceDrain(check);
        // Let the batch go out (and the listener's pause frames come in) before more is produced.
        else if (channel.queuedBytes >= MAX_QUEUED_BYTES) channel.onceFlushed(check);
        else resolve();
      };
      check();
    });
  }
  end(info: ResponseEndMessage): void {
    if (!this.aborted) this.#channel.sendResponseEnd(this.id, info);
    this.#worker.streamDone(this);
  }
  interim(status: number, headers: readonly string[]): void {
    if (!this.aborted) this.#channel.sendResponseInterim(this.id, status, headers);
  }
  logUrl(path: string, query: string): void {
    if (!this.aborted) this.#channel.sendResponseLogUrl(this.id, path, query);
  }
  cacheable(hint: CacheableMessage): void {
    this.#cacheable = true;
    if (!this.aborted) this.#channel.sendResponseCacheable(this.id, hint);
  }
  complete(status: number, reason: string, headers: string[], body: readonly Buffer[], bodyBytes: number, info: ResponseEndMessage): void {
    if (!this.aborted) {
      const channel = this.#channel;
      if (bodyBytes > SPLIT_COMPLETE_BYTES && !this.#cacheable) {
        // A large body goes as body frames, which the listener hands to the client piece by
        // piece as they arrive instead of joining one big frame first. (A response the listener
        // may cache stays one frame: the cache keeps it whole.)
        channel.sendResponseHead(this.id, { status, reason, headers });
        for (let i = 0; i < body.length; i++) channel.sendResponseBody(this.id, body[i]!);
        channel.sendResponseEnd(this.id, info);
      } else {
        channel.sendResponseComplete(this.id, { status, reason, headers }, body, bodyBytes, info);
      }
    }
    this.#worker.streamDone(this);
  }
  file(status: number, reason: string, headers: string[], file: FileBodyMessage, info: ResponseEndMessage): void {
    if (!this.aborted) this.#channel.sendResponseFile(this.id, { status, reason, headers }, file, info);
    this.#worker.streamDone(this);
  }
  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

class Worker implements WorkerInbound {
  #poolName: string;
  readonly #channel: WorkerChannel;
  readonly #control: WorkerControlChannel;
  readonly #streams = new Map<number, Stream>();
  readonly #statCache = new StatCache();
  #pipeline: Pipeline | undefined;
  #registry: ModuleRegistry | undefined;
  #generation = -1;
  #shuttingDown = false;
  readonly #reported = new Set<string>();
  /** When a too-long path was last reported, and how many were not since (clients choose them). */
  #tooLongReportedAt = -Infinity;
  #tooLongUnreported = 0;

  /** OpenTelemetry's worker and module spans, when an OTLP endpoint is set (src/tracing/). */
  readonly #tracing: PipelineTracingHandle | undefined;
  /** Settles when the configuration being installed is in place; undefined when none is. */
  #installing: Promise<void> | undefined;

  constructor(poolName: string | undefined, tracing: PipelineTracingHandle | undefined) {
    this.#poolName = poolName ?? '';
    this.#tracing = tracing;
    const socket = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
    this.#channel = new WorkerChannel(socket, this);
    // Health is answered here, from this process's event loop: a worker whose loop is stuck
    // (a busy loop, a deadlock) misses WAS's pingResponseTime and is replaced.
    this.#control = new WorkerControlChannel(new Socket({ fd: CONTROL_FD, readable: true, writable: true }), {
      ping: (id) => this.#control.sendPong(id),
      credentialResult: (id, result) => this.#credentials.answer(id, result),
      credentialsChanged: () => this.#credentials.flush(),
      // WAS is gone (the main process died): nothing can reach us any more.
      closed: () => {
        this.#credentials.closed();
        process.exit(0);
      },
    });
    // A hosted app that throws out of a callback or calls process.exit ends this process (the
    // pool's crash rules apply); responses it finished just before still go out, and WAS is told
    // why, so its exit line names the cause and not only an exit code.
    process.on('uncaughtExceptionMonitor', (err) => {
      this.#channel.flushNow();
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      this.#sayExiting(`the pool's code threw ${what}`);
    });
    process.on('exit', (code) => {
      this.#channel.flushNow();
      if (code !== 0) this.#sayExiting(`process.exit(${code}) was called`);
    });
  }

  #exitSaid = false;
  /** The worker's last word to WAS (ControlType.Exiting); said once. */
  #sayExiting(reason: string): void {
    if (this.#exitSaid) return;
    this.#exitSaid = true;
    this.#control.sendExiting({ reason });
  }

  #log = (level: 'info' | 'warn' | 'error', message: string): void => {
    this.#channel.sendLog({ level, message });
  };

  /** A coded warning for the main log (tracing's export failures: src/tracing/otel-sdk.ts). */
  warn(err: TelemetryError): void {
    this.#log('warn', `${err.code}: ${err.message}`);
  }

  /**
   * A URL level named a folder path the file system refuses (ENAMETOOLONG); the request is
   * answered 404. One shortened line at most once a minute: clients choose these URLs, and each
   * may be kilobytes long.
   */
  #pathTooLong(folder: string): void {
    const now = Date.now();
    if (now - this.#tooLongReportedAt < 60_000) {
      this.#tooLongUnreported++;
      return;
    }
    const more = this.#tooLongUnreported === 0 ? '' : ` (${this.#tooLongUnreported} more since the last report)`;
    this.#tooLongReportedAt = now;
    this.#tooLongUnreported = 0;
    this.#log('warn', `a URL maps to a path longer than the file system allows (ENAMETOOLONG), answered as not found: ${textForLog(folder)}${more}`);
  }

  /** Failed Request Tracing: listens only while a site enables it (configure). */
  readonly #tracer = new FailedRequestTracer({
    poolName: () => this.#poolName,
    send: (record) => {
      if (!this.#channel.closed) this.#channel.sendTraceRecord(record);
    },
    log: (level, message) => this.#log(level, message),
  });

  /** Credential checks by the main process, over the control channel (credential-client.ts). */
  readonly #credentials = new ControlCredentialClient((id, request) => this.#control.sendCredentialCheck(id, request));

  #recycleAsked = false;
  /** The main process's --system-drive (from the configuration message). */
  #systemDrive = '/';
  readonly #services: WorkerServices = {
    poolName: () => this.#poolName,
    systemDrive: () => this.#systemDrive,
    requestRecycle: (reason) => {
      if (this.#recycleAsked || this.#shuttingDown) return;
      this.#recycleAsked = true;
      this.#control.sendRecycleRequest({ reason });
    },
    appHints: (processes, shutdownTimeLimitMs) => {
      if (!this.#shuttingDown) this.#control.sendAppHints({ processes, shutdownTimeLimitMs });
    },
    log: (level, message) => this.#log(level, message),
    credentials: this.#credentials,
  };

  init(msg: ConfigMessage): void {
    if (msg.assign !== undefined && this.#poolName === '') {
      // A pre-started spare becomes the pool's worker: its environment, its name, its user.
      Object.assign(process.env, msg.assign);
      this.#poolName = msg.poolName;
      process.title = `wharf-worker -ap "${msg.poolName}"`;
      becomePoolUser();
    }
    void this.#configure(msg, true);
  }

  config(msg: ConfigMessage): void {
    void this.#configure(msg, false);
  }

  async #configure(msg: ConfigMessage, first: boolean): Promise<void> {
    if (msg.generation <= this.#generation) return;
    this.#systemDrive = msg.systemDrive;
    let appHost: AppHostConfig;
    try {
      appHost = loadAppHost(msg.configFile, msg.configText, { systemDrive: msg.systemDrive, variables: msg.variables });
    } catch (err) {
      // The main process validated this text; failing here means a bug, and serving with the
      // previous configuration is the safe choice.
      this.#log('error', `worker could not load configuration generation ${msg.generation}: ${(err as Error).message}`);
      if (first) {
        this.#sayExiting(`its configuration (generation ${msg.generation}) could not be loaded: ${(err as Error).message}`);
        process.exit(1);
      }
      return;
    }
    // Requests that arrive while this generation is being installed (global modules load
    // asynchronously) wait for it: a request the main process sent after the change runs under it.
    let installed!: () => void;
    const installing = new Promise<void>((resolve) => (installed = resolve));
    this.#installing = installing;
    let pipeline: Pipeline;
    let configSystem: ConfigSystem;
    try {
      this.#generation = msg.generation;
      const registry = this.#registry ?? new ModuleRegistry((m) => this.#log('warn', m), this.#services);
      if (this.#registry === undefined) {
        for (const def of BUILTIN_MODULES) {
          // CustomErrorModule needs the system drive to find error files under C:\ paths.
          registry.register(def.name === 'CustomErrorModule' ? createCustomErrorModule({ systemDrive: msg.systemDrive }) : def);
        }
        this.#registry = registry;
      }
      await registry.loadGlobalModules(appHost.section('system.webServer/globalModules'));
      const pool = appHost.applicationPools.find((p) => poolKey(p.name) === poolKey(this.#poolName));
      configSystem = new ConfigSystem(appHost, {
        systemDrive: msg.systemDrive,
        variables: msg.variables,
        onUnsupported: (u) => {
          if (u.position.file === appHost.file) return; // the main process reports applicationHost.config
          const key = `${u.position.file}\0${u.section}`;
          if (this.#reported.has(key)) return;
          this.#reported.add(key);
          this.#log('info', `${u.position.file}:${u.position.line}: section ${u.section} is not supported by Wharf yet; kept and ignored`);
        },
        // Settings read but not enforced (config-warnings.ts), once per worker for each web.config.
        onWarning: (w) => {
          const key = warningKey(w);
          if (this.#reported.has(key)) return;
          this.#reported.add(key);
          this.#log(w.kind === 'feature' ? 'info' : 'warn', describeWarning(w));
        },
        onPathTooLong: (folder) => this.#pathTooLong(folder),
      });
      this.#statCache.clear();
      pipeline = new Pipeline({
        poolName: this.#poolName,
        pool: {
          managedRuntimeVersion: pool?.element.str('managedRuntimeVersion') ?? '',
          managedPipelineMode: pool?.element.enumName('managedPipelineMode') ?? 'Integrated',
        },
        registry,
        config: configSystem,
        statCache: this.#statCache,
        log: this.#log,
      });
      this.#pipeline = pipeline;
      this.#tracer.configure(appHost);
    } finally {
      if (this.#installing === installing) this.#installing = undefined;
      installed();
    }
    if (!first) return;
    // Warm the pool's preloadEnabled applications before WAS routes traffic here.
    await runApplicationInitialization(this.#poolName, appHost, configSystem, pipeline, this.#log).catch((err: unknown) =>
      this.#log('warn', `applicationInitialization failed: ${(err as Error).message}`),
    );
    this.#control.sendReady();
  }

  requestHead(stream: number, head: RequestHeadMessage): void {
    if (this.#pipeline === undefined && this.#installing === undefined) {
      this.#log('error', 'request received before configuration');
      return;
    }
    // An upgrade request has no body, but after a 101 the client's bytes of the new protocol
    // arrive as body frames on the same stream.
    const st = new Stream(this, this.#channel, stream, head.contentLength !== 0 || isUpgradeRequest(head.rawHeaders), head.bytes !== true);
    this.#streams.set(stream, st);
    if (this.#installing !== undefined) {
      void this.#installing.then(() => this.#run(head, st));
      return;
    }
    this.#run(head, st);
  }

  #run(head: RequestHeadMessage, st: Stream): void {
    const pipeline = this.#pipeline;
    if (pipeline === undefined) {
      this.#log('error', 'request received before configuration');
      return;
    }
    pipeline.run(head, st, st.requestBody).catch(this.#pipelineFailed);
  }

  readonly #pipelineFailed = (err: unknown): void => {
    this.#log('error', `pipeline failure: ${(err as Error).stack ?? String(err)}`);
  };

  streamDone(st: Stream): void {
    this.#streams.delete(st.id);
    if (this.#shuttingDown && this.#streams.size === 0) this.#exitSoon();
  }

  requestBody(stream: number, chunk: Buffer): void {
    this.#streams.get(stream)?.requestBody?.push(chunk);
  }
  requestEnd(stream: number, trailers: readonly string[]): void {
    this.#streams.get(stream)?.requestBody?.end(trailers);
  }
  requestAbort(stream: number): void {
    const s = this.#streams.get(stream);
    if (s === undefined) return;
    s.aborted = true;
    s.requestBody?.fail(new ModuleError('MOD_CLIENT_DISCONNECTED', 'the client disconnected'));
    s.wake();
    const listeners = s.abortListeners;
    s.abortListeners = undefined;
    if (listeners !== undefined) for (const f of listeners) f();
  }
  responsePause(stream: number): void {
    const s = this.#streams.get(stream);
    if (s !== undefined) s.paused = true;
  }
  responseResume(stream: number): void {
    const s = this.#streams.get(stream);
    if (s === undefined) return;
    s.paused = false;
    s.wake();
  }
  shutdown(): void {
    this.#shuttingDown = true;
    if (this.#streams.size === 0) this.#exitSoon();
  }
  closed(): void {
    // The listener is gone: nothing can reach us any more. Batched spans get a second to leave.
    if (this.#tracing === undefined) process.exit(0);
    void this.#tracing.shutdown(1000).finally(() => process.exit(0));
  }
  #exitSoon(): void {
    this.#channel.close();
    if (this.#tracing === undefined) {
      setTimeout(() => process.exit(0), 50).unref();
      return;
    }
    // The last requests' spans are batched: export them first, bounded (a collector that does
    // not answer must not keep a draining worker alive until WAS's shutdownTimeLimit kills it).
    const exit = (): never => process.exit(0);
    void Promise.all([this.#tracing.shutdown(3000), new Promise((r) => setTimeout(r, 50))]).then(exit, exit);
  }
}

// Before any configuration, module or application code: the worker keeps 0-2 and its channel
// (fd 3) and WAS's control channel (fd 4); anything else it inherited without close-on-exec is closed (inherited-descriptors.ts).
closeInheritedDescriptors([CHANNEL_FD, CONTROL_FD]);
const pool = poolFromArgv(process.argv);
// Wharf's own files, read before the worker becomes a pool's user who may not reach them.
preloadBuiltinErrorPages();
if (pool === undefined) {
  // A spare: everything is loaded; it waits, as the server's user, for a pool to need it. Parsing
  // Wharf's own embedded configuration once now makes the parser's code hot for the real one.
  process.title = 'wharf-worker --spare';
  setTimeout(warmUpConfigParser, 50).unref();
} else {
  process.title = `wharf-worker -ap "${pool}"`;
  becomePoolUser();
}
// OpenTelemetry, only when an OTLP endpoint is set (src/tracing/otel-env.ts): loaded before the
// channel opens, so the first request is traced. A failure to load it costs tracing, not serving.
let worker: Worker | undefined;
let tracingFailure: unknown;
const tracing = tracingEnabled(process.env)
  ? await import('../tracing/index.js')
      .then((t) => t.startPipelineTracing({ warn: (err) => worker?.warn(err) }))
      .catch((err: unknown) => {
        tracingFailure = err;
        return undefined;
      })
  : undefined;
worker = new Worker(pool, tracing);
if (tracingFailure !== undefined) {
  worker.warn(new TelemetryError('OTEL_CONFIG', `this worker exports no spans: the OpenTelemetry SDK could not be loaded: ${(tracingFailure as Error).message}`, { cause: tracingFailure }));
}

function warmUpConfigParser(): void {
  const file = fileURLToPath(new URL('../../../assets/default/applicationHost.config', import.meta.url));
  try {
    const text = readFileSync(file, 'utf8');
    // Once: a pool's first request took as long after one parse as after three (~70 ms here),
    // and the second and third cost the worker that takes this spare 4.5 MiB of private memory
    // (optimised code and the old generation they grew) for as long as it lives.
    loadAppHost(file, text, { systemDrive: '/nonexistent', variables: { WHARF_WWWROOT: '/nonexistent' } });
  } catch {
    // only an optimisation
  }
}
