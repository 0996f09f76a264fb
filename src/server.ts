/**
 * The main process (W3SVC + WAS + HTTP.sys in one trusted process that never runs application
 * code): loads and watches applicationHost.config, applies each valid version live, and wires
 * the listener to the activation service.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';
import { appHostWarnings, describeWarning, loadAppHost, readConfigText, resolvePathAttribute, scanSiteConfigs, warningKey } from './config/index.js';
import { fastCgiWarnings } from './modules/fastcgi/check.js';
import type { AppHostConfig } from './config/types.js';
import { ConfigError, WharfError } from './errors.js';
import type { ConfigMessage } from './ipc/messages.js';
import { mapWindowsPath } from './config/path-map.js';
import { Listener, type ListenerLogger } from './listener/listener.js';
import { HTTP_PARAMETERS_ENV, httpSysParameters } from './listener/http-sys-parameters.js';
import { resolveLogAccess, setLogAccess } from './listener/logging/log-access.js';
import { ActivationService } from './was/activation.js';
import { PoolOutputLogs } from './was/pool-output-log.js';
import { poolSettings, type PoolSettings } from './was/pool-settings.js';
import { poolKey } from './config/pool-key.js';
import { accessProblem, ensureCompressionDirectory, ensureRuntimeDirectory, identityWarning, resolvePoolIdentity, workerIdentityEnvironment, type PoolIdentity } from './was/identity.js';
import type { WorkerLaunch } from './was/activation.js';
import { referencedEnvironment } from './was/worker-environment.js';
import { tracingEnabled } from './tracing/otel-env.js';
import { CertificateSource } from './tls/index.js';
import { AcmeManager, type AcmeWantedHost } from './tls/acme.js';
import { NegotiateAcceptor } from './security/negotiate.js';
import { CredentialService } from './security/credential-service.js';
import type { TracingHandle } from './tracing/index.js';
import { adminSocketPath } from './admin/paths.js';
import { startAdminServer, type AdminServer } from './admin/socket.js';
import { adminDone, adminNotFound, appObjects, appPoolObjects, requestObjects, siteObjects, traceObjects, vdirObjects, workerObjects } from './admin/objects.js';
import type { AdminObject, AdminObjectKind, AdminStatus, AdminTarget } from './admin/types.js';
import { AdminError } from './errors.js';
import { configApplied, configRejected } from './diagnostics.js';
import { formatAddress, startMetrics, type Metrics, type MetricsAddress, type MetricsCatalogue } from './metrics/index.js';

/** Wharf's bundled files (default site, custom error pages): `%IIS_BIN%` points here. */
export const ASSETS_DIR = fileURLToPath(new URL('../../assets/', import.meta.url));
export const DEFAULT_CONFIG = join(ASSETS_DIR, 'default', 'applicationHost.config');

export interface ServerOptions {
  /** applicationHost.config to load; undefined → Wharf's embedded default. */
  readonly configFile?: string | undefined;
  /** Where `%SystemDrive%` and `C:\` point (see docs/configuration.md). */
  readonly systemDrive?: string | undefined;
  /** With the embedded default: serve this folder instead of the welcome site. */
  readonly root?: string | undefined;
  /** With the embedded default: listen on this port instead of 8080. */
  readonly port?: number | undefined;
  /**
   * With the embedded default: serve https (the development certificate) on this port instead
   * of 8443; 0 turns it off. Given --port without it, the embedded default serves no https.
   */
  readonly httpsPort?: number | undefined;
  /** Owner of the log files, `user[:group]` (--log-owner); default root:wharf-logs as root (log-access.ts). */
  readonly logOwner?: string | undefined;
  readonly logger?: ListenerLogger;
  /** Serve Prometheus metrics at http://HOST:PORT/metrics (--metrics-address); undefined → metrics off, nothing subscribes. */
  readonly metricsAddress?: MetricsAddress | undefined;
}

/** The names the metrics label by: the configuration's sites and pools. */
function metricsCatalogue(config: AppHostConfig): MetricsCatalogue {
  return { sites: new Map(config.sites.map((site) => [site.id, site.name])), pools: config.applicationPools.map((p) => p.name) };
}

/** A binding's host name answers `host`: the same name, a wildcard covering one label (*.example.com), or none. */
function bindingAnswers(bindingHost: string, host: string): boolean {
  const b = bindingHost.toLowerCase();
  if (b === '' || b === host) return true;
  return b.startsWith('*.') && host.endsWith(b.slice(1)) && !host.slice(0, host.length - b.length + 1).includes('.');
}

/**
 * Host names of https bindings whose certificate comes from the Central Certificate Store
 * (sslFlags 2), with the ports of the http and https bindings that answer each: the ACME manager
 * validates by HTTP-01 when one is on the CA's HTTP-01 port, else by TLS-ALPN-01.
 */
function acmeHosts(config: AppHostConfig): AcmeWantedHost[] {
  const names = new Set<string>();
  for (const site of config.sites) {
    for (const b of site.bindings) {
      if (b.protocol.toLowerCase() === 'https' && (b.sslFlags & 2) !== 0 && b.host !== '' && !b.host.startsWith('*.')) names.add(b.host.toLowerCase());
    }
  }
  return [...names].map((host) => {
    const httpPorts = new Set<number>();
    const httpsPorts = new Set<number>();
    for (const site of config.sites) {
      for (const b of site.bindings) {
        const protocol = b.protocol.toLowerCase();
        if ((protocol === 'http' || protocol === 'https') && bindingAnswers(b.host, host)) (protocol === 'http' ? httpPorts : httpsPorts).add(b.port);
      }
    }
    return { host, httpPorts: [...httpPorts], httpsPorts: [...httpsPorts] };
  });
}

export function defaultSystemDrive(): string {
  if (process.env['WHARF_SYSTEM_DRIVE']) return resolve(process.env['WHARF_SYSTEM_DRIVE']);
  if (process.getuid?.() === 0) return '/var/lib/wharf';
  const state = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  return join(state, 'wharf');
}

/**
 * The server log goes to stderr while stderr takes it. When it stops (its reader went away: a
 * closed terminal, `wharf start | head`, a log shipper that died), writes fail with EPIPE; the
 * server keeps serving and drops console lines from then on: a failed write must not be logged
 * to the stream that failed, which would loop forever.
 */
let consoleGone = false;
function watchConsole(stream: NodeJS.WriteStream): void {
  stream.on('error', () => {
    consoleGone = true;
  });
}
watchConsole(process.stderr);
watchConsole(process.stdout);

function consoleLine(level: string, m: string): void {
  if (consoleGone) return;
  try {
    process.stderr.write(`${new Date().toISOString()} ${level} ${m}\n`);
  } catch {
    consoleGone = true;
  }
}

export const consoleLogger: ListenerLogger = {
  info: (m) => consoleLine('info ', m),
  warn: (m) => consoleLine('warn ', m),
  error: (m) => consoleLine('error', m),
};

/** The %VAR%s Wharf defines for every configuration (docs/configuration.md); they win over the environment. */
export function configVariables(systemDrive: string, root?: string): Record<string, string> {
  return {
    IIS_BIN: ASSETS_DIR.replace(/\/$/, ''),
    // IIS Express's per-user folders (Documents\IISExpress, Documents\My Web Sites).
    IIS_USER_HOME: join(systemDrive, 'IISExpress'),
    IIS_SITES_HOME: join(systemDrive, 'IISExpress', 'Sites'),
    WHARF_WWWROOT: root !== undefined ? resolve(root) : join(ASSETS_DIR, 'default', 'wwwroot'),
  };
}

/** A rejected configuration's code for wharf:config:rejected: Wharf's own, else the system's (EADDRINUSE …). */
function failureCode(err: unknown): string {
  if (err instanceof WharfError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}

export type ReloadOutcome = 'applied' | 'unchanged' | 'rejected' | 'unreadable';

export class WharfServer implements AdminTarget {
  readonly configFile: string;
  readonly systemDrive: string;
  readonly #o: ServerOptions;
  readonly #log: ListenerLogger;
  /** What the pools' workers print (hosted apps' console output), per pool. */
  readonly #poolOutput: PoolOutputLogs;
  readonly #variables: Record<string, string>;
  #listener: Listener | undefined;
  #activation: ActivationService | undefined;
  #config: AppHostConfig | undefined;
  #text = '';
  #generation = 0;
  #watcher: FSWatcher | undefined;
  #reloadTimer: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #admin: AdminServer | undefined;
  #metrics: Metrics | undefined;
  #startedAt = 0;
  /** What `wharf stop` runs (set by the command line that owns this process: src/cli/foreground.ts). */
  #shutdownHandler: (() => void) | undefined;
  readonly #identitiesReported = new Set<string>();
  /** Configuration warnings already printed (each once, not again on every generation). */
  readonly #warned = new Set<string>();
  /** OpenTelemetry's request spans, when an OTLP endpoint is set (src/tracing/). */
  #tracing: TracingHandle | undefined;
  #certificates: CertificateSource | undefined;
  #acme: AcmeManager | undefined;
  #credentials: CredentialService | undefined;

  constructor(options: ServerOptions = {}) {
    this.#o = options;
    this.#log = options.logger ?? consoleLogger;
    this.configFile = resolve(options.configFile ?? DEFAULT_CONFIG);
    this.systemDrive = resolve(options.systemDrive ?? defaultSystemDrive());
    this.#poolOutput = new PoolOutputLogs(join(this.systemDrive, 'inetpub', 'logs', 'AppPools'), (m) => this.#log.warn(m));
    this.#variables = configVariables(this.systemDrive, options.root);
  }

  get listener(): Listener {
    if (this.#listener === undefined) throw new WharfError('WAS_WORKER_START', 'server not started');
    return this.#listener;
  }

  get config(): AppHostConfig | undefined {
    return this.#config;
  }

  get activation(): ActivationService | undefined {
    return this.#activation;
  }

  /** Read and validate the configuration text (throws ConfigError with file:line:column). */
  #load(): { config: AppHostConfig; text: string } {
    // UTF-8 with or without BOM, or UTF-16 as Windows tools sometimes save it; CFG_READ otherwise.
    let text = readConfigText(this.configFile);
    if (this.#o.configFile === undefined) text = this.#reportEmbedded(text);
    const config = loadAppHost(this.configFile, text, { systemDrive: this.systemDrive, variables: this.#variables });
    return { config, text };
  }

  /**
   * The embedded default's ports from the command line: --port moves the http binding, and
   * --https-port the https one (8443 unless --port alone was given: then none, so two servers
   * started with different --port values do not fight over 8443).
   */
  #reportEmbedded(text: string): string {
    if (this.#o.port !== undefined) text = text.replace(/bindingInformation="\*:8080:"/g, `bindingInformation="*:${this.#o.port}:"`);
    const https = this.embeddedHttpsPort;
    if (https === 0) text = text.replace(/\s*<binding protocol="https" bindingInformation="\*:8443:" \/>/g, '');
    else if (https !== 8443) text = text.replace(/bindingInformation="\*:8443:"/g, `bindingInformation="*:${https}:"`);
    return text;
  }

  /** The embedded default's https port (0: none); undefined for a configuration file. */
  get embeddedHttpsPort(): number | undefined {
    if (this.#o.configFile !== undefined) return undefined;
    return this.#o.httpsPort ?? (this.#o.port !== undefined ? 0 : 8443);
  }

  #message(config: AppHostConfig, text: string): ConfigMessage {
    return {
      generation: this.#generation,
      poolName: '',
      configFile: config.file,
      configText: text,
      systemDrive: this.systemDrive,
      // Workers do not have Wharf's environment: the %VAR%s the file uses come along.
      variables: { ...this.#variables, ...referencedEnvironment(text, this.#variables) },
    };
  }

  async start(): Promise<void> {
    const { config, text } = this.#load();
    // HTTP.sys's registry values, read once at start as HTTP.sys reads them (before anything runs).
    const parserLimits = httpSysParameters(process.env[HTTP_PARAMETERS_ENV]);
    const logs = await resolveLogAccess(this.#o.logOwner ?? process.env['WHARF_LOG_OWNER']);
    setLogAccess(logs, (m) => this.#log.warn(m));
    if (this.#o.metricsAddress !== undefined) {
      // Subscribed before the listener and WAS exist, so the first pool states and workers count.
      this.#metrics = await startMetrics({
        address: this.#o.metricsAddress,
        catalogue: () => metricsCatalogue(this.#config ?? config),
        log: { warn: (m) => this.#log.warn(m) },
      });
      this.#log.info(`metrics at http://${formatAddress(this.#metrics.server.address)}/metrics (wharf metrics prints them too)`);
    }
    this.#log.info(`log files are 0640 in 0750 folders, owned by ${logs.description}`);
    this.#generation = 1;
    this.#reportUnsupported(config);
    // OpenTelemetry only when an OTLP endpoint is set: otherwise no SDK is loaded and nobody
    // subscribes to the request events (src/tracing/otel-env.ts). Subscribed before the listener
    // exists, so its first request is traced.
    if (tracingEnabled(process.env)) {
      const { startRequestTracing } = await import('./tracing/index.js');
      this.#tracing = await startRequestTracing({ warn: (err) => this.#log.warn(`${err.code}: ${err.message}`) });
      this.#log.info('OpenTelemetry: exporting a span per request over OTLP (docs/configuration.md, "OpenTelemetry traces")');
    }
    // WAS and the listener, each given the other's typed interface: the listener asks for workers
    // (WorkerSupply), WAS tells it about request channels and pools (RequestRouting). Workers talk
    // to WAS on their own control channel (src/ipc/control-messages.ts).
    // Credential checks workers ask for (PAM, Wharf's users, Kerberos): answered here, in the
    // privileged process, never in a worker (src/security/).
    const credentials = new CredentialService({
      systemDrive: this.systemDrive,
      log: (level, m) => this.#log[level](m),
      usersChanged: () => this.#activation?.credentialsChanged(),
      negotiate: new NegotiateAcceptor().accept,
    });
    credentials.watch();
    this.#credentials = credentials;
    const activation = new ActivationService(
      { log: (level, m) => this.#log[level](m), output: (pool, pid, stream, line) => this.#poolOutput.write(pool, pid, stream, line) },
      { prepare: (s) => this.#prepareLaunch(s), credentials },
    );
    // Certificates for https bindings: the store, the SSL table and the Central Certificate Store
    // under the system drive (src/tls/), watched, so `wharf sslcert add` applies to new connections.
    const certificates = await CertificateSource.open({ systemDrive: this.systemDrive, logger: this.#log });
    this.#certificates = certificates;
    const listener = new Listener({
      logger: this.#log,
      httpErrDirectory: mapWindowsPath('C:\\Windows\\System32\\LogFiles\\HTTPERR', { systemDrive: this.systemDrive, baseDir: '/' }),
      supply: activation,
      parserLimits,
      certificates,
    });
    certificates.onChange(() => listener.certificatesChanged());
    // Automatic certificates (`wharf centralcert acme`): the manager fills the Central Certificate
    // Store for https bindings with sslFlags 2; the listener answers its HTTP-01 challenges.
    const acme = AcmeManager.start({ systemDrive: this.systemDrive, logger: this.#log, source: certificates });
    this.#acme = acme;
    listener.acmeChallenges = (host, token) => acme.httpChallenge(host, token);
    listener.acmeAlpnChallenges = { lookup: (host) => acme.alpnChallenge(host), pending: () => acme.alpnPending };
    acme.setWantedHosts(acmeHosts(config));
    const devPort = this.embeddedHttpsPort;
    if (devPort !== undefined && devPort !== 0) {
      // IIS Express's habit: the embedded default serves https with a self-signed development
      // certificate, made once and kept under the system drive (an SSL table entry for the port wins).
      const dev = await certificates.developmentCertificate();
      listener.setFallbackCertificates(new Map([[devPort, dev]]));
      this.#log.info(`https://localhost:${devPort}/ uses the "Wharf Development Certificate" (${dev.thumbprint}, self-signed: browsers warn; trust ${dev.source} to silence them)`);
    }
    activation.serve(listener);
    this.#activation = activation;
    this.#listener = listener;
    const pools = poolSettings(config);
    await listener.apply(config, this.#message(config, text), pools);
    // After the listener has the pools' queues: autoStart=false pools stop them, AlwaysRunning starts workers.
    activation.configure(pools);
    this.#config = config;
    this.#text = text;
    if (configApplied.hasSubscribers) configApplied.publish({ generation: this.#generation, file: this.configFile });
    for (const site of config.sites) {
      const b = site.bindings.map((x) => `${x.protocol}/${x.bindingInformation}`).join(',');
      this.#log.info(`site "${site.name}" (id ${site.id}) ${site.serverAutoStart ? 'started' : 'stopped'}: ${b}; logs in ${join(site.logFileDirectory, 'W3SVC' + site.id)}`);
    }
    for (const a of listener.addresses()) this.#log.info(`listening on ${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
    // appcmd's verbs reach this server through a socket only root and this user can open.
    const embeddedPort = this.#o.configFile === undefined ? this.#o.port : undefined;
    // Serving from here on: `wharf status`'s uptime counts from now.
    this.#startedAt = Date.now();
    this.#admin = await startAdminServer(adminSocketPath(this.configFile, { port: embeddedPort }), this, { warn: (m) => this.#log.warn(m) });
    this.#log.info(`admin socket ${this.#admin.path} (wharf list|start|stop|recycle …; docs/cli.md)`);
    this.#watch();
    // Resolving (and creating) pool users and checking content access can take a while with many
    // pools: it runs once Wharf listens; a worker start waits for its own pool's user only.
    this.#backgroundReport(config);
  }

  /** Who the pool's next worker runs as, and its private runtime directory (identity.ts). */
  async #prepareLaunch(s: PoolSettings): Promise<WorkerLaunch> {
    const id = await resolvePoolIdentity({ name: s.name, identityType: s.identityType, userName: s.userName });
    const dir = await ensureRuntimeDirectory(id, s.name);
    await this.#prepareCompressionDirectory(id, s.name);
    const env: Record<string, string> = { ...workerIdentityEnvironment(id), TMPDIR: dir, WHARF_RUNTIME_DIR: dir };
    if (id !== undefined && (id.home === '/nonexistent' || !existsSync(id.home))) env['HOME'] = dir;
    return { user: id?.user, environment: env };
  }

  /**
   * The pool's folder for compressed static files (httpCompression directory at server level),
   * owned by the pool's user. Never fatal: without it the worker compresses in memory (and says so).
   */
  async #prepareCompressionDirectory(id: PoolIdentity | undefined, pool: string): Promise<void> {
    const config = this.#config;
    if (config === undefined) return;
    let root: string;
    try {
      root = resolvePathAttribute(config.section('system.webServer/httpCompression'), 'directory', { systemDrive: this.systemDrive, baseDir: dirname(config.file) });
      await ensureCompressionDirectory(id, root, pool);
    } catch (err) {
      this.#warnOnce(`compression-dir:${pool}`, 'warn', `application pool ${pool}: cannot prepare its compressed-files folder: ${(err as Error).message}`);
    }
  }

  #backgroundReport(config: AppHostConfig): void {
    this.#reportIdentities(config).catch((err: unknown) => this.#log.warn(`checking pool identities failed: ${(err as Error).message}`));
    setImmediate(() => this.#reportSiteConfigs(config));
  }

  #warnOnce(key: string, level: 'info' | 'warn', message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#log[level](message);
  }

  /**
   * Each virtual directory's own web.config, looked at once Wharf listens (config-scan.ts), so its
   * errors and unenforced security settings show at start rather than at the first request.
   * Deeper files are reported by the workers that read them, and all of them by `wharf check`.
   */
  #reportSiteConfigs(config: AppHostConfig): void {
    try {
      scanSiteConfigs(config, {
        systemDrive: this.systemDrive,
        variables: this.#variables,
        recursive: false,
        onError: (e) => this.#warnOnce(e.describe(), 'warn', `${e.describe()} (its URLs get 500.19 until it is fixed)`),
        onWarning: (w) => this.#warnOnce(warningKey(w), w.kind === 'feature' ? 'info' : 'warn', describeWarning(w)),
      });
    } catch (err) {
      this.#log.warn(`checking the sites' web.config files failed: ${(err as Error).message}`);
    }
  }

  /**
   * Started as root, each pool runs as its own user: say so once, and warn about content that
   * user cannot read (IIS would answer 401.3 / 500.19 for it, and so does Wharf).
   */
  async #reportIdentities(config: AppHostConfig): Promise<void> {
    const pools = poolSettings(config);
    const warning = identityWarning(pools);
    if (warning !== undefined) this.#log.warn(warning);
    for (const p of pools) {
      let id;
      try {
        id = await resolvePoolIdentity({ name: p.name, identityType: p.identityType, userName: p.userName });
      } catch (err) {
        this.#log.error((err as Error).message);
        continue;
      }
      if (id === undefined) continue;
      const key = `${p.name}\0${id.user}`;
      if (!this.#identitiesReported.has(key)) {
        this.#identitiesReported.add(key);
        this.#log.info(`application pool ${p.name} runs as ${id.description}`);
      }
      for (const site of config.sites) {
        for (const app of site.applications) {
          if (poolKey(app.applicationPool) !== p.key) continue;
          for (const vdir of app.virtualDirectories) {
            if (!existsSync(vdir.physicalPath)) continue;
            const problem = accessProblem(vdir.physicalPath, id);
            if (problem !== undefined) this.#log.warn(`site "${site.name}": content not readable by the pool's user: ${problem} (see docs/configuration.md, "Identities")`);
          }
        }
      }
    }
  }

  #reportUnsupported(config: AppHostConfig): void {
    // Settings read but not enforced (security ones first) and a configuration that cannot serve
    // (config-warnings.ts; `wharf check` prints the same lines, web.config files included).
    for (const w of appHostWarnings(config)) this.#warnOnce(warningKey(w), w.kind === 'feature' ? 'info' : 'warn', describeWarning(w));
    for (const w of fastCgiWarnings(config, this.systemDrive)) this.#warnOnce(warningKey(w), 'warn', describeWarning(w));
    for (const u of config.unsupported) {
      this.#log.info(`${u.position.file}:${u.position.line}: section ${u.section} is not supported by Wharf yet; kept and ignored`);
    }
    // What a newcomer would otherwise only learn from a stream of 404s or a silent port.
    for (const site of config.sites) {
      for (const b of site.bindings) {
        const protocol = b.protocol.toLowerCase();
        if (protocol !== 'http' && protocol !== 'https') {
          this.#log.warn(`site "${site.name}": ${b.protocol} binding ${b.bindingInformation} is not served (Wharf serves http and https bindings)`);
        }
      }
      for (const app of site.applications) {
        for (const vdir of app.virtualDirectories) {
          if (!existsSync(vdir.physicalPath)) {
            const url = (app.path === '/' ? '' : app.path) + (vdir.path === '/' ? '/' : vdir.path);
            this.#log.warn(`site "${site.name}": ${url} maps to ${vdir.physicalPath}, which does not exist (see --system-drive and docs/configuration.md, "Paths")`);
          }
        }
      }
    }
  }

  /**
   * Watch the configuration file. Editors often replace the file (write a temp file, rename), so
   * the folder is watched; a 1 s poll backs it up on file systems without inotify.
   */
  #watch(): void {
    const dir = dirname(this.configFile);
    const name = basename(this.configFile);
    try {
      this.#watcher = watch(dir, (_event, file) => {
        if (file === null || file === name) this.#scheduleReload();
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      // no inotify: the poll below still notices changes
    }
    this.#poll = setInterval(() => this.#scheduleReload(), 1000);
    this.#poll.unref();
  }

  #scheduleReload(): void {
    if (this.#reloadTimer !== undefined) return;
    this.#reloadTimer = setTimeout(() => {
      this.#reloadTimer = undefined;
      this.#reloading = this.#reloading.then(() => this.reload()).then(() => undefined);
    }, 100);
    this.#reloadTimer.unref();
  }

  /** Apply the file's current content if it changed and is valid; otherwise keep serving. */
  async reload(): Promise<ReloadOutcome> {
    let text: string;
    try {
      text = readConfigText(this.configFile);
    } catch {
      return 'unreadable'; // mid-replace; the next event retries
    }
    if (this.#o.configFile === undefined) text = this.#reportEmbedded(text);
    if (text === this.#text) return 'unchanged';
    let config: AppHostConfig;
    try {
      config = loadAppHost(this.configFile, text, { systemDrive: this.systemDrive, variables: this.#variables });
    } catch (err) {
      this.#text = text; // report a broken version once, not on every poll
      const desc = err instanceof ConfigError ? err.describe() : (err as Error).message;
      this.#log.error(`configuration change rejected, still serving generation ${this.#generation}: ${desc}`);
      if (configRejected.hasSubscribers) configRejected.publish({ file: this.configFile, code: failureCode(err), message: desc });
      return 'rejected';
    }
    const generation = this.#generation + 1;
    const prev = this.#generation;
    this.#generation = generation;
    let change;
    try {
      // The listener first: if a new binding cannot be listened on, nothing else has changed.
      const pools = poolSettings(config);
      change = await this.#listener!.apply(config, this.#message(config, text), pools);
      this.#acme?.setWantedHosts(acmeHosts(config));
      this.#activation!.configure(pools);
    } catch (err) {
      this.#generation = prev;
      this.#text = text;
      this.#log.error(`configuration change could not be applied, still serving generation ${prev}: ${(err as Error).message}`);
      if (configRejected.hasSubscribers) configRejected.publish({ file: this.configFile, code: failureCode(err), message: (err as Error).message });
      return 'rejected';
    }
    this.#config = config;
    this.#text = text;
    this.#reportUnsupported(config);
    this.#backgroundReport(config);
    let sockets = '';
    if (change.started.length > 0 || change.stopped.length > 0) {
      const now = this.#listener!.addresses().map((a) => `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
      if (change.started.length > 0) sockets += `; started listening on ${change.started.join(', ')}`;
      if (change.stopped.length > 0) sockets += `; stopped listening on ${change.stopped.join(', ')}`;
      sockets += `; now listening on ${now.length > 0 ? now.join(', ') : 'nothing'}`;
    }
    this.#log.info(`configuration generation ${generation} applied from ${this.configFile}${sockets}`);
    if (configApplied.hasSubscribers) configApplied.publish({ generation, file: this.configFile });
    return 'applied';
  }

  /** Re-read the configuration now, after any reload in progress (SIGHUP). */
  reloadNow(): Promise<ReloadOutcome> {
    const next = this.#reloading.then(() => this.reload());
    this.#reloading = next.then(() => undefined);
    return next;
  }

  // ---- AdminTarget (the admin socket) ----------------------------------------------------------

  list(kind: AdminObjectKind): AdminObject[] {
    const config = this.#config;
    if (config === undefined) return [];
    const activation = this.#activation!;
    const listener = this.listener;
    switch (kind) {
      case 'SITE':
        return siteObjects(config, (id) => (listener.siteStarted(id) ? 'Started' : 'Stopped'));
      case 'APP':
        return appObjects(config);
      case 'VDIR':
        return vdirObjects(config);
      case 'APPPOOL':
        return appPoolObjects(config, (name) => activation.poolState(poolKey(name)) ?? 'Unknown');
      case 'WP':
        return workerObjects(
          activation.workers().map((w) => ({
            pid: w.pid,
            pool: w.pool,
            state: w.state,
            startedAt: w.startedAt,
            requests: listener.workerActivity(poolKey(w.pool), w.pid)?.outstanding ?? 0,
          })),
        );
      case 'REQUEST': {
        const names = new Map(config.sites.map((site) => [site.id, site.name]));
        return requestObjects(listener.requestsInFlight().map((r) => ({ ...r, siteName: names.get(r.siteId) ?? '' })));
      }
      case 'TRACE':
        return traceObjects(listener.traces());
    }
  }

  status(): AdminStatus {
    const sites = this.list('SITE');
    const appPools = this.list('APPPOOL');
    return {
      pid: process.pid,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeMs: Date.now() - this.#startedAt,
      configFile: this.configFile,
      generation: this.#generation,
      systemDrive: this.systemDrive,
      adminSocket: this.#admin?.path ?? '',
      drainMs: this.shutdownTimeLimitMs,
      sites,
      appPools,
      workerProcesses: this.#activation?.workers().length ?? 0,
      requestsInFlight: this.#listener?.requestsInFlight().length ?? 0,
    };
  }

  /** `wharf metrics`: the same Prometheus text as GET /metrics. */
  async metrics(): Promise<string> {
    if (this.#metrics === undefined) {
      throw new AdminError('ADM_REQUEST', 'Metrics are off on this server: start it with --metrics-address HOST:PORT (docs/cli.md, "wharf metrics").');
    }
    return this.#metrics.metrics.text();
  }

  /** Who stops this process when `wharf stop` asks (the drain, then exit). */
  setShutdownHandler(handler: () => void): void {
    this.#shutdownHandler = handler;
  }

  shutdown(): { pid: number; drainMs: number; begin(): void } {
    const handler = this.#shutdownHandler;
    if (handler === undefined) throw new AdminError('ADM_REQUEST', 'This server is embedded in another program: stop it from there.');
    return { pid: process.pid, drainMs: this.shutdownTimeLimitMs, begin: handler };
  }

  startAppPool(name: string): string {
    return this.#poolVerb(name, 'start');
  }
  stopAppPool(name: string): string {
    return this.#poolVerb(name, 'stop');
  }
  recycleAppPool(name: string): string {
    return this.#poolVerb(name, 'recycle');
  }

  poolOutput(name: string, lines: number): { lines: string[]; file: string; folder: string } {
    const pool = this.#config?.applicationPools.find((p) => poolKey(p.name) === poolKey(name));
    if (pool === undefined) throw adminNotFound('APPPOOL', name);
    return { lines: this.#poolOutput.tail(pool.name, lines), file: this.#poolOutput.fileOf(pool.name), folder: this.#poolOutput.folderOf(pool.name) };
  }

  #poolVerb(name: string, verb: 'start' | 'stop' | 'recycle'): string {
    const a = this.#activation!;
    const pool = this.#config?.applicationPools.find((p) => poolKey(p.name) === poolKey(name));
    if (pool === undefined) throw adminNotFound('APPPOOL', name);
    if (verb === 'start') a.startPool(pool.name);
    else if (verb === 'stop') a.stopPool(pool.name);
    else a.recyclePool(pool.name);
    return adminDone(verb, pool.name);
  }

  async startSite(name: string): Promise<string> {
    return this.#siteVerb(name, true);
  }
  async stopSite(name: string): Promise<string> {
    return this.#siteVerb(name, false);
  }

  async #siteVerb(name: string, start: boolean): Promise<string> {
    const site = this.#config?.sites.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (site === undefined) throw adminNotFound('SITE', name);
    const listener = this.listener;
    if (listener.siteStarted(site.id) === start) {
      throw new AdminError('ADM_REQUEST', `site "${site.name}" is already ${start ? 'started' : 'stopped'}`);
    }
    await listener.setSiteStarted(site.id, start);
    this.#log.info(`site "${site.name}" (id ${site.id}) ${start ? 'started' : 'stopped'} by an administrator`);
    return adminDone(start ? 'start' : 'stop', site.name);
  }

  /** Drain: stop accepting, finish outstanding requests, stop workers. */
  async stop(timeoutMs = this.shutdownTimeLimitMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.#admin?.close();
    this.#watcher?.close();
    if (this.#poll !== undefined) clearInterval(this.#poll);
    if (this.#reloadTimer !== undefined) clearTimeout(this.#reloadTimer);
    await this.#listener?.close(timeoutMs);
    this.#acme?.close();
    this.#certificates?.close();
    this.#credentials?.close();
    // Workers were told to drain when the last connection closed; what is left of the budget is theirs.
    await this.#activation?.stop(Math.max(1000, deadline - Date.now()));
    await this.#metrics?.close();
    // The last requests' spans are batched: export them, bounded so a dead collector cannot hold
    // the stop (the exporter's own OTEL_EXPORTER_OTLP_TIMEOUT bounds each attempt too).
    await this.#tracing?.shutdown(Math.max(1000, Math.min(5000, deadline - Date.now())));
    this.#tracing = undefined;
  }

  /** The whole server's drain budget: the longest shutdownTimeLimit of its pools (IIS: 90 s). */
  get shutdownTimeLimitMs(): number {
    const pools = this.#config === undefined ? [] : poolSettings(this.#config);
    return pools.reduce((max, p) => Math.max(max, p.shutdownTimeLimitMs), pools.length === 0 ? 10000 : 0);
  }
}
