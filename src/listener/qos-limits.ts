/**
 * The QoS limits the listener enforces, read from applicationHost.config (iis-behavior.md §6.1,
 * §1.7): `webLimits` server-wide, site `limits` per site, and `serverRuntime
 * appConcurrentRequestLimit` at server level only (the listener routes before any per-URL
 * configuration is resolved; `<location>` values of serverRuntime are not honoured here).
 */
import type { AppHostConfig, SiteConfig } from '../config/types.js';
import { BandwidthBucket, BandwidthThrottle } from './bandwidth-throttle.js';

/** IIS's "unlimited" for maxBandwidth, maxGlobalBandwidth and maxConnections. */
export const UNLIMITED = 4294967295;
/** HTTP.sys's default for a timer configured as 0 (e.g. webLimits headerWaitTimeout="00:00:00"). */
export const HTTP_SYS_DEFAULT_TIMER_MS = 120_000;

/** Server-wide values (webLimits, serverRuntime at server level). */
export interface ServerQos {
  /** webLimits connectionTimeout: idle timer of a connection before its first routed request. */
  readonly idleMs: number;
  /** webLimits headerWaitTimeout (0 → HTTP.sys's 120 s). */
  readonly headerWaitMs: number;
  /** webLimits minBytesPerSecond; 0 disables the send-rate timer. */
  readonly minBytesPerSecond: number;
  /** serverRuntime appConcurrentRequestLimit (server level): requests in progress at once. */
  readonly appConcurrentRequestLimit: number;
  /** webLimits maxGlobalBandwidth, when not unlimited. */
  readonly globalBandwidth: BandwidthBucket | undefined;
}

export const DEFAULT_SERVER_QOS: ServerQos = Object.freeze({
  idleMs: HTTP_SYS_DEFAULT_TIMER_MS,
  headerWaitMs: HTTP_SYS_DEFAULT_TIMER_MS,
  minBytesPerSecond: 240,
  appConcurrentRequestLimit: 5000,
  globalBandwidth: undefined,
});

/** One site's limits and live connection count; updated in place when the configuration changes. */
export class SiteQos {
  readonly siteId: number;
  /** limits connectionTimeout: idle and entity-body timer of the site's connections. */
  connectionTimeoutMs = HTTP_SYS_DEFAULT_TIMER_MS;
  maxConnections = UNLIMITED;
  /** Connections whose first request routed to this site. */
  connections = 0;
  /** Pacing for the site's responses (site and/or global bandwidth); undefined = not throttled. */
  throttle: BandwidthThrottle | undefined = undefined;
  #bucket: BandwidthBucket | undefined = undefined;

  constructor(siteId: number) {
    this.siteId = siteId;
  }

  configure(site: SiteConfig, server: ServerQos): void {
    const limits = site.limits;
    this.connectionTimeoutMs = timerMs(limits.num('connectionTimeout'));
    this.maxConnections = limits.num('maxConnections');
    const bw = limits.num('maxBandwidth');
    // Keep the bucket while the rate stays, so a config edit does not reset its pacing state.
    if (bw === UNLIMITED) this.#bucket = undefined;
    else if (this.#bucket?.bytesPerSecond !== bw) this.#bucket = new BandwidthBucket(bw);
    const buckets: BandwidthBucket[] = [];
    if (this.#bucket !== undefined) buckets.push(this.#bucket);
    if (server.globalBandwidth !== undefined) buckets.push(server.globalBandwidth);
    this.throttle = buckets.length === 0 ? undefined : new BandwidthThrottle(buckets);
  }
}

export function serverQos(config: AppHostConfig, previous: ServerQos): ServerQos {
  const wl = config.section('system.applicationHost/webLimits');
  const global = wl.num('maxGlobalBandwidth');
  return {
    idleMs: timerMs(wl.num('connectionTimeout')),
    headerWaitMs: timerMs(wl.num('headerWaitTimeout')),
    minBytesPerSecond: wl.num('minBytesPerSecond'),
    appConcurrentRequestLimit: config.section('system.webServer/serverRuntime').num('appConcurrentRequestLimit'),
    globalBandwidth:
      global === UNLIMITED
        ? undefined
        : previous.globalBandwidth?.bytesPerSecond === global
          ? previous.globalBandwidth
          : new BandwidthBucket(global),
  };
}

/** A configured timer in ms; 0 means HTTP.sys's default, as for HTTP.sys's own timers. */
function timerMs(ms: number): number {
  return ms > 0 ? ms : HTTP_SYS_DEFAULT_TIMER_MS;
}
