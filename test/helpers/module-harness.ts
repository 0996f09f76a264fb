/**
 * TEST-ONLY harness for the built-in modules: an HttpContext for one request over a temp folder,
 * an in-memory ConfigElement fed from plain objects, and a response that records what a client
 * would see. It stands in for the pipeline runner and the config system (src/worker, src/config)
 * so a module's notification or handler can be unit-tested alone. Never import it from
 * production code.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { stat as fsStat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type {
  ConfigElement,
  ConfigValue,
  ResolveResult,
  ResolvedConfig,
  SiteConfig,
  ApplicationConfig,
  VirtualDirectoryConfig,
} from '../../src/config/types.js';
import type { FileBodyMessage } from '../../src/ipc/messages.js';
import type { SourcePosition } from '../../src/errors.js';
import { KernelCache } from '../../src/worker/http-context.js';
import { computeServerVariable, headerOfVariable } from '../../src/worker/server-variables.js';
import type {
  Identity,
  ChildRequestOptions,
  ChildRequestResult,
  ContentEncoder,
  ErrorDetail,
  FileInfo,
  HandlerMapping,
  HttpContext,
  HttpRequest,
  HttpResponse,
  ModuleDefinition,
  ModuleTrace,
  Notification,
  RewriteRefusal,
} from '../../src/worker/module-api.js';

// ---------------------------------------------------------------------------------------------
// In-memory configuration

/** A config element written as plain data: attributes, named child elements, collection items. */
export interface ElementSpec {
  readonly attributes?: Readonly<Record<string, ConfigValue>>;
  readonly children?: Readonly<Record<string, ElementSpec>>;
  /** Collection items; when given in an override they replace the defaults' items. */
  readonly items?: readonly ElementSpec[];
  /** Attribute defaults every item of this element's collection gets (schema defaults). */
  readonly itemDefaults?: Readonly<Record<string, ConfigValue>>;
  readonly source?: SourcePosition;
}

/**
 * The IIS schema defaults (iis10-IIS_schema.xml) for the sections these modules read, plus the
 * shipped collection entries where a test relies on them (hiddenSegments web.config).
 */
export const SCHEMA_DEFAULTS: Readonly<Record<string, ElementSpec>> = {
  'system.webServer/security/requestFiltering': {
    attributes: {
      allowDoubleEscaping: false,
      allowHighBitCharacters: true,
      unescapeQueryString: true,
      removeServerHeader: false,
    },
    children: {
      fileExtensions: { attributes: { allowUnlisted: true, applyToWebDAV: true }, itemDefaults: { allowed: true } },
      requestLimits: {
        attributes: { maxAllowedContentLength: 30000000, maxUrl: 4096, maxQueryString: 2048 },
        children: { headerLimits: {} },
      },
      verbs: { attributes: { allowUnlisted: true, applyToWebDAV: true } },
      hiddenSegments: { attributes: { applyToWebDAV: true }, items: [{ attributes: { segment: 'web.config' } }] },
      alwaysAllowedUrls: {},
      alwaysAllowedQueryStrings: {},
      denyUrlSequences: {},
      denyQueryStringSequences: {},
      filteringRules: {
        itemDefaults: { scanUrl: false, scanQueryString: false, scanAllRaw: false, denyUnescapedPercent: true },
      },
    },
  },
  'system.webServer/security/authentication/anonymousAuthentication': {
    attributes: { enabled: true, userName: 'IUSR', password: '', logonMethod: 'ClearText' },
  },
  'system.webServer/security/authentication/basicAuthentication': {
    attributes: { enabled: false, realm: '', defaultLogonDomain: '', logonMethod: 'ClearText' },
  },
  'system.webServer/security/authentication/digestAuthentication': {
    attributes: { enabled: false, realm: '' },
  },
  'system.webServer/security/authorization': {
    attributes: { bypassLoginPages: true },
    itemDefaults: { users: '', roles: '', verbs: '' },
  },
  'system.webServer/httpLogging': {
    attributes: { dontLog: false, selectiveLogging: 'LogAll' },
  },
  'system.webServer/httpProtocol': {
    attributes: { allowKeepAlive: true },
    children: { customHeaders: {}, redirectHeaders: {} },
  },
  'system.webServer/httpRedirect': {
    attributes: { enabled: false, destination: '', exactDestination: false, childOnly: false, httpResponseStatus: 'Found' },
  },
  'system.webServer/staticContent': {
    attributes: { defaultDocFooter: '', isDocFooterFileName: false, enableDocFooter: false },
    children: {
      clientCache: {
        attributes: {
          cacheControlMode: 'NoControl',
          cacheControlMaxAge: 86_400_000,
          httpExpires: '',
          cacheControlCustom: '',
          setEtag: true,
        },
      },
    },
    items: [
      { attributes: { fileExtension: '.txt', mimeType: 'text/plain' } },
      { attributes: { fileExtension: '.htm', mimeType: 'text/html' } },
      { attributes: { fileExtension: '.html', mimeType: 'text/html' } },
      { attributes: { fileExtension: '.css', mimeType: 'text/css' } },
      { attributes: { fileExtension: '.js', mimeType: 'application/javascript' } },
      { attributes: { fileExtension: '.json', mimeType: 'application/json' } },
      { attributes: { fileExtension: '.png', mimeType: 'image/png' } },
      { attributes: { fileExtension: '.bin', mimeType: 'application/octet-stream' } },
    ],
  },
  'system.webServer/defaultDocument': {
    attributes: { enabled: true },
    children: {
      files: {
        items: ['Default.htm', 'Default.asp', 'index.htm', 'index.html', 'iisstart.htm'].map((value) => ({
          attributes: { value },
        })),
      },
    },
  },
  'system.webServer/serverSideInclude': {
    attributes: { ssiExecDisable: false },
  },
  'system.webServer/cgi': {
    attributes: { createCGIWithNewConsole: false, createProcessAsUser: true, timeout: 900_000 },
  },
  'system.webServer/directoryBrowse': {
    attributes: { enabled: false, showFlags: 'Date, Time, Size, Extension' },
  },
  'system.webServer/httpErrors': {
    attributes: {
      errorMode: 'DetailedLocalOnly',
      existingResponse: 'Auto',
      defaultPath: '',
      defaultResponseMode: 'File',
      detailedMoreInformationLink: 'http://go.microsoft.com/fwlink/?LinkID=62293',
      allowAbsolutePathsWhenDelegated: false,
    },
    itemDefaults: { subStatusCode: -1, prefixLanguageFilePath: '', responseMode: 'File' },
  },
};

export const SITE_LIMITS_DEFAULTS: ElementSpec = {
  attributes: {
    maxBandwidth: 4294967295,
    maxConnections: 4294967295,
    connectionTimeout: 120_000,
    maxUrlSegments: 32,
  },
};

function mergeSpecs(base: ElementSpec, over: ElementSpec | undefined): ElementSpec {
  if (!over) return base;
  const children: Record<string, ElementSpec> = { ...(base.children ?? {}) };
  for (const [name, child] of Object.entries(over.children ?? {})) {
    children[name] = mergeSpecs(children[name] ?? {}, child);
  }
  return {
    attributes: { ...(base.attributes ?? {}), ...(over.attributes ?? {}) },
    children,
    items: over.items ?? base.items,
    itemDefaults: { ...(base.itemDefaults ?? {}), ...(over.itemDefaults ?? {}) },
    source: over.source ?? base.source,
  };
}

/** A ConfigElement over plain data; `explicit` names the attributes a test "wrote". */
export class FakeConfigElement implements ConfigElement {
  readonly name: string;
  readonly items: readonly ConfigElement[];
  readonly source: SourcePosition | undefined;
  readonly #spec: ElementSpec;
  readonly #explicit: ReadonlySet<string>;
  readonly #children = new Map<string, FakeConfigElement>();

  constructor(name: string, spec: ElementSpec, explicit: ReadonlySet<string> = new Set()) {
    this.name = name;
    this.#spec = spec;
    this.#explicit = explicit;
    this.source = spec.source;
    const itemDefaults = spec.itemDefaults ?? {};
    this.items = (spec.items ?? []).map(
      (item) =>
        new FakeConfigElement(
          'add',
          { ...item, attributes: { ...itemDefaults, ...(item.attributes ?? {}) } },
          new Set(Object.keys(item.attributes ?? {})),
        ),
    );
  }

  get(attribute: string): ConfigValue {
    const value = this.#spec.attributes?.[attribute];
    // Like the real schema-driven element: an attribute the schema does not know is a bug.
    if (value === undefined) throw new Error(`test config: <${this.name}> has no attribute '${attribute}'`);
    return value;
  }
  bool(attribute: string): boolean {
    const v = this.get(attribute);
    if (typeof v !== 'boolean') throw new Error(`test config: ${attribute} is not a bool`);
    return v;
  }
  num(attribute: string): number {
    const v = this.get(attribute);
    if (typeof v !== 'number') throw new Error(`test config: ${attribute} is not a number`);
    return v;
  }
  str(attribute: string): string {
    const v = this.get(attribute);
    if (typeof v !== 'string') throw new Error(`test config: ${attribute} is not a string`);
    return v;
  }
  enumName(attribute: string): string {
    return this.str(attribute);
  }
  flagNames(attribute: string): ReadonlySet<string> {
    const names = this.str(attribute)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'None');
    return new Set(names);
  }
  isSet(attribute: string): boolean {
    return this.#explicit.has(attribute);
  }
  child(name: string): ConfigElement {
    let c = this.#children.get(name);
    if (!c) {
      const spec = this.#spec.children?.[name];
      if (!spec) throw new Error(`test config: <${this.name}> has no child '${name}'`);
      c = new FakeConfigElement(name, spec, new Set(Object.keys(spec.attributes ?? {})));
      this.#children.set(name, c);
    }
    return c;
  }
}

/** A section element: SCHEMA_DEFAULTS[path] with `override` merged over it. */
export function fakeSection(path: string, override?: ElementSpec): FakeConfigElement {
  const base = SCHEMA_DEFAULTS[path];
  if (!base) throw new Error(`test config: no defaults for section ${path}`);
  return new FakeConfigElement(path.slice(path.lastIndexOf('/') + 1), mergeSpecs(base, override), new Set(Object.keys(override?.attributes ?? {})));
}

// ---------------------------------------------------------------------------------------------
// Recording response

export interface RecordingResponseOptions {
  /** write() returns false once this many bytes are pending since the last drained(). */
  readonly highWaterMark?: number;
}

export class RecordingResponse implements HttpResponse {
  /** The kernel cache policy a module set (asserted by tests). */
  readonly kernelCache = new KernelCache();
  statusCode = 200;
  subStatus = 0;
  win32Status = 0;
  statusReason = '';
  trySkipCustomErrors = false;
  logRequest = true;
  logUrl: { readonly path: string; readonly query: string } | undefined = undefined;
  headersSent = false;
  aborted = false;
  /** Set by requestClose() (the worker response's close-the-connection request). */
  closeRequested = false;
  /** How often flush() and drained() were awaited (asserts streaming behaviour). */
  flushCount = 0;
  drainCount = 0;
  /** Number of write() calls. */
  writeCount = 0;
  /** Interim responses sent (sendInformational), in order. */
  readonly informational: Array<{ status: number; headers: readonly string[] }> = [];
  /** Called when flush() sends the head (the real pipeline runs SendResponse there). */
  onFlush: (() => void | Promise<void>) | undefined;
  readonly #headers = new Map<string, { name: string; value: string | readonly string[] }>();
  #chunks: Buffer[] = [];
  #length = 0;
  #pending = 0;
  readonly #highWaterMark: number;

  constructor(options: RecordingResponseOptions = {}) {
    this.#highWaterMark = options.highWaterMark ?? Infinity;
  }

  setHeader(name: string, value: string | readonly string[]): void {
    this.#headers.set(name.toLowerCase(), { name, value });
  }
  getHeader(name: string): string | readonly string[] | undefined {
    return this.#headers.get(name.toLowerCase())?.value;
  }
  removeHeader(name: string): void {
    this.#headers.delete(name.toLowerCase());
  }
  headerNames(): string[] {
    return [...this.#headers.values()].map((h) => h.name);
  }
  /** The content encoder a module set (the real response encodes the body with it). */
  encoder: ContentEncoder | undefined = undefined;
  setContentEncoder(encoder: ContentEncoder): void {
    if (!this.headersSent) this.encoder = encoder;
  }
  /** A header as one string (arrays joined with ', '), for assertions. */
  header(name: string): string | undefined {
    const v = this.getHeader(name);
    return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
  }
  write(chunk: Buffer | string): boolean {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    // Copy: a caller may legally reuse its buffer once write() returned (as with a socket).
    this.#chunks.push(Buffer.from(b));
    this.#length += b.length;
    this.#pending += b.length;
    this.writeCount++;
    return this.#pending < this.#highWaterMark;
  }
  /** The file ranges written by reference with their bytes (writeFile), besides the bytes in the body. */
  readonly files: FileBodyMessage[] = [];
  /** A range without its bytes is refused, as a listener that asked for bytes refuses it: the module writes them. */
  writeFile(file: FileBodyMessage, bytes?: Buffer): boolean {
    if (bytes === undefined) return false;
    this.files.push(file);
    return this.write(bytes);
  }
  trailers: string[] | undefined = undefined;
  readonly abortListeners: Array<() => void> = [];
  onClientAbort(listener: () => void): void {
    this.abortListeners.push(listener);
  }
  drained(): Promise<void> {
    this.drainCount++;
    this.#pending = 0;
    return new Promise((resolve) => setImmediate(resolve));
  }
  sendInformational(status: number, headers: readonly string[]): void {
    if (!this.headersSent && status >= 102 && status <= 199) this.informational.push({ status, headers: [...headers] });
  }

  async flush(): Promise<void> {
    if (!this.headersSent && this.onFlush) await this.onFlush();
    this.headersSent = true;
    this.flushCount++;
  }
  clearBody(): boolean {
    if (this.headersSent) return false;
    this.#chunks = [];
    this.#length = 0;
    return true;
  }
  clear(): boolean {
    if (this.headersSent) return false;
    this.#headers.clear();
    return this.clearBody();
  }
  get bodyLength(): number {
    return this.#length;
  }
  abort(): void {
    this.aborted = true;
  }
  requestClose(): void {
    this.closeRequested = true;
  }
  body(): Buffer {
    return Buffer.concat(this.#chunks);
  }
  text(): string {
    return this.body().toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------
// Context

export interface TestContextOptions {
  /** Virtual directory physical root (default: a fresh temp folder, see TestContext.root). */
  readonly root?: string;
  /** Request target as received: '/a/b.txt?x=1'. */
  readonly url?: string;
  /** Decoded path override (default: percent-decoded, normalised path of `url`). */
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly isLocal?: boolean;
  readonly contentLength?: number;
  /** Section overrides merged over SCHEMA_DEFAULTS. */
  readonly sections?: Readonly<Record<string, ElementSpec>>;
  readonly limits?: ElementSpec;
  readonly handler?: { readonly name: string; readonly modules: readonly string[] };
  /** Modules the harness runs for executeChildRequest (the handler of the child URL). */
  readonly modules?: readonly ModuleDefinition[];
  readonly response?: RecordingResponse;
  readonly notification?: Notification;
  readonly isChildRequest?: boolean;
  readonly siteName?: string;
  readonly https?: boolean;
  /** ResolvedConfig.sectionScope answers by section path ('/' when absent). */
  readonly sectionScopes?: Readonly<Record<string, string>>;
  /** Called instead of running `modules` when a child request is executed. */
  readonly onChildRequest?: (url: string, parent: TestContext) => Promise<void>;
}

function decodePath(raw: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = raw;
  }
  const normal = posix.normalize(decoded);
  return normal.startsWith('/') ? normal : '/' + normal;
}

export function makeTempDir(prefix = 'wharf-mod-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export class TestContext implements HttpContext {
  readonly request: HttpRequest & { path: string; queryString: string };
  readonly response: RecordingResponse;
  readonly site: SiteConfig;
  readonly config: ResolvedConfig;
  physicalPath: string;
  get scriptPath(): string {
    return this.request.path;
  }
  readonly handler: HandlerMapping | undefined;
  readonly appPoolName = 'DefaultAppPool';
  user = '';
  identity: Identity | undefined = undefined;
  authType = '';
  readonly isChildRequest: boolean;
  notification: Notification;
  readonly items = new Map<string, unknown>();
  readonly root: string;
  finished = false;
  errorDetail: ErrorDetail | undefined;
  readonly logs: { level: string; message: string }[] = [];
  readonly childUrls: string[] = [];
  readonly childOptions: (ChildRequestOptions | undefined)[] = [];
  /** What a module passed to request.limitBody (undefined: no cap). */
  bodyLimit: number | undefined = undefined;
  readonly #options: TestContextOptions;
  readonly #sections = new Map<string, ConfigElement>();

  constructor(options: TestContextOptions = {}) {
    this.#options = options;
    this.root = options.root ?? makeTempDir();
    this.response = options.response ?? new RecordingResponse();
    this.isChildRequest = options.isChildRequest ?? false;
    this.notification = options.notification ?? 'ExecuteRequestHandler';
    const url = options.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const path = options.path ?? decodePath(rawPath);
    const headers: Record<string, string> = { host: 'localhost' };
    for (const [k, v] of Object.entries(options.headers ?? {})) headers[k.toLowerCase()] = v;
    const rawHeaders: string[] = [];
    for (const [k, v] of Object.entries(headers)) rawHeaders.push(k === 'host' ? 'Host' : k, v);
    const isLocal = options.isLocal ?? false;
    this.request = {
      method: options.method ?? 'GET',
      rawUrl: url,
      path,
      queryString: q < 0 ? '' : url.slice(q + 1),
      protocol: 'HTTP/1.1',
      headers,
      rawHeaders,
      remoteAddress: isLocal ? '127.0.0.1' : '203.0.113.9',
      remotePort: 50123,
      localAddress: '127.0.0.1',
      localPort: options.https ? 443 : 80,
      isLocal,
      secure: options.https === true,
      tls: options.https
        ? { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', keySize: 128, secretKeySize: 256, serverSubject: 'CN=localhost', serverIssuer: 'CN=localhost', serverName: 'localhost', alpn: 'http/1.1', clientCert: '', clientCertError: '' }
        : undefined,
      contentLength: options.contentLength ?? 0,
      hasBody: (options.contentLength ?? 0) !== 0,
      body: async function* () {},
      trailers: [],
      limitBody: (maxBytes: number): void => {
        this.bodyLimit = maxBytes;
      },
      setHeader(name: string, value: string): void {
        const lower = name.toLowerCase();
        if (value === '') delete headers[lower];
        else headers[lower] = value;
        for (let i = rawHeaders.length - 2; i >= 0; i -= 2) {
          if (rawHeaders[i]!.toLowerCase() === lower) rawHeaders.splice(i, 2);
        }
        if (value !== '') rawHeaders.push(name, value);
      },
    };
    const vdir: VirtualDirectoryConfig = { path: '/', physicalPath: this.root, allowSubDirConfig: true };
    const app: ApplicationConfig = {
      path: '/',
      applicationPool: 'DefaultAppPool',
      enabledProtocols: 'http',
      preloadEnabled: false,
      virtualDirectories: [vdir],
    };
    const limits = new FakeConfigElement('limits', mergeSpecs(SITE_LIMITS_DEFAULTS, options.limits));
    const empty = new FakeConfigElement('empty', {});
    this.site = {
      id: 1,
      name: options.siteName ?? 'Default Web Site',
      serverAutoStart: true,
      bindings: [
        {
          protocol: options.https ? 'https' : 'http',
          bindingInformation: '*:80:',
          ip: '*',
          port: 80,
          host: '',
          sslFlags: 0,
        },
      ],
      applications: [app],
      hsts: { enabled: false, maxAge: 0, includeSubDomains: false, preload: false, redirectHttpToHttps: false },
      limits,
      logFile: empty,
      logFileDirectory: '',
      traceFailedRequestsLogging: empty,
      traceFailedRequestsDirectory: '',
    };
    this.physicalPath = join(this.root, ...path.split('/').filter((s) => s !== ''));
    const self = this;
    this.config = {
      site: this.site,
      application: app,
      virtualDirectory: vdir,
      virtualDirectoryUrl: '/',
      physicalPath: this.physicalPath,
      configFiles: [join(this.root, 'web.config')],
      configFileUrls: ['/'],
      sectionScope: (p: string) => options.sectionScopes?.[p] ?? '/',
      section(p: string): ConfigElement {
        let s = self.#sections.get(p);
        if (!s) {
          s = fakeSection(p, options.sections?.[p]);
          // Memoised like the real config: one element object per section and scope.
          self.#sections.set(p, s);
        }
        return s;
      },
    };
    const h = options.handler ?? { name: 'StaticFile', modules: ['StaticFileModule', 'DefaultDocumentModule', 'DirectoryListingModule'] };
    this.handler = {
      name: h.name,
      path: '*',
      verb: '*',
      modules: h.modules,
      scriptProcessor: '',
      resourceType: 'Either',
      requireAccess: 'Read',
      responseBufferLimit: 4194304,
      element: empty,
    };
  }

  finish(): void {
    this.finished = true;
  }

  setStatus(status: number, subStatus: number, detail?: Partial<ErrorDetail> & { trySkipCustomErrors?: boolean }): void {
    this.response.statusCode = status;
    this.response.subStatus = subStatus;
    this.response.clearBody();
    if (detail?.trySkipCustomErrors) this.response.trySkipCustomErrors = true;
    this.errorDetail = {
      module: detail?.module ?? 'IIS Web Core',
      notification: detail?.notification ?? this.notification,
      hresult: detail?.hresult ?? 0,
      description: detail?.description ?? '',
      ...(detail?.configFile !== undefined ? { configFile: detail.configFile } : {}),
      ...(detail?.configLine !== undefined ? { configLine: detail.configLine } : {}),
      ...(detail?.configSource !== undefined ? { configSource: detail.configSource } : {}),
    };
  }

  /** URLs rewriteUrl was given, as path?query. */
  readonly rewrites: string[] = [];
  readonly #variables = new Map<string, string>();

  rewriteUrl(path: string, queryString: string, _options?: { readonly cacheable?: boolean }): RewriteRefusal | undefined {
    this.rewrites.push(queryString === '' ? path : `${path}?${queryString}`);
    this.request.path = path;
    this.request.queryString = queryString;
    this.physicalPath = join(this.root, ...path.split('/').filter((s) => s !== ''));
    return undefined;
  }

  /** The harness's one virtual directory: `path` under root, same application and configuration. */
  mapUrl(path: string): ResolveResult | undefined {
    if (!path.startsWith('/') || /[\0-\x1f\\]|(?:^|\/)\.\.?(?:\/|$)/.test(path)) return undefined;
    return { ok: true, config: { ...this.config, physicalPath: join(this.root, ...path.split('/').filter((s) => s !== '')) } };
  }

  getServerVariable(name: string): string {
    const upper = name.toUpperCase();
    return this.#variables.get(upper) ?? computeServerVariable(this, upper);
  }

  setServerVariable(name: string, value: string): void {
    const upper = name.toUpperCase();
    const header = headerOfVariable(upper);
    if (header !== undefined) this.request.setHeader(header, value);
    else this.#variables.set(upper, value);
  }

  async executeChildRequest(url: string, options?: ChildRequestOptions): Promise<ChildRequestResult> {
    this.childUrls.push(url);
    this.childOptions.push(options);
    const res = this.response;
    // keepStatus as the worker does it: the child starts at 200 and its status is dropped after.
    const kept = options?.keepStatus === true ? { status: res.statusCode, sub: res.subStatus } : undefined;
    if (kept !== undefined) {
      res.statusCode = 200;
      res.subStatus = 0;
    }
    const result = (): ChildRequestResult => {
      const r = { status: res.statusCode, subStatus: res.subStatus };
      if (kept !== undefined) {
        res.statusCode = kept.status;
        res.subStatus = kept.sub;
      }
      return r;
    };
    if (this.#options.onChildRequest) {
      await this.#options.onChildRequest(url, this);
      return result();
    }
    const modules = this.#options.modules;
    if (!modules) return result();
    const child = new TestContext({
      ...this.#options,
      root: this.root,
      url,
      path: undefined,
      method: this.request.method,
      response: this.response,
      isChildRequest: true,
      onChildRequest: undefined,
    });
    await runHandler(child, modules);
    // A child that set an error status reports it through the shared response (as in IIS).
    if (child.errorDetail) this.errorDetail = child.errorDetail;
    return result();
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    try {
      const s = await fsStat(path);
      return { path, isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
    } catch {
      return undefined;
    }
  }

  /** Like a warm worker cache: a synchronous, always-fresh stat (statCacheCold=true → undefined). */
  statCached(path: string): FileInfo | null | undefined {
    if (this.statCacheCold) return undefined;
    const s = statSync(path, { throwIfNoEntry: false });
    if (s === undefined) return null;
    return { path, isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  }
  /** Make statCached() report nothing cached, so modules take their asynchronous path. */
  statCacheCold = false;

  log(level: 'info' | 'warn' | 'error', message: string): void {
    this.logs.push({ level, message });
  }

  /** Events the module traced (HttpContext.trace); recorded only while `tracing` is true. */
  readonly traces: ModuleTrace[] = [];
  tracing = false;
  trace(event: ModuleTrace): void {
    if (this.tracing) this.traces.push(event);
  }
}

/** Run the handler's modules (in the handler's order) until one finishes the request. */
export async function runHandler(ctx: TestContext, modules: readonly ModuleDefinition[]): Promise<void> {
  ctx.notification = 'ExecuteRequestHandler';
  const names = ctx.handler?.modules ?? modules.map((m) => m.name);
  for (const name of names) {
    const m = modules.find((x) => x.name === name);
    if (!m?.executeHandler) continue;
    await m.executeHandler(ctx);
    if (ctx.finished) return;
  }
}

/** Run one notification of one module, as the pipeline would. */
export async function runNotification(ctx: TestContext, module: ModuleDefinition, notification: Notification): Promise<void> {
  ctx.notification = notification;
  const fn = module.notifications?.[notification];
  if (!fn) throw new Error(`${module.name} does not hook ${notification}`);
  await fn(ctx);
}
