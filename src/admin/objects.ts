/**
 * Builds the admin objects the server answers `list` with, from the live configuration and
 * runtime snapshots. Pure functions: the server passes in what it knows (states, workers,
 * requests) and gets back what `wharf list …` shows.
 *
 * Property names follow appcmd: generated ones (SITE.NAME, APPPOOL.NAME, WP.NAME, state…) plus
 * every attribute of the object's configuration element with dotted paths for sub-elements
 * (processModel.idleTimeout), valued as IIS writes them (time spans `[d.]hh:mm:ss`, enums by
 * name, flags as `Time, Requests`).
 */
import { getSectionSchema } from '../config/index.js';
import type { AppHostConfig, ApplicationConfig, AttributeSchema, ConfigElement, ElementSchema, SiteConfig, TimeSpanFormat } from '../config/index.js';
import { AdminError } from '../errors.js';
import { flattenConfig, successMessage } from './appcmd.js';
import type { AdminConfigElement, AdminObject, AdminObjectKind, AdminState } from './types.js';

/** A worker process as the activation service sees it. */
export interface WorkerSnapshot {
  readonly pid: number;
  readonly pool: string;
  /** e.g. 'Starting', 'Running', 'Stopping' (the activation service's own state names). */
  readonly state: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  /** Requests it is processing now. */
  readonly requests: number;
}

/** A request in flight, as the listener sees it. */
export interface RequestSnapshot {
  /** 16 hex digits, like IIS's request ids. */
  readonly id: string;
  readonly verb: string;
  readonly url: string;
  readonly elapsedMs: number;
  /** Client address (appcmd prints the client's host). */
  readonly client: string;
  readonly siteId: number;
  readonly siteName?: string;
  readonly pid: number;
  readonly pool: string;
  /** Pipeline stage the request is in (BeginRequest … EndRequest), when known. */
  readonly stage?: string;
  /** Module handling it now, when known. */
  readonly module?: string;
}

// ---------------------------------------------------------------------------------------------
// Configuration values as IIS writes them

/**
 * .NET TimeSpan text, which IIS's configuration system writes: `00:20:00`, `1.05:00:00` for 29
 * hours, `00:00:00.5000000` for half a second. Attributes whose schema stores seconds or minutes
 * print as that plain number.
 */
export function formatTimeSpan(ms: number, format: TimeSpanFormat = 'string'): string {
  if (format === 'seconds') return String(Math.floor(ms / 1000));
  if (format === 'minutes') return String(Math.floor(ms / 60000));
  const two = (n: number): string => String(n).padStart(2, '0');
  const totalSeconds = Math.floor(ms / 1000);
  const days = Math.floor(totalSeconds / 86400);
  const hms = `${two(Math.floor(totalSeconds / 3600) % 24)}:${two(Math.floor(totalSeconds / 60) % 60)}:${two(totalSeconds % 60)}`;
  const fraction = ms % 1000 === 0 ? '' : '.' + String(Math.round(ms % 1000)).padStart(3, '0') + '0000';
  return (days > 0 ? `${days}.` : '') + hms + fraction;
}

function attributeText(element: ConfigElement, a: AttributeSchema): string {
  switch (a.type) {
    case 'bool':
      return element.bool(a.name) ? 'true' : 'false';
    case 'string':
      // Secrets stay in the file: the admin socket never carries them.
      if (a.encrypted) return element.isSet(a.name) && element.str(a.name) !== '' ? '******' : '';
      return element.str(a.name);
    case 'enum':
      return element.enumName(a.name);
    case 'flags': {
      const on = element.flagNames(a.name);
      return a.names.filter(([n]) => on.has(n)).map(([n]) => n).join(', ');
    }
    case 'timeSpan':
      return formatTimeSpan(element.num(a.name), a.timeSpanFormat);
    default:
      return String(element.num(a.name));
  }
}

/** A configuration element with its schema as `/text:*` shows it. */
function configTree(element: ConfigElement, schema: ElementSchema, name = schema.name): AdminConfigElement {
  return {
    name,
    attributes: schema.attributes.map((a) => [a.name, attributeText(element, a)] as const),
    children: [...schema.children.values()].map((c) => configTree(element.child(c.name), c)),
    items: schema.collection ? element.items.map((i) => configTree(i, schema.collection!.item)) : [],
  };
}

function withAttribute(e: AdminConfigElement, name: string, value: string): AdminConfigElement {
  return { ...e, attributes: e.attributes.map(([k, v]) => [k, k === name ? value : v] as const) };
}

function collectionItem(section: string): ElementSchema {
  return getSectionSchema(section)!.collection!.item;
}

const SITE_ITEM = (): ElementSchema => collectionItem('system.applicationHost/sites');
const POOL_ITEM = (): ElementSchema => collectionItem('system.applicationHost/applicationPools');

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function build(
  kind: AdminObjectKind,
  id: string,
  summary: ReadonlyArray<readonly [string, string]>,
  generated: Readonly<Record<string, string>>,
  config?: AdminConfigElement,
): AdminObject {
  const properties = { ...generated, ...(config ? flattenConfig(config) : {}) };
  return config ? { kind, id, summary, properties, config } : { kind, id, summary, properties };
}

// ---------------------------------------------------------------------------------------------
// Sites, applications, virtual directories

function siteElement(config: AppHostConfig, site: SiteConfig): ConfigElement | undefined {
  return config.section('system.applicationHost/sites').items.find((i) => sameText(i.str('name'), site.name));
}

function appElement(siteEl: ConfigElement | undefined, app: ApplicationConfig): ConfigElement | undefined {
  return siteEl?.items.find((i) => sameText(i.str('path'), app.path));
}

/** Virtual directories show the Linux folder Wharf serves (after %VAR% and C:\ mapping). */
function mapVdirs(appTree: AdminConfigElement, app: ApplicationConfig): AdminConfigElement {
  return {
    ...appTree,
    items: appTree.items.map((v) => {
      const path = v.attributes.find(([k]) => k === 'path')?.[1] ?? '';
      const mapped = app.virtualDirectories.find((d) => sameText(d.path, path));
      return mapped ? withAttribute(v, 'physicalPath', mapped.physicalPath) : v;
    }),
  };
}

function siteTree(siteEl: ConfigElement, site: SiteConfig): AdminConfigElement {
  const tree = configTree(siteEl, SITE_ITEM());
  return {
    ...tree,
    items: tree.items.map((appTree) => {
      const path = appTree.attributes.find(([k]) => k === 'path')?.[1] ?? '';
      const app = site.applications.find((a) => sameText(a.path, path));
      return app ? mapVdirs(appTree, app) : appTree;
    }),
  };
}

/** `Default Web Site/` for the root application, `Default Web Site/app1` for others. */
function appName(site: SiteConfig, app: ApplicationConfig): string {
  return site.name + app.path;
}

/** `Site/`, `Site/app1/` (an application's root directory), `Site/app1/images`. */
function vdirName(site: SiteConfig, app: ApplicationConfig, path: string): string {
  return site.name + (app.path === '/' ? '' : app.path) + path;
}

/** `SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)`. */
export function siteObjects(config: AppHostConfig, siteState: (siteId: number) => AdminState): AdminObject[] {
  return config.sites.map((site) => {
    const bindings = site.bindings.map((b) => `${b.protocol}/${b.bindingInformation}`).join(',');
    const state = siteState(site.id);
    const el = siteElement(config, site);
    return build(
      'SITE',
      site.name,
      [
        ['id', String(site.id)],
        ['bindings', bindings],
        ['state', state],
      ],
      { 'SITE.NAME': site.name, 'SITE.ID': String(site.id), bindings, state },
      el ? siteTree(el, site) : undefined,
    );
  });
}

/** `APP "Default Web Site/" (applicationPool:DefaultAppPool)`. */
export function appObjects(config: AppHostConfig): AdminObject[] {
  const appSchema = SITE_ITEM().collection!.item;
  const out: AdminObject[] = [];
  for (const site of config.sites) {
    const siteEl = siteElement(config, site);
    for (const app of site.applications) {
      const el = appElement(siteEl, app);
      const name = appName(site, app);
      out.push(
        build(
          'APP',
          name,
          [['applicationPool', app.applicationPool]],
          { 'APP.NAME': name, 'APPPOOL.NAME': app.applicationPool, 'SITE.NAME': site.name },
          el ? mapVdirs(configTree(el, appSchema), app) : undefined,
        ),
      );
    }
  }
  return out;
}

/** `VDIR "Default Web Site/" (physicalPath:/srv/www)`. */
export function vdirObjects(config: AppHostConfig): AdminObject[] {
  const vdirSchema = SITE_ITEM().collection!.item.collection!.item;
  const out: AdminObject[] = [];
  for (const site of config.sites) {
    const siteEl = siteElement(config, site);
    for (const app of site.applications) {
      const appEl = appElement(siteEl, app);
      for (const vdir of app.virtualDirectories) {
        const el = appEl?.items.find((i) => sameText(i.str('path'), vdir.path));
        const name = vdirName(site, app, vdir.path);
        out.push(
          build(
            'VDIR',
            name,
            [['physicalPath', vdir.physicalPath]],
            { 'VDIR.NAME': name, 'APP.NAME': appName(site, app), physicalPath: vdir.physicalPath },
            el ? withAttribute(configTree(el, vdirSchema), 'physicalPath', vdir.physicalPath) : undefined,
          ),
        );
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Application pools, worker processes, requests

/** `APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)`. */
export function appPoolObjects(config: AppHostConfig, poolState: (name: string) => AdminState): AdminObject[] {
  const schema = POOL_ITEM();
  return config.applicationPools.map((pool) => {
    const version = pool.element.str('managedRuntimeVersion');
    const mode = pool.element.enumName('managedPipelineMode');
    const state = poolState(pool.name);
    return build(
      'APPPOOL',
      pool.name,
      [
        ['MgdVersion', version],
        ['MgdMode', mode],
        ['state', state],
      ],
      // The generated names IIS 7.5+ appcmd prints in /text:* (PipelineMode, RuntimeVersion).
      { 'APPPOOL.NAME': pool.name, PipelineMode: mode, RuntimeVersion: version, state },
      configTree(pool.element, schema, 'add'),
    );
  });
}

/** `WP "1234" (apppool:DefaultAppPool)`. */
export function workerObjects(workers: readonly WorkerSnapshot[]): AdminObject[] {
  return workers.map((w) =>
    build('WP', String(w.pid), [['apppool', w.pool]], {
      'WP.NAME': String(w.pid),
      'APPPOOL.NAME': w.pool,
      state: w.state,
      startTime: new Date(w.startedAt).toISOString(),
      requests: String(w.requests),
    }),
  );
}

/** `REQUEST "fa00000080000004" (url:GET /wait.aspx,time:4276 msec,client:localhost)`. */
export function requestObjects(reqs: readonly RequestSnapshot[]): AdminObject[] {
  return reqs.map((r) => {
    const time = String(Math.max(0, Math.round(r.elapsedMs)));
    const summary: (readonly [string, string])[] = [
      ['url', `${r.verb} ${r.url}`],
      ['time', `${time} msec`],
      ['client', r.client],
    ];
    if (r.stage !== undefined) summary.push(['stage', r.stage]);
    if (r.module !== undefined) summary.push(['module', r.module]);
    const properties: Record<string, string> = {
      'REQUEST.NAME': r.id,
      'SITE.ID': String(r.siteId),
      ...(r.siteName !== undefined ? { 'SITE.NAME': r.siteName } : {}),
      'WP.NAME': String(r.pid),
      'APPPOOL.NAME': r.pool,
      url: r.url,
      verb: r.verb,
      time,
      client: r.client,
      ...(r.stage !== undefined ? { stage: r.stage } : {}),
      ...(r.module !== undefined ? { module: r.module } : {}),
    };
    return build('REQUEST', r.id, summary, properties);
  });
}

/** A failed-request trace file, as the main process wrote or found it. */
export interface TraceSnapshot {
  readonly siteId: number;
  readonly siteName: string;
  /** `fr000001.xml` */
  readonly file: string;
  readonly path: string;
  readonly url: string;
  readonly statusCode: string;
  readonly processId: number;
  readonly failureReason: string;
  readonly timeTaken: number;
}

/** `TRACE "Default Web Site/fr000001.xml" (url:http://localhost:80/x.aspx,statuscode:500,wp:2864)`, as appcmd lists traces. */
export function traceObjects(traces: readonly TraceSnapshot[]): AdminObject[] {
  return traces.map((t) => {
    const id = `${t.siteName}/${t.file}`;
    return build(
      'TRACE',
      id,
      [
        ['url', t.url],
        ['statuscode', t.statusCode],
        ['wp', String(t.processId)],
      ],
      {
        'TRACE.NAME': id,
        'SITE.NAME': t.siteName,
        'SITE.ID': String(t.siteId),
        'WP.NAME': String(t.processId),
        url: t.url,
        statuscode: t.statusCode,
        failureReason: t.failureReason,
        timeTaken: String(t.timeTaken),
        path: t.path,
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Answers for the AdminTarget's start/stop/recycle

/** The error for a name that matches nothing: `Cannot find APPPOOL object with identifier "X".` */
export function adminNotFound(kind: AdminObjectKind, identifier: string): AdminError {
  return new AdminError('ADM_NOT_FOUND', `Cannot find ${kind} object with identifier "${identifier}".`);
}

/** The confirmation a start/stop/recycle returns: `"DefaultAppPool" successfully started.` */
export function adminDone(verb: 'start' | 'stop' | 'recycle', name: string): string {
  return successMessage(verb, name);
}
