/**
 * Application Initialization (IIS's ApplicationInitializationModule): when a worker starts, every
 * application of its pool with `preloadEnabled="true"` gets a request to each of its
 * `applicationInitialization` initializationPage URLs, through the whole pipeline, before the
 * worker tells WAS it is ready. So after an overlapped recycle traffic moves to the new worker
 * only once it is warm. APP_WARMING_UP=1 is in the environment meanwhile.
 */
import type { AppHostConfig } from '../config/types.js';
import type { ConfigSystem } from '../config/config-system.js';
import { parseUrl } from '../http/url-path.js';
import type { RequestHeadMessage, ResponseEndMessage } from '../ipc/messages.js';
import type { ResponseTransport } from './http-context.js';
import type { Pipeline } from './pipeline.js';
import { poolKey } from '../config/pool-key.js';

/** A response nobody reads: the warm-up request's status is all that matters. */
class WarmupTransport implements ResponseTransport {
  status = 0;
  readonly done: Promise<void>;
  #resolve!: () => void;
  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  head(status: number): void {
    this.status = status;
  }
  body(): boolean {
    return true;
  }
  writable(): Promise<void> {
    return Promise.resolve();
  }
  end(): void {
    this.#resolve();
  }
  complete(status: number, _reason: string, _headers: string[], _body: readonly Buffer[], _bytes: number, _info: ResponseEndMessage): void {
    this.status = status;
    this.#resolve();
  }
}

export interface WarmupResult {
  readonly url: string;
  readonly status: number;
  readonly ms: number;
}

export async function runApplicationInitialization(
  poolName: string,
  appHost: AppHostConfig,
  config: ConfigSystem,
  pipeline: Pipeline,
  log: (level: 'info' | 'warn', message: string) => void,
): Promise<WarmupResult[]> {
  const results: WarmupResult[] = [];
  const pool = poolKey(poolName);
  for (const site of appHost.sites) {
    for (const app of site.applications) {
      if (!app.preloadEnabled || poolKey(app.applicationPool) !== pool) continue;
      const resolved = config.resolve(site.id, app.path === '/' ? '/' : app.path + '/');
      if (!resolved.ok) {
        log('warn', `applicationInitialization for ${site.name}${app.path}: ${resolved.error.message}`);
        continue;
      }
      const init = resolved.config.section('system.webServer/applicationInitialization');
      process.env['APP_WARMING_UP'] = '1';
      try {
        for (const item of init.items) {
          const page = item.str('initializationPage');
          const url = (app.path === '/' ? '' : app.path) + (page.startsWith('/') ? page : '/' + page);
          const host = item.str('hostName') || 'localhost';
          const started = performance.now();
          const status = await warmup(pipeline, site.id, url, host);
          const ms = Math.round(performance.now() - started);
          results.push({ url, status, ms });
          log(status >= 400 || status === 0 ? 'warn' : 'info', `applicationInitialization: GET ${url} (Host: ${host}) → ${status || 'invalid URL'} in ${ms} ms`);
        }
      } finally {
        delete process.env['APP_WARMING_UP'];
      }
    }
  }
  return results;
}

async function warmup(pipeline: Pipeline, siteId: number, url: string, host: string): Promise<number> {
  const target = parseUrl(url);
  if (!target.ok) return 0;
  const head: RequestHeadMessage = {
    method: 'GET',
    rawUrl: url,
    path: target.path,
    query: target.query,
    protocol: 'HTTP/1.1',
    siteId,
    remoteAddress: '127.0.0.1',
    remotePort: 0,
    localAddress: '127.0.0.1',
    localPort: 0,
    contentLength: 0,
    rawHeaders: ['Host', host, 'User-Agent', 'IIS Application Initialization Warmup'],
  };
  const t = new WarmupTransport();
  await pipeline.run(head, t, undefined);
  await t.done;
  return t.status;
}
