/**
 * A site's HTTP Strict Transport Security (`<hsts>`, IIS 10 version 1709+): the header on every
 * https response, and with `redirectHttpToHttps` a 301 from http to the site's https binding,
 * sent by the listener before any pool is involved (as IIS does it in its core, not a module).
 */
import type { SiteConfig } from '../config/types.js';
import { normalizeHost } from './routing.js';

const lines = new WeakMap<SiteConfig, string | null>();

/** `Strict-Transport-Security: …\r\n` for the site's https responses, or undefined when off. */
export function hstsHeaderLine(site: SiteConfig | undefined): string | undefined {
  if (site === undefined || !site.hsts.enabled) return undefined;
  let line = lines.get(site);
  if (line === undefined) {
    const h = site.hsts;
    line = `Strict-Transport-Security: max-age=${h.maxAge}${h.includeSubDomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}\r\n`;
    lines.set(site, line);
  }
  return line ?? undefined;
}

/**
 * Where an http request goes under `redirectHttpToHttps`: the same host and URL on the site's
 * https binding for that host (its port unless 443); undefined when the site has none.
 */
export function httpsRedirectLocation(site: SiteConfig, hostHeader: string | undefined, rawTarget: string): string | undefined {
  if (!site.hsts.enabled || !site.hsts.redirectHttpToHttps) return undefined;
  const host = hostHeader === undefined ? '' : normalizeHost(hostHeader);
  let port = -1;
  for (const b of site.bindings) {
    if (b.protocol.toLowerCase() !== 'https') continue;
    const matches = b.host === '' || b.host === host || (b.host.startsWith('*.') && host.endsWith(b.host.slice(1)));
    if (!matches) continue;
    port = b.port;
    if (b.host !== '') break; // a binding naming the host wins over a catch-all one
  }
  if (port < 0 || host === '') return undefined;
  const authority = (host.includes(':') ? `[${host}]` : host) + (port === 443 ? '' : ':' + port);
  const path = rawTarget.startsWith('/') ? rawTarget : '/';
  return `https://${authority}${path}`;
}
