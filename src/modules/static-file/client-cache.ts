/**
 * staticContent/clientCache as response headers (reference §2 staticContent): Cache-Control from
 * cacheControlMode (+ cacheControlCustom), Expires for UseExpires, and whether to send an ETag.
 */
import type { ConfigElement } from '../../config/types.js';

export interface ClientCacheHeaders {
  readonly cacheControl: string | undefined;
  readonly expires: string | undefined;
  readonly setEtag: boolean;
}

const compiled = new WeakMap<ConfigElement, ClientCacheHeaders>();

function withCustom(base: string, custom: string): string {
  return custom === '' ? base : `${base}, ${custom}`;
}

/** `clientCache` is the staticContent section's clientCache child. */
export function clientCacheHeaders(clientCache: ConfigElement): ClientCacheHeaders {
  let h = compiled.get(clientCache);
  if (h) return h;
  const custom = clientCache.str('cacheControlCustom').trim();
  const setEtag = clientCache.bool('setEtag');
  const mode = clientCache.enumName('cacheControlMode');
  switch (mode) {
    case 'DisableCache':
      h = { cacheControl: withCustom('no-cache', custom), expires: undefined, setEtag };
      break;
    case 'UseMaxAge': {
      // cacheControlMaxAge is a timeSpan, delivered in milliseconds.
      const seconds = Math.floor(clientCache.num('cacheControlMaxAge') / 1000);
      h = { cacheControl: withCustom(`max-age=${seconds}`, custom), expires: undefined, setEtag };
      break;
    }
    case 'UseExpires': {
      const expires = clientCache.str('httpExpires').trim();
      h = { cacheControl: custom || undefined, expires: expires || undefined, setEtag };
      break;
    }
    default:
      // NoControl: only a custom directive the administrator wrote.
      h = { cacheControl: custom || undefined, expires: undefined, setEtag };
  }
  compiled.set(clientCache, h);
  return h;
}
