/**
 * The error catalogue. Every failure Wharf reports has one subclass here with a stable `code`;
 * callers branch on `code`, never on message text. `docs/errors.md` lists every code (a test keeps
 * the two in step).
 */

export interface SourcePosition {
  /** Absolute path of the file the problem is in. */
  readonly file: string;
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
}

/**
 * Every code, with a one-line meaning: the one table the code types derive from. docs/errors.md
 * lists each of them and every code is used somewhere in src/ (errors.test.ts keeps all three in
 * step). A code is added here first; `new WasError('WAS_NEW', …)` does not compile until it is.
 */
export const ERROR_CODES = {
  CFG_XML: 'A configuration file is not well-formed XML.',
  CFG_READ: 'A configuration file exists but cannot be read.',
  CFG_UNKNOWN_ELEMENT: 'An element is not part of its section\'s schema.',
  CFG_UNKNOWN_ATTRIBUTE: 'An attribute is not part of its element\'s schema.',
  CFG_INVALID_VALUE: 'An attribute value does not parse as its schema type or fails its validator.',
  CFG_MISSING_ATTRIBUTE: 'A required attribute is missing.',
  CFG_DUPLICATE_ENTRY: 'A collection <add> repeats a key that is already present.',
  CFG_LOCKED: 'A section, attribute, element or collection item is locked at a parent level.',
  CFG_WRONG_LEVEL: 'A section is used at a level its allowDefinition or allowLocation forbids.',
  CFG_DUPLICATE_SECTION: 'A section appears twice at the same level of one file.',
  CFG_INVALID_SITE: 'The sites or application pools cannot be served as configured.',
  CFG_NOT_ENFORCED: 'Warning: a security setting is read but not enforced by Wharf yet; IIS would refuse requests that Wharf serves.',
  CFG_NO_EFFECT: 'Note: a setting is read but has no effect in Wharf.',
  CFG_NO_HANDLERS: 'Warning: there are no handler mappings; every request will get 404.4.',
  CFG_HANDLER_MODULE: 'Warning: a handler mapping names a module that is not in <modules>; its requests will get 500.21.',
  CFG_FASTCGI: 'Warning: a FastCGI handler names no fastCgi application, or an application\'s program cannot be started; its requests will get 500.0.',
  LSN_BIND: 'A binding\'s address and port cannot be listened on.',
  LSN_PROTOCOL: 'A client sent a malformed HTTP request.',
  LSN_HTTP_PARAMETER: 'WHARF_HTTP_PARAMETERS names an unknown HTTP.sys parameter or a value out of range.',
  LSN_LOG_WRITE: 'A W3C or httperr log file cannot be written; records are kept for retry, the oldest dropped beyond the memory cap.',
  LSN_EXCHANGE_STATE: 'Internal: a request in the listener changed state against its transition table (a bug; logged, the request may fail).',
  LSN_LOG_OWNER: 'The owner given for log files (--log-owner) does not exist, or Wharf cannot give files to it.',
  LSN_TRACE_WRITE: 'A failed-request trace file (W3SVC<id>/frNNNNNN.xml) cannot be written; that trace is lost, serving continues.',
  LSN_TRACE_REJECTED: 'A worker sent a failed-request trace that is malformed, too large, or for a site its pool does not serve; it is not written.',
  WAS_WORKER_START: 'A worker process could not be started.',
  WAS_RAPID_FAIL: 'A pool\'s workers failed rapidFailProtectionMaxCrashes times within rapidFailProtectionInterval; the pool was stopped.',
  WAS_IDENTITY: 'A pool\'s identity cannot be resolved to a Linux user, or the user cannot be created.',
  MET_ADDRESS: '--metrics-address is not HOST:PORT with a port from 1 to 65535 (IPv6 as [addr]:PORT).',
  MET_LISTEN: 'The metrics endpoint cannot listen on the --metrics-address given (port in use, address not on this machine, port below 1024 without privilege).',
  ADM_CONNECT: 'The admin socket of the running server cannot be reached.',
  ADM_NOT_FOUND: 'An admin command names a site, pool or other object that does not exist.',
  ADM_REQUEST: 'An admin command is malformed or not allowed in the object\'s current state.',
  ADM_STOP_TIMEOUT: '`wharf stop` asked the server to stop, but its main process still runs after its drain budget plus 15 s.',
  IPC_CLOSED: 'The channel to a worker closed while requests were in flight (the worker exited or was killed); they were replayed or answered 502.',
  IPC_PROTOCOL: 'A frame on a worker channel is malformed.',
  IPC_INVALID_MESSAGE: 'A worker sent a message with a value out of range (status, sub-status, header count or length, cache policy …); that worker\'s channel was closed.',
  MOD_UNKNOWN: 'A handler or the modules list names a module that is not registered.',
  MOD_FAILED: 'A module threw while processing a request.',
  MOD_TRACE_RULE: 'A traceFailedRequests rule has a part Wharf cannot apply (a statusCodes entry, an unknown area, a custom action); that part is left out.',
  MOD_CLIENT_DISCONNECTED: 'The client disconnected while a module or the application was reading the request body.',
  MOD_BODY_CONSUMED: 'A module or the application read a request body that had already been read.',
  MOD_BODY_TOO_LARGE: 'A request body of unknown length (chunked) grew past requestFiltering maxAllowedContentLength while it was being read; the request is answered 404.13.',
  TLS_FILE_READ: 'A certificate, key or store file cannot be read (missing, no permission, a folder).',
  TLS_FORMAT: 'A file is not a certificate Wharf can read: neither PKCS#12 (PFX) nor PEM, or damaged.',
  TLS_PASSWORD: 'The password does not open a PFX file or an encrypted private key (wrong or missing).',
  TLS_NO_KEY: 'A certificate file has no private key (and no --key was given); a server certificate needs one.',
  TLS_KEY_MISMATCH: 'A private key does not belong to any certificate in the file.',
  TLS_EXPIRED: 'Warning: a certificate has expired or is not valid yet; it is imported or served all the same.',
  TLS_STORE_WRITE: 'The certificate store, the SSL bindings table or the Central Certificate Store settings cannot be written.',
  TLS_CERT_NOT_FOUND: 'A thumbprint names no certificate in the store (netsh: Error 1312).',
  TLS_CERT_IN_USE: 'wharf cert delete: an SSL binding (sslcert) still uses the certificate; delete the binding first, or use --force.',
  TLS_SSLCERT_EXISTS: 'wharf sslcert add: an entry for that ipport or hostnameport exists already (netsh: Error 183).',
  TLS_SSLCERT_NOT_FOUND: 'wharf sslcert show|delete: no entry for that ipport or hostnameport (netsh: Error 2).',
  TLS_SSLCERT_PARAMETER: 'wharf sslcert: a parameter is unknown, missing or malformed (netsh: Error 87).',
  TLS_TABLE_INVALID: 'The SSL bindings table or the Central Certificate Store settings file is not valid JSON of its shape; the last good one stays in use.',
  TLS_CCS_PATH: 'The Central Certificate Store folder does not exist or is not a folder.',
  TLS_CCS_NO_FILE: 'The Central Certificate Store has neither <host>.pfx nor _.<parent domain>.pfx for a host name.',
  TLS_DEV_CERT: 'The development certificate cannot be created or stored.',
  TLS_ACME_ORDER: 'An ACME order failed (CA unreachable, challenge not validated, rate limited …); retried after a backoff that survives restarts.',
  OTEL_EXPORT: 'Spans could not be sent to the OpenTelemetry collector (unreachable, refused, timed out); they are dropped, requests are not affected.',
  OTEL_CONFIG: 'An OTEL_* environment variable has a value Wharf cannot use (an unknown OTLP protocol or exporter); the standard default is used instead.',
  SEC_USER_NAME: 'wharf user: a user name is empty, too long, or has characters Wharf users may not have.',
  SEC_USER_EXISTS: 'wharf user add: a Wharf user of that name exists already (names are case-insensitive).',
  SEC_USER_NOT_FOUND: 'wharf user delete: no Wharf user has that name.',
  SEC_USER_STORE: 'Wharf\'s user store or its machine key cannot be read or written, or is not valid; logons of Wharf users fail until it is fixed.',
  SEC_PAM: 'PAM cannot be used (the optional module authenticate-pam is not installed or did not build); logons of Linux accounts get 500.',
  SEC_LOGON_FAILED: 'Warning: a logon failed (wrong password, unknown user, bad Digest response); the line names the user, the client address and why, never the password.',
  SEC_THROTTLED: 'Warning: a client address failed to log on too often; its logons are refused without checking for a while.',
} as const satisfies Readonly<Record<string, string>>;

/** A code of the catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of one area (`LSN`, `WAS` …), for that area's error class. */
export type AreaCode<Area extends string> = Extract<ErrorCode, `${Area}_${string}`>;

export class WharfError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * IIS's HRESULTs for configuration errors, shown on the 500.19 page and in the server log.
 * 0x8007000d malformed XML / unrecognized element or attribute / invalid value,
 * 0x80070021 locked section or element, 0x800700b7 duplicate collection entry,
 * 0x80070005 file cannot be read (permissions), 0x80070003 path not found.
 */
export const HRESULT = {
  invalidData: 0x8007000d,
  lockViolation: 0x80070021,
  alreadyExists: 0x800700b7,
  accessDenied: 0x80070005,
  pathNotFound: 0x80070003,
} as const;

export function formatHResult(hr: number): string {
  return '0x' + (hr >>> 0).toString(16).padStart(8, '0');
}

/** A configuration file is invalid. Carries the position and IIS HRESULT for 500.19. */
export class ConfigError extends WharfError {
  readonly position: SourcePosition | undefined;
  readonly hresult: number;
  constructor(
    code: ConfigErrorCode,
    message: string,
    position: SourcePosition | undefined,
    hresult: number = HRESULT.invalidData,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.position = position;
    this.hresult = hresult;
  }
  /**
   * `file:line:column: message`, the form used in logs and the CLI; `file: message` when the
   * problem is the file as a whole (line 0: missing, unreadable), as compilers print it.
   */
  describe(): string {
    const p = this.position;
    if (p === undefined) return this.message;
    return p.line > 0 ? `${p.file}:${p.line}:${p.column}: ${this.message}` : `${p.file}: ${this.message}`;
  }
}

/** The codes a ConfigError carries (the CFG_ codes that are not warnings). */
export type ConfigErrorCode = Extract<
  ErrorCode,
  | 'CFG_XML' // not well-formed XML
  | 'CFG_READ' // file cannot be read
  | 'CFG_UNKNOWN_ELEMENT' // element not in the section's schema
  | 'CFG_UNKNOWN_ATTRIBUTE' // attribute not in the element's schema
  | 'CFG_INVALID_VALUE' // value does not parse or fails its validator
  | 'CFG_MISSING_ATTRIBUTE' // a required attribute is absent
  | 'CFG_DUPLICATE_ENTRY' // <add> of a key that already exists
  | 'CFG_LOCKED' // section, attribute, element or item locked at a parent level
  | 'CFG_WRONG_LEVEL' // section used where allowDefinition forbids it, or in a forbidden <location>
  | 'CFG_DUPLICATE_SECTION' // a section appears twice at one level
  | 'CFG_INVALID_SITE' // sites/pools that cannot be served (duplicate ids, missing root application…)
>;

/** The listener refused a request or connection (HTTP.sys-level). */
export class ListenerError extends WharfError {
  declare readonly code: AreaCode<'LSN'>;
  constructor(code: AreaCode<'LSN'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
/** Worker process management. */
export class WasError extends WharfError {
  declare readonly code: AreaCode<'WAS'>;
  constructor(code: AreaCode<'WAS'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
/** The listener ↔ worker channel. */
export class IpcError extends WharfError {
  declare readonly code: AreaCode<'IPC'>;
  constructor(code: AreaCode<'IPC'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
/** A pipeline module failed. */
export class ModuleError extends WharfError {
  declare readonly code: AreaCode<'MOD'>;
  constructor(code: AreaCode<'MOD'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
/** The admin socket or an admin command (`wharf list|start|stop|recycle …`). */
export class AdminError extends WharfError {
  declare readonly code: AreaCode<'ADM'>;
  constructor(code: AreaCode<'ADM'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
/** The metrics endpoint (`wharf start --metrics-address`). */
export class MetricsError extends WharfError {
  declare readonly code: AreaCode<'MET'>;
  constructor(code: AreaCode<'MET'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** OpenTelemetry trace export (src/tracing/): never fails a request, only reported. */
export class TelemetryError extends WharfError {
  declare readonly code: AreaCode<'OTEL'>;
  constructor(code: AreaCode<'OTEL'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Certificates: the store, the SSL bindings table, the Central Certificate Store (src/tls/). */
export class TlsError extends WharfError {
  declare readonly code: AreaCode<'TLS'>;
  constructor(code: AreaCode<'TLS'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Users and credentials: Wharf's user store, PAM, the logon failure limit (src/security/). */
export class SecurityError extends WharfError {
  declare readonly code: AreaCode<'SEC'>;
  constructor(code: AreaCode<'SEC'>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
