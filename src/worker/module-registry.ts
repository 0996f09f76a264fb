/**
 * Module registration and per-configuration module chains. Built-in modules and third-party
 * modules (JavaScript files named by `<globalModules><add name image/>`, the IIS-native way) go
 * through the same `register()`. A chain — every notification's handlers in `<modules>` order —
 * is built once per effective `<modules>` element and reused until the configuration changes.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute } from 'node:path';
import type { ConfigElement } from '../config/types.js';
import { ModuleError } from '../errors.js';
import { STAGES, type ModuleDefinition, type Notification, type NotificationHandler, type WorkerServices } from './module-api.js';

export interface ChainEntry {
  readonly module: string;
  readonly fn: NotificationHandler;
}

export interface ModuleChain {
  /** Handlers per notification, in `<modules>` order; empty notifications have empty arrays. */
  readonly notifications: Readonly<Record<Notification, readonly ChainEntry[]>>;
  /** Enabled modules in `<modules>` order, by lower-case name. */
  readonly enabled: ReadonlyMap<string, ModuleDefinition>;
}

const NOTIFICATIONS: readonly Notification[] = [...STAGES, 'SendResponse'];

export class ModuleRegistry {
  readonly #modules = new Map<string, ModuleDefinition>();
  readonly #chains = new WeakMap<ConfigElement, ModuleChain>();
  readonly #reported = new Set<string>();
  readonly #report: (message: string) => void;
  readonly #services: WorkerServices | undefined;

  constructor(report: (message: string) => void, services?: WorkerServices) {
    this.#report = report;
    this.#services = services;
  }

  register(def: ModuleDefinition): void {
    const key = def.name.toLowerCase();
    if (this.#modules.has(key)) throw new ModuleError('MOD_FAILED', `module ${def.name} is registered twice`);
    this.#modules.set(key, def);
    if (def.attach !== undefined && this.#services !== undefined) def.attach(this.#services);
  }

  get(name: string): ModuleDefinition | undefined {
    return this.#modules.get(name.toLowerCase());
  }

  /**
   * Load third-party modules from `<globalModules>`: an entry whose image is a .js/.mjs file is
   * imported and must export `module` (or default) as a ModuleDefinition. Native images (.dll)
   * are IIS modules Wharf does not have; those are reported once.
   */
  async loadGlobalModules(globalModules: ConfigElement): Promise<void> {
    for (const item of globalModules.items) {
      const name = item.str('name');
      const image = item.str('image');
      if (this.get(name) !== undefined) continue;
      if (!/\.(m?js)$/i.test(image)) continue; // native DLL: reported when <modules> names it
      if (!isAbsolute(image)) {
        this.#reportOnce(`global:${name}`, `globalModules: image "${image}" of module ${name} must be an absolute path; module not loaded`);
        continue;
      }
      try {
        const ns = (await import(pathToFileURL(image).href)) as { module?: ModuleDefinition; default?: ModuleDefinition };
        const def = ns.module ?? ns.default;
        if (def === undefined || typeof def.name !== 'string') throw new ModuleError('MOD_UNKNOWN', 'it exports no ModuleDefinition as `module` or default');
        this.register({ ...def, name });
      } catch (err) {
        this.#reportOnce(`global:${name}`, `globalModules: cannot load module ${name} from ${image}: ${(err as Error).message}`);
      }
    }
  }

  chain(modules: ConfigElement): ModuleChain {
    let chain = this.#chains.get(modules);
    if (chain === undefined) {
      chain = this.#build(modules);
      this.#chains.set(modules, chain);
    }
    return chain;
  }

  #build(modules: ConfigElement): ModuleChain {
    const notifications = {} as Record<Notification, ChainEntry[]>;
    for (const n of NOTIFICATIONS) notifications[n] = [];
    const enabled = new Map<string, ModuleDefinition>();
    for (const item of modules.items) {
      const name = item.str('name');
      const def = this.get(name);
      if (def === undefined) {
        const type = item.str('type');
        this.#reportOnce(
          `module:${name.toLowerCase()}`,
          type !== ''
            ? `modules: managed module ${name} (${type}) is not supported by Wharf; skipped`
            : `modules: module ${name} is not available in Wharf; skipped`,
        );
        continue;
      }
      enabled.set(name.toLowerCase(), def);
      const subs = def.notifications;
      if (subs === undefined) continue;
      for (const n of NOTIFICATIONS) {
        const fn = subs[n];
        if (fn !== undefined) notifications[n].push({ module: def.name, fn });
      }
    }
    return { notifications, enabled };
  }

  #reportOnce(key: string, message: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#report(message);
  }
}
