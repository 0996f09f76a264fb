/**
 * The admin model: what `wharf list|start|stop|recycle …` sees and does, over the admin socket.
 * The main process answers from its live state; the CLI only formats. One object kind per
 * appcmd object (SITE, APP, VDIR, APPPOOL, WP, REQUEST, TRACE).
 */

export type AdminObjectKind = 'SITE' | 'APP' | 'VDIR' | 'APPPOOL' | 'WP' | 'REQUEST' | 'TRACE';
export const ADMIN_OBJECT_KINDS: readonly AdminObjectKind[] = ['SITE', 'APP', 'VDIR', 'APPPOOL', 'WP', 'REQUEST', 'TRACE'];

/** IIS's object states (appcmd prints them as `state:Started`). */
export type AdminState = 'Starting' | 'Started' | 'Stopping' | 'Stopped' | 'Unknown';

export interface AdminObject {
  readonly kind: AdminObjectKind;
  /** The identifier appcmd prints in quotes: site name, "Site/app", "Site/app/vdir", pool name, pid, request id. */
  readonly id: string;
  /** The attributes appcmd prints in parentheses, in order: e.g. [['id','1'],['bindings','http/*:80:'],['state','Started']]. */
  readonly summary: ReadonlyArray<readonly [string, string]>;
  /**
   * Every property for `/text:*` and for filters like `/state:Stopped` or `/apppool.name:X`,
   * as appcmd names them (`name`, `id`, `state`, `bindings`, `processModel.idleTimeout`, …).
   */
  readonly properties: Readonly<Record<string, string>>;
  /**
   * The configuration element the object comes from, for `/text:*`'s nested view (`[add]`,
   * `[processModel]`, …). Its attributes also appear, flattened with dotted paths, in `properties`;
   * the properties that are not in it are the generated ones (`APPPOOL.NAME`, `state`) printed first.
   */
  readonly config?: AdminConfigElement;
}

/** A configuration element as `/text:*` prints it: `[name]`, its attributes, child elements, then collection items. */
export interface AdminConfigElement {
  readonly name: string;
  readonly attributes: ReadonlyArray<readonly [string, string]>;
  readonly children: readonly AdminConfigElement[];
  /** Collection items (`[binding]`, `[application]`): shown, but not flattened into `properties`. */
  readonly items: readonly AdminConfigElement[];
}

/** Live state of the running server that the admin socket reads (implemented by WharfServer). */
export interface AdminTarget {
  list(kind: AdminObjectKind): AdminObject[];
  /** Returns a one-line confirmation (appcmd's `"X" successfully started.`) or throws AdminError. */
  startAppPool(name: string): string | Promise<string>;
  stopAppPool(name: string): string | Promise<string>;
  recycleAppPool(name: string): string | Promise<string>;
  startSite(name: string): string | Promise<string>;
  stopSite(name: string): string | Promise<string>;
  /** The last `lines` lines a pool's workers printed, and where its output files are. */
  poolOutput(name: string, lines: number): { lines: string[]; file: string; folder: string };
  /** `wharf status`: the server as a whole (iisreset /status). */
  status(): AdminStatus;
  /**
   * `wharf stop`: what to answer, and `begin`, called once that answer is on its way, which starts
   * the same drain as SIGTERM. Throws AdminError when nothing can stop this server (it is not run
   * by the `wharf` command).
   */
  shutdown(): { readonly pid: number; readonly drainMs: number; begin(): void };
}

/** `wharf status`'s answer: the running server as a whole. */
export interface AdminStatus {
  readonly pid: number;
  /** ISO 8601, when this server finished starting. */
  readonly startedAt: string;
  readonly uptimeMs: number;
  readonly configFile: string;
  /** 1 at start-up, +1 for each configuration change applied. */
  readonly generation: number;
  readonly systemDrive: string;
  readonly adminSocket: string;
  /** How long a stop may drain: the longest shutdownTimeLimit of the pools. */
  readonly drainMs: number;
  /** SITE and APPPOOL objects, as `wharf list` sees them. */
  readonly sites: AdminObject[];
  readonly appPools: AdminObject[];
  readonly workerProcesses: number;
  readonly requestsInFlight: number;
}

/** One request on the admin socket (JSON, one per line). */
export type AdminRequest =
  /** Who answers: used to tell a live server from a stale socket file. */
  | { readonly op: 'hello' }
  | { readonly op: 'list'; readonly kind: AdminObjectKind }
  | { readonly op: 'start' | 'stop'; readonly kind: 'APPPOOL' | 'SITE'; readonly name: string }
  | { readonly op: 'recycle'; readonly kind: 'APPPOOL'; readonly name: string }
  /** Wharf's own verb: a pool's worker output (`wharf logs apppool NAME`). */
  | { readonly op: 'logs'; readonly kind: 'APPPOOL'; readonly name: string; readonly lines: number }
  /** `wharf status` */
  | { readonly op: 'status' }
  /** `wharf stop` with no object: drain and exit, as on SIGTERM. */
  | { readonly op: 'shutdown' };

/** The answer (JSON, one line). */
export type AdminResponse =
  | {
      readonly ok: true;
      readonly objects?: AdminObject[];
      readonly message?: string;
      readonly pid?: number;
      /** logs: the lines, and the file being written ('' before the pool printed anything) and its folder. */
      readonly lines?: string[];
      readonly file?: string;
      readonly folder?: string;
      readonly status?: AdminStatus;
      /** shutdown: the drain budget the caller should wait for (with `pid`). */
      readonly drainMs?: number;
    }
  | { readonly ok: false; readonly error: string; readonly code: string };
