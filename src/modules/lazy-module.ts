/**
 * A handler-only module whose code is imported the first time a request is mapped to it. A pool
 * that never runs PHP, CGI, server-side includes, directory listings or a hosted Node app never
 * compiles those modules: about 6 MiB less private memory per idle worker (issue 19). The
 * definition keeps the module's name and hooks (a handler, no notifications), so `<modules>`,
 * `<handlers>` and the pipeline see the same module; the first request awaits the import once.
 */
import { ModuleError } from '../errors.js';
import type { HttpContext, ModuleDefinition, WorkerServices } from '../worker/module-api.js';

export interface LazyHandlerModule {
  /** The module's IIS name, the same as the loaded definition's. */
  readonly name: string;
  /** Imports the module's code; called once, on the first request mapped to it. */
  readonly load: () => Promise<ModuleDefinition>;
}

export function lazyHandlerModule({ name, load }: LazyHandlerModule): ModuleDefinition {
  let loaded: ModuleDefinition | undefined;
  let loading: Promise<ModuleDefinition> | undefined;
  let services: WorkerServices | undefined;
  const importOnce = (): Promise<ModuleDefinition> =>
    (loading ??= load().then((def) => {
      if (def.name !== name || def.executeHandler === undefined || def.notifications !== undefined) {
        throw new ModuleError('MOD_FAILED', `lazily loaded module ${def.name} is not the handler-only module ${name}`);
      }
      // Attached now, with the services the registry gave the stand-in: nothing of the module
      // existed before, so nothing could have needed them earlier.
      if (services !== undefined) def.attach?.(services);
      loaded = def;
      return def;
    }));
  return {
    name,
    executeHandler(ctx: HttpContext) {
      // After the first request: a direct call, sync or async as the module's own handler is.
      if (loaded !== undefined) return loaded.executeHandler!(ctx);
      return importOnce().then((def) => def.executeHandler!(ctx));
    },
    attach(worker: WorkerServices) {
      services = worker;
    },
  };
}
