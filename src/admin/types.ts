/**
 * The admin model: what `wharf list|start|stop|recycle …` sees and does, over the admin socket.
 * The main process answers from its live state; the CLI only formats. One object kind per
 * appcmd object (SITE, APP, VDIR, APPPOOL, WP, REQUEST).
 */

export type AdminObjectKind = 'SITE' | 'APP' | 'VDIR' | 'APPPOOL' | 'WP' | 'REQUEST';

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
}

/** Live state of the running server that the admin socket reads (implemented by WharfServer). */
export interface AdminTarget {
  list(kind: AdminObjectKind): AdminObject[];
  /** Returns a one-line confirmation (appcmd's `"X" successfully started.`) or throws AdminError. */
  startAppPool(name: string): string;
  stopAppPool(name: string): string;
  recycleAppPool(name: string): string;
  startSite(name: string): string;
  stopSite(name: string): string;
}

/** One request on the admin socket (JSON, one per line). */
export type AdminRequest =
  | { readonly op: 'list'; readonly kind: AdminObjectKind }
  | { readonly op: 'start' | 'stop'; readonly kind: 'APPPOOL' | 'SITE'; readonly name: string }
  | { readonly op: 'recycle'; readonly kind: 'APPPOOL'; readonly name: string };

/** The answer (JSON, one line). */
export type AdminResponse =
  | { readonly ok: true; readonly objects?: AdminObject[]; readonly message?: string }
  | { readonly ok: false; readonly error: string; readonly code: string };
