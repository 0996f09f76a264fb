/**
 * Effective configuration per URL, the way IIS computes it for a request: find the application
 * and virtual directory, map the URL to a physical path, then merge applicationHost.config (root,
 * then the <location>s for 'Site', 'Site/a', 'Site/a/b'…) with the web.config found in the physical
 * folder of every URL level. Results are cached per URL; the web.config files they depend on are
 * re-checked (stat: mtime, size, inode) at most once a second, so edits, new files and deleted
 * files take effect within about a second, and a broken file fails only the URLs below it.
 *
 * The work per URL is bounded by what exists, not by what the client sent: a level is built only
 * for folders that exist on disk (and the first one that does not), for application and virtual
 * directory roots, and for URLs a <location> names. A folder that does not exist cannot hold a
 * web.config, nor can any folder below it, so a URL of thousands of segments costs a few levels.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, HRESULT } from '../errors.js';
import { permissionAdvice } from './access-advice.js';
import { appHostInternals, loadAppHost, readConfigText, registrationFor } from './application-host.js';
import type { AppHostInternals, SiteLocation } from './application-host.js';
import { parseConfigFile } from './config-file.js';
import { notEnforcedWarnings } from './config-warnings.js';
import type { ConfigWarning } from './config-warnings.js';
import type { ConfigFile, LocationBlock, SectionRegistration } from './config-file.js';
import { mergeSection, sectionOrDefaults, ValueContext } from './merge.js';
import type { Contribution, MergedElement } from './merge.js';
import { SECTIONS } from './schema.js';
import type {
  AppHostConfig,
  ApplicationConfig,
  ConfigElement,
  ResolvedConfig,
  ResolveResult,
  SiteConfig,
  UnsupportedUse,
  VirtualDirectoryConfig,
} from './types.js';

export interface ConfigSystemOptions {
  /** Linux folder standing for C: (and %SystemDrive%). */
  readonly systemDrive: string;
  /** Extra %VAR% values, consulted before the environment. */
  readonly variables?: Readonly<Record<string, string>> | undefined;
  /** Clock in milliseconds (tests inject one); defaults to Date.now. */
  readonly now?: (() => number) | undefined;
  /** Called once per (file, section) for each section Wharf does not implement. */
  readonly onUnsupported?: ((use: UnsupportedUse) => void) | undefined;
  /** Called for each setting a web.config uses that Wharf does not enforce, each time the file is (re)read. */
  readonly onWarning?: ((warning: ConfigWarning) => void) | undefined;
  /**
   * A URL level maps to a folder path the file system refuses as too long (ENAMETOOLONG: a name
   * over 255 bytes, a path over PATH_MAX). Such a folder cannot exist: the URL is simply not found.
   */
  readonly onPathTooLong?: ((folder: string) => void) | undefined;
}

/** How long a cached result is trusted before its web.config files are stat'ed again. */
const REVALIDATE_MS = 1000;
/** Bounds for the caches (random URLs from scanners must not grow memory without limit). */
const MAX_URLS_PER_SITE = 10_000;
const MAX_FOLDERS = 50_000;
/** And by size: URLs and folder paths can be kilobytes long each (UTF-16 code units). */
const MAX_URL_CHARS_PER_SITE = 4_000_000;
const MAX_FOLDER_CHARS = 4_000_000;
const MAX_CHAINS = 2_000;
const MAX_SECTIONS = 4_000;
/** IIS on Windows finds Web.config whatever its case; Linux file names are case-sensitive. */
const CONFIG_NAMES = ['web.config', 'Web.config'] as const;

interface VdirIndex {
  readonly vdir: VirtualDirectoryConfig;
  /** Full URL path of the virtual directory ('/app/images'). */
  readonly url: string;
  readonly urlLower: string;
}

interface AppIndex {
  readonly app: ApplicationConfig;
  readonly urlLower: string;
  /** Longest first. */
  readonly vdirs: readonly VdirIndex[];
}

interface SiteIndex {
  readonly site: SiteConfig;
  /** Longest path first, so the first prefix match is the deepest application. */
  readonly apps: readonly AppIndex[];
  /** applicationHost <location>s under this site by lower-case URL ('/', '/app'). */
  readonly locations: ReadonlyMap<string, readonly SiteLocation[]>;
  readonly cache: Map<string, UrlEntry>;
  /** Total length of the cache's keys (MAX_URL_CHARS_PER_SITE). */
  cacheChars: number;
}

/** What one folder's web.config was when last looked at. */
interface FolderSnapshot {
  /** '' when there is no web.config; ABSENT's when the folder itself does not exist. */
  readonly signature: string;
  /** Whether the folder exists: folders below one that does not cannot have a web.config. */
  readonly exists: boolean;
  readonly config: ConfigFile | undefined;
  readonly error: ConfigError | undefined;
}

interface FolderState {
  readonly folder: string;
  checkedAt: number;
  current: FolderSnapshot;
}

interface UrlEntry {
  readonly result: ResolveResult;
  /** Each folder consulted and the snapshot the result was built from. */
  readonly folders: readonly FolderState[];
  readonly snapshots: readonly FolderSnapshot[];
  checkedAt: number;
}

interface Level {
  readonly url: string;
  readonly urlLower: string;
  readonly app: AppIndex;
  readonly folder: string;
  /** False below a virtual directory with allowSubDirConfig="false". */
  readonly readsConfig: boolean;
}

interface ChainEntry {
  readonly block: LocationBlock;
  /** The URL level the block applies at ('/' for the server level and the site root). */
  readonly url: string;
  readonly fromAppHost: boolean;
  readonly atApplicationRoot: boolean;
  readonly file: ConfigFile | undefined;
}

type MergedSections = { readonly ok: true; readonly sections: ReadonlyMap<string, MergedElement> } | { readonly ok: false; readonly error: ConfigError };

const MISSING: FolderSnapshot = { signature: '', exists: true, config: undefined, error: undefined };
const ABSENT: FolderSnapshot = { signature: '(no folder)', exists: false, config: undefined, error: undefined };

/** URL segments in a lower-case URL prefix ('/' → 0, '/a/b' → 2). */
function depthOf(urlLower: string): number {
  let n = 0;
  for (let i = 0; i < urlLower.length; i++) {
    if (urlLower.charCodeAt(i) === 0x2f && i + 1 < urlLower.length && urlLower.charCodeAt(i + 1) !== 0x2f) n++;
  }
  return n;
}

function isUrlPrefix(prefixLower: string, urlLower: string): boolean {
  return prefixLower === '/' || urlLower === prefixLower || urlLower.startsWith(prefixLower + '/');
}

function joinUrl(base: string, rel: string): string {
  return base === '/' ? '/' + rel : base + '/' + rel;
}

/** The physical path of `url` inside `vdir`; '.', '..' and empty segments are dropped, so the result never leaves the directory. */
function physicalPathOf(vdir: VdirIndex, url: string): string {
  let out = vdir.vdir.physicalPath;
  const rest = url.slice(vdir.url === '/' ? 1 : vdir.url.length);
  if (rest === '' || rest === '/') return out;
  for (const segment of rest.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') continue;
    out = out === '/' ? '/' + segment : out + '/' + segment;
  }
  return out;
}

function readFailure(file: string, err: unknown): ConfigError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  const denied = code === 'EACCES' || code === 'EPERM';
  // Permissions are the usual cause: say which user lacks which right, and the command that fixes it.
  const advice = denied ? permissionAdvice(file) : undefined;
  return new ConfigError(
    'CFG_READ',
    `Cannot read the configuration file: ${denied ? 'permission denied' : 'read failed'} (${code})${advice !== undefined ? `; ${advice}` : ''}`,
    { file, line: 0, column: 0 },
    HRESULT.accessDenied,
    { cause: err },
  );
}

class ResolvedView implements ResolvedConfig {
  readonly site: SiteConfig;
  readonly application: ApplicationConfig;
  readonly virtualDirectory: VirtualDirectoryConfig;
  readonly virtualDirectoryUrl: string;
  readonly physicalPath: string;
  readonly configFiles: readonly string[];
  readonly configFileUrls: readonly string[];
  readonly #sections: ReadonlyMap<string, MergedElement>;
  readonly #context: ValueContext;
  readonly #chain: readonly ChainEntry[];

  constructor(
    site: SiteConfig,
    app: ApplicationConfig,
    vdir: VdirIndex,
    physicalPath: string,
    sections: ReadonlyMap<string, MergedElement>,
    context: ValueContext,
    configFiles: readonly string[],
    configFileUrls: readonly string[],
    chain: readonly ChainEntry[],
  ) {
    this.#chain = chain;
    this.configFiles = configFiles;
    this.configFileUrls = configFileUrls;
    this.site = site;
    this.application = app;
    this.virtualDirectory = vdir.vdir;
    this.virtualDirectoryUrl = vdir.url;
    this.physicalPath = physicalPath;
    this.#sections = sections;
    this.#context = context;
  }

  section(path: string): ConfigElement {
    return sectionOrDefaults(this.#sections, this.#context, path);
  }

  sectionScope(path: string): string {
    let url = '/';
    for (const e of this.#chain) if (e.block.sections.has(path)) url = e.url;
    return url;
  }
}

export class ConfigSystem {
  readonly appHost: AppHostConfig;
  readonly #internals: AppHostInternals;
  readonly #context: ValueContext;
  readonly #variables: Readonly<Record<string, string>> | undefined;
  readonly #now: () => number;
  readonly #onUnsupported: ((use: UnsupportedUse) => void) | undefined;
  readonly #onWarning: ((warning: ConfigWarning) => void) | undefined;
  readonly #onPathTooLong: ((folder: string) => void) | undefined;
  readonly #sites = new Map<number, SiteIndex>();
  readonly #folders = new Map<string, FolderState>();
  #folderChars = 0;
  readonly #chains = new Map<string, MergedSections>();
  readonly #sectionCache = new Map<string, MergedElement | ConfigError>();
  readonly #reported = new Set<string>();
  readonly #appHostGroups: ReadonlySet<string>;

  constructor(appHost: AppHostConfig, opts: ConfigSystemOptions) {
    let internals = appHostInternals(appHost);
    if (!internals) {
      // Not produced by loadAppHost in this process (e.g. rebuilt from the text a worker was sent).
      appHost = loadAppHost(appHost.file, appHost.text, { systemDrive: opts.systemDrive, variables: opts.variables });
      internals = appHostInternals(appHost)!;
    }
    this.appHost = appHost;
    this.#internals = internals;
    this.#context = internals.context;
    this.#variables = opts.variables;
    this.#now = opts.now ?? Date.now;
    this.#onUnsupported = opts.onUnsupported;
    this.#onWarning = opts.onWarning;
    this.#onPathTooLong = opts.onPathTooLong;
    this.#appHostGroups = internals.config.groups;
    for (const site of appHost.sites) this.#sites.set(site.id, this.#indexSite(site));
    for (const use of appHost.unsupported) this.#report(appHost.file, use);
  }

  #indexSite(site: SiteConfig): SiteIndex {
    const apps: AppIndex[] = site.applications
      .map((app) => {
        const vdirs = app.virtualDirectories
          .map((vdir) => {
            const url = app.path === '/' ? vdir.path : vdir.path === '/' ? app.path : app.path + vdir.path;
            return { vdir, url, urlLower: url.toLowerCase() };
          })
          .sort((a, b) => b.urlLower.length - a.urlLower.length);
        return { app, urlLower: app.path.toLowerCase(), vdirs };
      })
      .sort((a, b) => b.urlLower.length - a.urlLower.length);
    const locations = new Map<string, SiteLocation[]>();
    for (const loc of this.#internals.siteBlocks.get(site.name.toLowerCase()) ?? []) {
      const list = locations.get(loc.urlLower) ?? [];
      list.push(loc);
      locations.set(loc.urlLower, list);
    }
    return { site, apps, locations, cache: new Map(), cacheChars: 0 };
  }

  #report(file: string, use: UnsupportedUse): void {
    const key = file + '\u0000' + use.section;
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#onUnsupported?.(use);
  }

  /**
   * Effective configuration of `urlPath` (decoded, normalised, starting with '/') in site
   * `siteId`. A configuration error anywhere on the path yields `{ ok: false }` for this URL only.
   */
  resolve(siteId: number, urlPath: string): ResolveResult {
    const site = this.#sites.get(siteId);
    if (site === undefined) {
      return { ok: false, error: new ConfigError('CFG_INVALID_SITE', `No site with id ${siteId} is configured`, undefined, HRESULT.pathNotFound) };
    }
    const now = this.#now();
    const entry = site.cache.get(urlPath);
    if (entry !== undefined) {
      // Hot path: a recent entry is returned as is, without touching the file system.
      if (now - entry.checkedAt < REVALIDATE_MS) return entry.result;
      if (this.#unchanged(entry, now)) {
        entry.checkedAt = now;
        return entry.result;
      }
    }
    const built = this.#build(site, urlPath, now);
    if (entry === undefined) {
      if (site.cache.size >= MAX_URLS_PER_SITE || site.cacheChars + urlPath.length > MAX_URL_CHARS_PER_SITE) {
        site.cache.clear();
        site.cacheChars = 0;
      }
      site.cacheChars += urlPath.length;
    }
    site.cache.set(urlPath, built);
    return built.result;
  }

  #unchanged(entry: UrlEntry, now: number): boolean {
    for (let i = 0; i < entry.folders.length; i++) {
      if (this.#folder(entry.folders[i]!.folder, now).current !== entry.snapshots[i]) return false;
    }
    return true;
  }

  #folder(folder: string, now: number): FolderState {
    let state = this.#folders.get(folder);
    if (state === undefined) {
      if (this.#folders.size >= MAX_FOLDERS || this.#folderChars + folder.length > MAX_FOLDER_CHARS) {
        this.#folders.clear();
        this.#folderChars = 0;
      }
      state = { folder, checkedAt: now, current: this.#load(folder, undefined) };
      this.#folders.set(folder, state);
      this.#folderChars += folder.length;
    } else if (now - state.checkedAt >= REVALIDATE_MS) {
      state.current = this.#load(folder, state.current);
      state.checkedAt = now;
    }
    return state;
  }

  /** Looks at a folder's web.config; returns `previous` itself when the file did not change. */
  #load(folder: string, previous: FolderSnapshot | undefined): FolderSnapshot {
    let dir;
    try {
      dir = statSync(folder, { throwIfNoEntry: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A file on the way (ENOTDIR), a symlink loop, or a name or path the file system cannot
      // hold: no folder, so no web.config, here or below. Not a configuration error.
      if (code === 'ENAMETOOLONG') this.#onPathTooLong?.(folder);
      if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return ABSENT;
      const file = join(folder, CONFIG_NAMES[0]);
      const signature = 'stat-error:' + file;
      if (previous !== undefined && previous.signature === signature) return previous;
      return { signature, exists: true, config: undefined, error: readFailure(file, err) };
    }
    if (dir === undefined || !dir.isDirectory()) return ABSENT;
    for (const name of CONFIG_NAMES) {
      const file = join(folder, name);
      let st;
      try {
        st = statSync(file, { throwIfNoEntry: false });
      } catch (err) {
        // The URL level is a file, not a folder: no web.config can be there.
        if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return previous?.signature === '' ? previous : MISSING;
        const signature = 'stat-error:' + file;
        if (previous !== undefined && previous.signature === signature) return previous;
        return { signature, exists: true, config: undefined, error: readFailure(file, err) };
      }
      if (st === undefined) continue;
      const signature = `${file}:${st.ino}:${st.size}:${st.mtimeMs}`;
      if (previous !== undefined && previous.signature === signature) return previous;
      return this.#parse(file, signature);
    }
    return previous?.signature === '' ? previous : MISSING;
  }

  #parse(file: string, signature: string): FolderSnapshot {
    let text: string;
    try {
      text = readConfigText(file);
    } catch (err) {
      const cause = err instanceof ConfigError ? err.cause : err;
      // Deleted between stat and read: the next look (within a second) sees it gone.
      if ((cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return MISSING;
      return { signature, exists: true, config: undefined, error: readFailure(file, cause) };
    }
    try {
      const config = parseConfigFile(file, text, { kind: 'web', variables: this.#variables, knownGroups: this.#appHostGroups });
      for (const use of config.unsupported) this.#report(file, use);
      if (this.#onWarning !== undefined) for (const w of notEnforcedWarnings(config)) this.#onWarning(w);
      return { signature, exists: true, config, error: undefined };
    } catch (err) {
      if (err instanceof ConfigError) return { signature, exists: true, config: undefined, error: err };
      throw err;
    }
  }

  #matchApp(site: SiteIndex, urlLower: string): AppIndex {
    for (const app of site.apps) if (isUrlPrefix(app.urlLower, urlLower)) return app;
    return site.apps[site.apps.length - 1]!; // the root application (validated to exist)
  }

  #matchVdir(app: AppIndex, urlLower: string): VdirIndex {
    for (const vdir of app.vdirs) if (isUrlPrefix(vdir.urlLower, urlLower)) return vdir;
    return app.vdirs[app.vdirs.length - 1]!; // the application's root directory
  }

  #level(site: SiteIndex, url: string): Level {
    const urlLower = url.toLowerCase();
    const app = this.#matchApp(site, urlLower);
    const vdir = this.#matchVdir(app, urlLower);
    return {
      url,
      urlLower,
      app,
      folder: physicalPathOf(vdir, url),
      // allowSubDirConfig="false": IIS reads the directory's own web.config but none below it.
      readsConfig: vdir.vdir.allowSubDirConfig || urlLower === vdir.urlLower,
    };
  }

  #build(site: SiteIndex, urlPath: string, now: number): UrlEntry {
    const urlLower = urlPath.toLowerCase();
    const app = this.#matchApp(site, urlLower);
    const vdir = this.#matchVdir(app, urlLower);
    const physicalPath = physicalPathOf(vdir, urlPath);

    // URL levels '/', '/a', '/a/b'… and the physical folder each maps to — only those that can
    // contribute (see the file comment). Roots: application and virtual directory roots, where a
    // new physical folder starts. Wanted: levels a <location> names, whether or not a folder exists.
    const segments = urlPath.split('/').filter((x) => x !== '');
    const roots = new Set<number>([0]);
    const wanted = new Set<number>();
    for (const a of site.apps) {
      if (!isUrlPrefix(a.urlLower, urlLower)) continue;
      roots.add(depthOf(a.urlLower));
      for (const v of a.vdirs) if (isUrlPrefix(v.urlLower, urlLower)) roots.add(depthOf(v.urlLower));
    }
    for (const key of site.locations.keys()) if (isUrlPrefix(key, urlLower)) wanted.add(depthOf(key));

    const levels: Level[] = [];
    const folders: FolderState[] = [];
    const snapshots: FolderSnapshot[] = [];
    const files: (ConfigFile | undefined)[] = [];
    const reading: Level[] = [];
    const done = (result: ResolveResult): UrlEntry => ({ result, folders, snapshots, checkedAt: now });
    // Whether this level's folder may exist: its parent's does (or a new physical folder starts).
    let walking = true;
    for (let i = 0; i <= segments.length; i++) {
      if (roots.has(i)) walking = true;
      if (!walking && !wanted.has(i)) continue;
      const level = this.#level(site, i === 0 ? '/' : '/' + segments.slice(0, i).join('/'));
      levels.push(level);
      if (!walking || !level.readsConfig) {
        // allowSubDirConfig="false" below here, or no folder: nothing to read at this level.
        if (!level.readsConfig) walking = false;
        files.push(undefined);
        continue;
      }
      const state = this.#folder(level.folder, now);
      folders.push(state);
      snapshots.push(state.current);
      reading.push(level);
      const current = state.current;
      if (current.error) return done({ ok: false, error: current.error });
      files.push(current.config);
      if (!current.exists) walking = false;
      // A web.config's <location path="…"> names a deeper level, which must then be built.
      for (const block of current.config?.blocks ?? []) {
        if (block.path === '') continue;
        const target = joinUrl(level.urlLower, block.path.toLowerCase());
        if (isUrlPrefix(target, urlLower)) wanted.add(depthOf(target));
      }
    }

    const chain = this.#chain(site, levels, files, app);
    const merged = this.#merge(chain);
    if (!merged.ok) return done(merged);
    const configFiles = reading.map((l) => l.folder + (l.folder.endsWith('/') ? '' : '/') + 'web.config');
    const configFileUrls = reading.map((l) => l.url);
    const view = new ResolvedView(site.site, app.app, vdir, physicalPath, merged.sections, this.#context, configFiles, configFileUrls, chain);
    return done({ ok: true, config: view });
  }

  /**
   * The blocks that apply to the URL, in IIS order: applicationHost server level; then for each
   * URL level: applicationHost <location> for it, <location>s of ancestors' web.config files that
   * target it (shallow first), and that level's own web.config.
   */
  #chain(site: SiteIndex, levels: readonly Level[], files: readonly (ConfigFile | undefined)[], requestApp: AppIndex): ChainEntry[] {
    const chain: ChainEntry[] = [];
    for (const block of this.#internals.serverBlocks) chain.push({ block, url: '/', fromAppHost: true, atApplicationRoot: true, file: undefined });
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      const atApplicationRoot = level.app.urlLower === level.urlLower;
      // inheritInChildApplications="false" keeps a location's settings out of child applications.
      const applies = (block: LocationBlock): boolean => block.inheritInChildApplications || level.app === requestApp;
      for (const loc of site.locations.get(level.urlLower) ?? []) {
        if (applies(loc.block)) chain.push({ block: loc.block, url: level.url, fromAppHost: true, atApplicationRoot, file: undefined });
      }
      for (let j = 0; j < i; j++) {
        const file = files[j];
        if (!file) continue;
        for (const block of file.blocks) {
          if (block.path === '' || joinUrl(levels[j]!.urlLower, block.path.toLowerCase()) !== level.urlLower) continue;
          if (applies(block)) chain.push({ block, url: level.url, fromAppHost: false, atApplicationRoot, file });
        }
      }
      const own = files[i];
      if (own) {
        for (const block of own.blocks) {
          if (block.path === '' && applies(block)) chain.push({ block, url: level.url, fromAppHost: false, atApplicationRoot, file: own });
        }
      }
    }
    return chain;
  }

  #merge(chain: readonly ChainEntry[]): MergedSections {
    let key = '';
    for (const e of chain) key += e.block.id + (e.atApplicationRoot ? 'r,' : ',');
    const cached = this.#chains.get(key);
    if (cached) return cached;

    let result: MergedSections;
    try {
      result = { ok: true, sections: this.#mergeChain(chain) };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      result = { ok: false, error: err };
    }
    if (this.#chains.size >= MAX_CHAINS) this.#chains.clear();
    this.#chains.set(key, result);
    return result;
  }

  #mergeChain(chain: readonly ChainEntry[]): Map<string, MergedElement> {
    const appHostRegistrations = this.#internals.config.registrations;
    // A web.config may register new sections for its subtree, never redefine one registered above.
    const registrations = new Map<string, SectionRegistration>(appHostRegistrations);
    const seenFiles = new Set<ConfigFile>();
    for (const e of chain) {
      if (!e.file || seenFiles.has(e.file)) continue;
      seenFiles.add(e.file);
      for (const r of e.file.registrations.values()) {
        // Sections in Wharf's schema table count as registered at the server level even when
        // applicationHost.config has no <configSections> entry for them: otherwise a web.config
        // could re-register `handlers` with overrideModeDefault="Allow" and unlock itself.
        if (registrations.has(r.path) || SECTIONS.has(r.path)) {
          throw new ConfigError(
            'CFG_DUPLICATE_SECTION',
            `The configuration section '${r.path}' is already defined; a web.config may register new sections but not redefine existing ones`,
            r.position,
            HRESULT.alreadyExists,
          );
        }
        registrations.set(r.path, r);
      }
    }

    const paths = new Set<string>();
    for (const e of chain) for (const p of e.block.sections.keys()) paths.add(p);
    const sections = new Map<string, MergedElement>();
    for (const path of paths) {
      // Sections whose contributions are the same blocks merge to the same element, whatever the
      // URL: the 375-entry MIME map of applicationHost.config is merged once, not per folder.
      let key = path;
      const contributions: Contribution[] = [];
      for (const e of chain) {
        const use = e.block.sections.get(path);
        if (!use) continue;
        contributions.push({ use, block: e.block, fromAppHost: e.fromAppHost, atApplicationRoot: e.atApplicationRoot });
        key += e.atApplicationRoot ? `|${e.block.id}r` : `|${e.block.id}`;
      }
      const registration = registrations.get(path);
      if (registration && !appHostRegistrations.has(path)) key += `|reg:${registration.position.file}:${registration.position.line}`;
      let merged = this.#sectionCache.get(key);
      if (merged === undefined) {
        try {
          merged = mergeSection(SECTIONS.get(path)!, registrationFor(path, registrations), contributions, this.#context);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          merged = err;
        }
        if (this.#sectionCache.size >= MAX_SECTIONS) this.#sectionCache.clear();
        this.#sectionCache.set(key, merged);
      }
      if (merged instanceof ConfigError) throw merged;
      sections.set(path, merged);
    }
    return sections;
  }
}
