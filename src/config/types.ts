/**
 * Public types of the configuration system. The listener, WAS and workers meet the config only
 * through these types (STYLE.md: roles meet through src/ipc and src/config).
 */
import type { ConfigError, SourcePosition } from '../errors.js';

/** A typed attribute value after parsing: bool → boolean, numbers and enums → number,
 *  timeSpan → milliseconds, flags → number (bitmask), string → string. */
export type ConfigValue = boolean | number | string;

/**
 * One element of the effective (merged) configuration: a section, a child element or a collection
 * item. Attribute lookups return the closest level's value, else the schema default.
 */
export interface ConfigElement {
  readonly name: string;
  /** Typed value of an attribute (schema default when unset). Throws on a name not in the schema. */
  get(attribute: string): ConfigValue;
  bool(attribute: string): boolean;
  num(attribute: string): number;
  str(attribute: string): string;
  /** Enum attribute as its friendly name (e.g. "DetailedLocalOnly"). */
  enumName(attribute: string): string;
  /** Flags attribute as the set of friendly names that are on. */
  flagNames(attribute: string): ReadonlySet<string>;
  /** Whether some level set the attribute explicitly. */
  isSet(attribute: string): boolean;
  /** A child element (never undefined for a schema child: defaults fill it). */
  child(name: string): ConfigElement;
  /** Collection items in effective order (empty when the element is not a collection). */
  readonly items: readonly ConfigElement[];
  /** Where the element (or item) was written, when it came from a file. */
  readonly source: SourcePosition | undefined;
}

export interface BindingConfig {
  readonly protocol: string; // 'http' | 'https' | others kept but not listened on
  readonly bindingInformation: string;
  /** '*' for all addresses, else a literal IPv4/IPv6 address (brackets removed). */
  readonly ip: string;
  readonly port: number;
  /** Lower-case host name; '' matches any host. May start with '*.' (IIS 10 wildcard host). */
  readonly host: string;
  /**
   * https bindings: HTTP.sys's flags (SSL_FLAGS_*): 1 SNI (the certificate comes from the
   * `hostnameport` entry of the SSL table), 2 Central Certificate Store, 4 no HTTP/2, 8 no OCSP
   * stapling, 16 no QUIC, 32 no TLS 1.3, 64 no legacy TLS. 0 for other protocols.
   */
  readonly sslFlags: number;
  /** Where the binding was written (`wharf check` names it), when it came from a file. */
  readonly source?: SourcePosition;
}

/** The site's HTTP Strict Transport Security (`<hsts>`, IIS 10 1709+). */
export interface HstsConfig {
  readonly enabled: boolean;
  readonly maxAge: number;
  readonly includeSubDomains: boolean;
  readonly preload: boolean;
  readonly redirectHttpToHttps: boolean;
}

export interface VirtualDirectoryConfig {
  /** Path relative to its application ('/' or '/images'). */
  readonly path: string;
  /** Linux path after %VAR% expansion and Windows path mapping. */
  readonly physicalPath: string;
  readonly allowSubDirConfig: boolean;
}

export interface ApplicationConfig {
  /** '/' or '/app' (no trailing slash). */
  readonly path: string;
  readonly applicationPool: string;
  readonly enabledProtocols: string;
  readonly preloadEnabled: boolean;
  readonly virtualDirectories: readonly VirtualDirectoryConfig[];
}

export interface SiteConfig {
  readonly id: number;
  readonly name: string;
  readonly serverAutoStart: boolean;
  readonly bindings: readonly BindingConfig[];
  readonly applications: readonly ApplicationConfig[];
  readonly hsts: HstsConfig;
  /** siteDefaults merged with the site's own <limits>. */
  readonly limits: ConfigElement;
  /** siteDefaults/logFile merged with the site's own <logFile>; directory already mapped. */
  readonly logFile: ConfigElement;
  readonly logFileDirectory: string;
  readonly traceFailedRequestsLogging: ConfigElement;
  /** traceFailedRequestsLogging's directory, expanded and mapped like logFileDirectory. */
  readonly traceFailedRequestsDirectory: string;
}

export interface AppPoolConfig {
  readonly name: string;
  /** The <add> element merged over applicationPoolDefaults (child elements processModel, recycling, failure, cpu…). */
  readonly element: ConfigElement;
  readonly queueLength: number;
  readonly autoStart: boolean;
  readonly startMode: string;
}

/** A section the file uses that Wharf does not implement: kept, reported once, never fatal. */
export interface UnsupportedUse {
  /** Section path such as 'system.web/compilation' or 'system.webServer/rewrite/rules'. */
  readonly section: string;
  readonly position: SourcePosition;
}

/** The parsed and validated applicationHost.config. */
export interface AppHostConfig {
  readonly file: string;
  /** Text it was parsed from (sent to workers so they parse the very same configuration). */
  readonly text: string;
  readonly sites: readonly SiteConfig[];
  readonly applicationPools: readonly AppPoolConfig[];
  /** `system.applicationHost/log centralW3CLogFile directory`, expanded and mapped like logFile directories. */
  readonly centralW3CLogDirectory: string;
  /** Server-level sections (outside any <location>), e.g. 'system.applicationHost/webLimits'. */
  section(path: string): ConfigElement;
  readonly unsupported: readonly UnsupportedUse[];
}

/** Effective configuration for one URL of one site. */
export interface ResolvedConfig {
  readonly site: SiteConfig;
  readonly application: ApplicationConfig;
  readonly virtualDirectory: VirtualDirectoryConfig;
  /** The virtual directory's full URL path ('/app/images'). */
  readonly virtualDirectoryUrl: string;
  /** Physical path the URL maps to (may not exist). Never outside the virtual directory. */
  readonly physicalPath: string;
  /** The web.config paths (existing or not) whose content applies to this URL, outermost first. */
  readonly configFiles: readonly string[];
  /** The URL path of each configFiles entry's folder ('/', '/content'), in the same order. */
  readonly configFileUrls: readonly string[];
  /** Merged system.webServer (or other) section, e.g. 'system.webServer/staticContent'. */
  section(path: string): ConfigElement;
  /**
   * The URL path of the deepest configuration level that writes the section for this URL: the
   * folder of a web.config, or the path of a `<location>` ('/old', '/old/page.htm'); '/' when
   * only the server level or the site root does (httpRedirect appends the rest of the URL below it).
   */
  sectionScope(path: string): string;
}

export type ResolveResult =
  | { readonly ok: true; readonly config: ResolvedConfig }
  | { readonly ok: false; readonly error: ConfigError };

/**
 * How Windows paths in configuration map to Linux (docs/configuration.md states the rule).
 * `systemDrive` is where `%SystemDrive%` and `C:` point.
 */
export interface PathMapOptions {
  readonly systemDrive: string;
  /** Directory of the config file a relative physicalPath is relative to. */
  readonly baseDir: string;
  /** Extra %VAR% values (IIS_BIN, IIS_USER_HOME, …); the process environment is consulted after these. */
  readonly variables?: Readonly<Record<string, string>>;
}
