/**
 * applicationHost.config: the server level. Parses and validates the whole file, merges the
 * server-level sections (content outside <location> and in <location path="">), and builds the
 * typed sites and application pools WAS and the listener work from. Every <location> of the file
 * is trial-merged too, so a broken one is reported at load time rather than on some request.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import { parseConfigFile } from './config-file.js';
import type { ConfigFile, LocationBlock, SectionRegistration } from './config-file.js';
import { mergeSection, sectionOrDefaults, ValueContext } from './merge.js';
import type { Contribution, EffectiveRegistration, MergedElement } from './merge.js';
import { mapExpandedPath } from './path-map.js';
import { SECTIONS } from './schema.js';
import { keyDisplay } from './section-node.js';
import type {
  AppHostConfig,
  AppPoolConfig,
  ApplicationConfig,
  BindingConfig,
  ConfigElement,
  PathMapOptions,
  SiteConfig,
  UnsupportedUse,
  VirtualDirectoryConfig,
} from './types.js';
import { decodeConfigBytes } from './xml-document.js';
import { poolKey } from './pool-key.js';

export interface LoadAppHostOptions {
  /** Linux folder standing for C: (and %SystemDrive%). */
  readonly systemDrive: string;
  /** Extra %VAR% values (IIS_BIN, IIS_USER_HOME…), consulted before the environment. */
  readonly variables?: Readonly<Record<string, string>> | undefined;
}

/** What ConfigSystem needs beyond the public AppHostConfig (not exported from index.ts). */
export interface AppHostInternals {
  readonly config: ConfigFile;
  readonly context: ValueContext;
  readonly mapOptions: PathMapOptions;
  /** Blocks at the server level (root content and <location path="">), in file order. */
  readonly serverBlocks: readonly LocationBlock[];
  /** <location> blocks under each site, keyed by lower-case site name. */
  readonly siteBlocks: ReadonlyMap<string, readonly SiteLocation[]>;
}

/** An applicationHost <location> below the server level: 'Site' → '/', 'Site/app/x' → '/app/x'. */
export interface SiteLocation {
  readonly block: LocationBlock;
  /** URL path inside the site, as written ('/', '/app/x'). */
  readonly url: string;
  readonly urlLower: string;
}

const internals = new WeakMap<AppHostConfig, AppHostInternals>();

export function appHostInternals(appHost: AppHostConfig): AppHostInternals | undefined {
  return internals.get(appHost);
}

/** The registration in force: applicationHost's <configSections>, else the schema table's. */
export function registrationFor(path: string, registered: ReadonlyMap<string, SectionRegistration>): EffectiveRegistration {
  const r = registered.get(path);
  if (r) return r;
  const s = SECTIONS.get(path)!;
  return { overrideModeDefault: s.overrideModeDefault, allowDefinition: s.allowDefinition, allowLocation: s.allowLocation };
}

class LoadedAppHost implements AppHostConfig {
  readonly file: string;
  readonly text: string;
  readonly sites: readonly SiteConfig[];
  readonly applicationPools: readonly AppPoolConfig[];
  readonly unsupported: readonly UnsupportedUse[];
  readonly centralW3CLogDirectory: string;
  readonly #sections: ReadonlyMap<string, MergedElement>;
  readonly #context: ValueContext;

  constructor(
    file: string,
    text: string,
    sites: readonly SiteConfig[],
    pools: readonly AppPoolConfig[],
    unsupported: readonly UnsupportedUse[],
    sections: ReadonlyMap<string, MergedElement>,
    context: ValueContext,
    centralW3CLogDirectory: string,
  ) {
    this.centralW3CLogDirectory = centralW3CLogDirectory;
    this.file = file;
    this.text = text;
    this.sites = sites;
    this.applicationPools = pools;
    this.unsupported = unsupported;
    this.#sections = sections;
    this.#context = context;
  }

  section(path: string): ConfigElement {
    return sectionOrDefaults(this.#sections, this.#context, path);
  }
}

function invalidSite(message: string, position: SourcePosition | undefined): ConfigError {
  return new ConfigError('CFG_INVALID_SITE', message, position, HRESULT.invalidData);
}

function invalidValue(message: string, position: SourcePosition | undefined): ConfigError {
  return new ConfigError('CFG_INVALID_VALUE', message, position, HRESULT.invalidData);
}

/**
 * bindingInformation is "IP:port:host". IP '*' (or empty, as IIS Express writes ':8080:localhost')
 * means all addresses; an IPv6 address is bracketed ('[::1]:80:'); an empty host matches any Host
 * header. Non-HTTP protocols (net.tcp '808:*', …) have their own formats and are kept as written.
 */
export function parseBindingInformation(protocol: string, info: string, position: SourcePosition | undefined, sslFlags = 0): BindingConfig {
  const web = protocol.toLowerCase() === 'http' || protocol.toLowerCase() === 'https';
  if (protocol.toLowerCase() !== 'https') sslFlags = 0;
  const bad = (): BindingConfig => {
    if (!web) return { protocol, bindingInformation: info, ip: '', port: 0, host: '', sslFlags };
    throw invalidValue(
      `Invalid value '${info}' for attribute 'bindingInformation' of element 'binding': expected IP:port:host (for example *:80: or [::1]:8080:example.com)`,
      position,
    );
  };
  let ip: string;
  let rest: string;
  if (info.startsWith('[')) {
    const close = info.indexOf(']');
    if (close === -1 || info[close + 1] !== ':') return bad();
    ip = info.slice(1, close);
    rest = info.slice(close + 2);
  } else {
    const colon = info.indexOf(':');
    if (colon === -1) return bad();
    ip = info.slice(0, colon);
    rest = info.slice(colon + 1);
  }
  const colon = rest.indexOf(':');
  if (colon === -1) return bad();
  const portText = rest.slice(0, colon);
  const host = rest.slice(colon + 1).trim().toLowerCase();
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return bad();
  return { protocol, bindingInformation: info, ip: ip === '' ? '*' : ip, port, host, sslFlags, ...(position !== undefined ? { source: position } : {}) };
}

function serverContributions(blocks: readonly LocationBlock[], path: string): Contribution[] {
  const out: Contribution[] = [];
  for (const block of blocks) {
    const use = block.sections.get(path);
    if (use) out.push({ use, block, fromAppHost: true, atApplicationRoot: true });
  }
  return out;
}

/** IIS rejects a second site with the same id or name; so does Wharf, at the duplicate <site>. */
function checkUniqueSites(serverBlocks: readonly LocationBlock[]): void {
  const schema = SECTIONS.get('system.applicationHost/sites')!;
  const item = schema.collection!.item;
  const nameAttr = item.attributeIndex.get('name')!;
  const idAttr = item.attributeIndex.get('id')!;
  for (const block of serverBlocks) {
    const use = block.sections.get(schema.path);
    if (!use) continue;
    const names = new Map<string, string>();
    const ids = new Map<number, string>();
    for (const d of use.node.directives) {
      if (d.kind !== 'add') continue;
      const name = String(d.item.values[nameAttr.index]!.value);
      const id = d.item.values[idAttr.index]!.value as number;
      const sameName = names.get(name.toLowerCase());
      if (sameName !== undefined) {
        throw invalidSite(`Cannot add duplicate collection entry of type 'site' with unique key attribute 'name' set to '${name}'`, d.item.position);
      }
      const sameId = ids.get(id);
      if (sameId !== undefined) {
        throw invalidSite(
          `Cannot add duplicate collection entry of type 'site' with unique key attribute 'id' set to '${keyDisplay(d.item.values, idAttr)}' (already used by site '${sameId}')`,
          d.item.position,
        );
      }
      names.set(name.toLowerCase(), name);
      ids.set(id, name);
    }
  }
}

function buildSite(site: MergedElement, poolNames: ReadonlySet<string>, mapOptions: PathMapOptions): SiteConfig {
  const name = site.str('name');
  const id = site.num('id');
  const bindings = site.child('bindings').items.map((b) =>
    parseBindingInformation(b.str('protocol'), b.str('bindingInformation'), b.attributeSource('bindingInformation') ?? b.source, b.num('sslFlags')),
  );
  const applications: ApplicationConfig[] = [];
  for (const app of site.items) {
    const path = app.str('path');
    const pool = app.str('applicationPool');
    if (pool === '') {
      throw invalidSite(`The application '${path}' of site '${name}' has no applicationPool and no applicationDefaults supplies one`, app.source);
    }
    if (!poolNames.has(poolKey(pool))) {
      throw invalidSite(`The application '${path}' of site '${name}' uses the application pool '${pool}', which does not exist`, app.attributeSource('applicationPool') ?? app.source);
    }
    const virtualDirectories: VirtualDirectoryConfig[] = app.items.map((vdir) => {
      const vpath = vdir.str('path');
      const physical = vdir.str('physicalPath');
      const at = vdir.attributeSource('physicalPath') ?? vdir.source;
      if (physical === '') throw invalidSite(`The virtual directory '${vpath}' of application '${path}' in site '${name}' has no physicalPath`, at);
      return { path: vpath, physicalPath: mapExpandedPath(physical, mapOptions, at), allowSubDirConfig: vdir.bool('allowSubDirConfig') };
    });
    if (!virtualDirectories.some((v) => v.path === '/')) {
      throw invalidSite(`The application '${path}' of site '${name}' has no root virtual directory '/'`, app.source);
    }
    applications.push({
      path,
      applicationPool: pool,
      enabledProtocols: app.str('enabledProtocols'),
      preloadEnabled: app.bool('preloadEnabled'),
      virtualDirectories,
    });
  }
  if (!applications.some((a) => a.path === '/')) {
    throw invalidSite(`The site '${name}' has no root application '/'`, site.source);
  }
  const logFile = site.child('logFile');
  const tracing = site.child('traceFailedRequestsLogging');
  const hsts = site.child('hsts');
  return {
    id,
    name,
    serverAutoStart: site.bool('serverAutoStart'),
    bindings,
    applications,
    hsts: {
      enabled: hsts.bool('enabled'),
      maxAge: hsts.num('max-age'),
      includeSubDomains: hsts.bool('includeSubDomains'),
      preload: hsts.bool('preload'),
      redirectHttpToHttps: hsts.bool('redirectHttpToHttps'),
    },
    limits: site.child('limits'),
    logFile,
    logFileDirectory: mapExpandedPath(logFile.str('directory'), mapOptions, logFile.attributeSource('directory')),
    traceFailedRequestsLogging: tracing,
    traceFailedRequestsDirectory: mapExpandedPath(tracing.str('directory'), mapOptions, tracing.attributeSource('directory')),
  };
}

/** Splits 'Site Name/app/x' into the site part and the URL part ('/app/x'). */
function splitLocation(path: string): { site: string; url: string } {
  const slash = path.indexOf('/');
  return slash === -1 ? { site: path, url: '/' } : { site: path.slice(0, slash), url: path.slice(slash) };
}

function isUrlPrefix(prefixLower: string, urlLower: string): boolean {
  return prefixLower === '/' || urlLower === prefixLower || urlLower.startsWith(prefixLower + '/');
}

/** Merges every <location> with the levels above it, so its errors surface at load time. */
function checkLocations(
  serverBlocks: readonly LocationBlock[],
  siteBlocks: ReadonlyMap<string, readonly SiteLocation[]>,
  registered: ReadonlyMap<string, SectionRegistration>,
  context: ValueContext,
): void {
  for (const locations of siteBlocks.values()) {
    for (const target of locations) {
      const chain = locations
        .filter((l) => isUrlPrefix(l.urlLower, target.urlLower))
        .sort((a, b) => a.urlLower.length - b.urlLower.length);
      for (const path of target.block.sections.keys()) {
        const contributions = serverContributions(serverBlocks, path);
        for (const l of chain) {
          const use = l.block.sections.get(path);
          if (use) contributions.push({ use, block: l.block, fromAppHost: true, atApplicationRoot: true });
        }
        mergeSection(SECTIONS.get(path)!, registrationFor(path, registered), contributions, context);
      }
    }
  }
}

/** Parses, validates and types an applicationHost.config. Throws ConfigError. */
export function loadAppHost(file: string, text: string, opts: LoadAppHostOptions): AppHostConfig {
  const config = parseConfigFile(file, text, { kind: 'appHost', variables: opts.variables });
  const context = new ValueContext(opts.variables);
  const mapOptions: PathMapOptions = { systemDrive: opts.systemDrive, baseDir: dirname(file), variables: opts.variables };

  const serverBlocks = config.blocks.filter((b) => b.path === '');
  const siteBlocks = new Map<string, SiteLocation[]>();
  for (const block of config.blocks) {
    if (block.path === '') continue;
    const { site, url } = splitLocation(block.path);
    const list = siteBlocks.get(site.toLowerCase()) ?? [];
    list.push({ block, url, urlLower: url.toLowerCase() });
    siteBlocks.set(site.toLowerCase(), list);
  }

  checkUniqueSites(serverBlocks);
  const sections = new Map<string, MergedElement>();
  for (const block of serverBlocks) {
    for (const path of block.sections.keys()) {
      if (sections.has(path)) continue;
      sections.set(path, mergeSection(SECTIONS.get(path)!, registrationFor(path, config.registrations), serverContributions(serverBlocks, path), context));
    }
  }

  const poolsSection = sections.get('system.applicationHost/applicationPools') ?? context.defaults(SECTIONS.get('system.applicationHost/applicationPools')!);
  const applicationPools: AppPoolConfig[] = poolsSection.items.map((pool) => ({
    name: pool.str('name'),
    element: pool,
    queueLength: pool.num('queueLength'),
    autoStart: pool.bool('autoStart'),
    startMode: pool.enumName('startMode'),
  }));
  const poolNames = new Set(applicationPools.map((p) => poolKey(p.name)));

  const sitesSection = sections.get('system.applicationHost/sites') ?? context.defaults(SECTIONS.get('system.applicationHost/sites')!);
  const sites = sitesSection.items.map((site) => buildSite(site, poolNames, mapOptions));

  checkLocations(serverBlocks, siteBlocks, config.registrations, context);

  const centralW3C = sectionOrDefaults(sections, context, 'system.applicationHost/log').child('centralW3CLogFile');
  const centralW3CLogDirectory = mapExpandedPath(centralW3C.str('directory'), mapOptions, centralW3C.attributeSource('directory'));
  const loaded = new LoadedAppHost(file, text, sites, applicationPools, config.unsupported, sections, context, centralW3CLogDirectory);
  internals.set(loaded, { config, context, mapOptions, serverBlocks, siteBlocks });
  for (const site of sites) siteOwners.set(site, loaded);
  return loaded;
}

/** A section as applicationHost.config alone sets it for a whole site (siteLevelSection). */
export interface SiteLevelSection {
  /** The server level merged with `<location path="Site">`. */
  readonly element: ConfigElement;
  /**
   * Whether every URL of the site gets exactly this: no `<location>` deeper in the site writes
   * the section and it stays locked (overrideMode Deny) for the site's web.config files. The
   * listener enforces such a section itself; a module skips it then (ipSecurity).
   */
  readonly final: boolean;
}

const siteOwners = new WeakMap<SiteConfig, AppHostConfig>();
const siteLevelCache = new WeakMap<SiteConfig, Map<string, SiteLevelSection>>();

/**
 * A section of `site` as applicationHost.config sets it (server level, then `<location>`s for
 * the site root), or undefined for a site not produced by loadAppHost. Cached per site object,
 * so both the listener and a worker (each with its own load of the same text) pay it once.
 */
export function siteLevelSection(site: SiteConfig, path: string): SiteLevelSection | undefined {
  const appHost = siteOwners.get(site);
  const int = appHost === undefined ? undefined : internals.get(appHost);
  const schema = SECTIONS.get(path);
  if (int === undefined || schema === undefined) return undefined;
  let cache = siteLevelCache.get(site);
  if (cache === undefined) siteLevelCache.set(site, (cache = new Map()));
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const registration = registrationFor(path, int.config.registrations);
  const contributions = serverContributions(int.serverBlocks, path);
  let deeper = false;
  for (const l of int.siteBlocks.get(site.name.toLowerCase()) ?? []) {
    const use = l.block.sections.get(path);
    if (use === undefined) continue;
    if (l.urlLower === '/') contributions.push({ use, block: l.block, fromAppHost: true, atApplicationRoot: true });
    else deeper = true;
  }
  // The lock web.config files see, as mergeSection computes it: the registration's default,
  // then each contributing level's overrideMode.
  let mode = registration.overrideModeDefault;
  for (const c of contributions) if (c.block.overrideMode !== 'Inherit') mode = c.block.overrideMode;
  // Every <location> was trial-merged at load time, so this merge cannot throw.
  const element = mergeSection(schema, registration, contributions, int.context);
  const result: SiteLevelSection = { element, final: !deeper && mode === 'Deny' };
  cache.set(path, result);
  return result;
}

function readError(file: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  const hresult = code === 'ENOENT' || code === 'ENOTDIR' ? HRESULT.pathNotFound : code === 'EACCES' || code === 'EPERM' ? HRESULT.accessDenied : HRESULT.invalidData;
  const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : 'read failed';
  // Line 0 stands for "the file as a whole" (IIS shows the file with no line for these too).
  return new ConfigError('CFG_READ', `Cannot read the configuration file: ${why} (${code})`, { file, line: 0, column: 0 }, hresult, { cause: err });
}

/** Reads a configuration file's text (BOM-aware). Unreadable → ConfigError CFG_READ. */
export function readConfigText(file: string): string {
  try {
    return decodeConfigBytes(readFileSync(file));
  } catch (err) {
    throw readError(file, err);
  }
}

/** Reads and loads an applicationHost.config. */
export function loadAppHostFile(file: string, opts: LoadAppHostOptions): AppHostConfig {
  const absolute = resolve(file);
  return loadAppHost(absolute, readConfigText(absolute), opts);
}
