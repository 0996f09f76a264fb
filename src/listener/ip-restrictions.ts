/**
 * IP and domain restrictions in the listener (issue 17 "beyond IIS"): a client that a site's
 * `ipSecurity` or `dynamicIpSecurity` denies is refused in Listener.submit, before the response
 * cache, a pool queue or a worker is involved, so a flood from it costs other clients little. It
 * still gets IIS's answer (the deny action's status, sub-status 501–504 in the W3C line; an
 * AbortRequest resets the connection, or the stream on HTTP/2).
 *
 * The listener enforces a site's section only when applicationHost.config's site-level value is
 * what every URL of the site gets (siteLevelSection().final: no deeper <location> writes it and
 * web.config files cannot). Otherwise IpRestrictionModule and DynamicIpRestrictionModule enforce
 * the URL's effective section in the worker, and skip it when it is final, so each request is
 * judged exactly once. The counters here are per site and shared by every worker of it.
 */
import { performance } from 'node:perf_hooks';
import { siteLevelSection } from '../config/application-host.js';
import type { AppHostConfig } from '../config/types.js';
import { addressKey, parseAddress, type Address128 } from '../http/ip-address.js';
import { admitted, DynamicIpCounters, released, type ClientCounter } from '../http/dynamic-ip-counters.js';
import {
  compileDynamicIpSecurity,
  compileIpSecurity,
  DENY_STATUS,
  dynamicClient,
  requestVerdict,
  type DenyAction,
  type DynamicIpPolicy,
  type IpRuleProblem,
  type IpSecurityPolicy,
} from '../http/ip-security-rules.js';
import { ReverseDns } from '../http/reverse-dns.js';
import type { ClientConnection } from './client-connection.js';
import type { Exchange } from './exchange.js';
import { headerValue } from './header-value.js';

export const IP_SECURITY_SECTION = 'system.webServer/security/ipSecurity';
export const DYNAMIC_IP_SECURITY_SECTION = 'system.webServer/security/dynamicIpSecurity';

/** How a request is refused: `status` 0 = reset the connection (AbortRequest). */
export interface IpDenial {
  readonly status: number;
  readonly subStatus: number;
}

/** A site whose ipSecurity entry cannot be understood answers 500.19, as IIS does for a bad section. */
export const CONFIG_ERROR: IpDenial = Object.freeze({ status: 500, subStatus: 19 });

/** The verdict is not known yet: a host name is being looked up; the request is submitted again after. */
export const PENDING = 'pending';

interface SitePolicy {
  readonly siteName: string;
  readonly ip: IpSecurityPolicy | undefined;
  readonly problem: IpRuleProblem | undefined;
  readonly dynamic: DynamicIpPolicy | undefined;
  readonly counters: DynamicIpCounters;
  readonly readsForwardedFor: boolean;
  /** Logging-only mode: when the last "over the limit" line was written (once a second per site). */
  loggedAt: number;
}

const denials = new Map<number, IpDenial>();
function denial(action: DenyAction, subStatus: number): IpDenial {
  const status = DENY_STATUS[action];
  const key = status * 1000 + subStatus;
  let d = denials.get(key);
  if (d === undefined) denials.set(key, (d = Object.freeze({ status, subStatus })));
  return d;
}

export interface IpRestrictionsOptions {
  readonly warn: (message: string) => void;
  /** Submit a request again once its host name is known. */
  readonly resume: (ex: Exchange) => void;
}

/**
 * Flood shunt (beyond IIS): an address refused this many times within one second by a site's
 * rules (its own address, not one read from X-Forwarded-For) is refused at accept, its connections
 * closed unread, until SHUN_MS after it stops. Every refusal costs a parse, a page and a log line;
 * a connection closed at accept costs a fraction of that, so a denied flood cannot take the core
 * from the clients that are allowed. Only an address sending a hundred denied requests a second
 * is affected; while shunned it cannot reach the port's other sites either.
 */
export const SHUN_REFUSALS_PER_SECOND = 100;
export const SHUN_MS = 10_000;
/** Addresses whose refusals are counted at once (the oldest is dropped beyond). */
const MAX_COUNTED_ADDRESSES = 4096;

interface Refusals {
  second: number;
  count: number;
  shunUntil: number;
  /** Connections closed at accept since the last log line, and when that was. */
  dropped: number;
  loggedAt: number;
}

export class IpRestrictions {
  readonly #o: IpRestrictionsOptions;
  readonly #refusals = new Map<string, Refusals>();
  #sites = new Map<number, SitePolicy>();
  /** Requests admitted under a concurrency limit, with their client's counter (released at the end). */
  readonly #inProgress = new Map<Exchange, ClientCounter>();
  /** Each connection's address, parsed once. */
  readonly #addresses = new WeakMap<ClientConnection, Address128>();
  readonly #dns = new ReverseDns();

  constructor(options: IpRestrictionsOptions) {
    this.#o = options;
  }

  /**
   * A request of `ex` was refused by its site's rules: counted towards the flood shunt, unless the
   * rules read X-Forwarded-For (the connection's address is then a proxy's, shared by everyone).
   */
  refused(ex: Exchange): void {
    const p = this.#sites.get(ex.site!.id);
    if (p === undefined || p.readsForwardedFor) return;
    const address = ex.conn.remoteAddress;
    const now = performance.now();
    const second = Math.floor(now / 1000);
    let r = this.#refusals.get(address);
    if (r === undefined) {
      if (this.#refusals.size >= MAX_COUNTED_ADDRESSES) this.#refusals.delete(this.#refusals.keys().next().value!);
      this.#refusals.set(address, (r = { second, count: 0, shunUntil: 0, dropped: 0, loggedAt: -Infinity }));
    }
    if (r.second !== second) {
      r.second = second;
      r.count = 0;
    }
    if (++r.count < SHUN_REFUSALS_PER_SECOND) return;
    if (r.shunUntil <= now) this.#o.warn(`client ${address} was refused ${r.count} times in a second by site "${p.siteName}"'s IP restrictions: its connections are closed at accept for ${SHUN_MS / 1000} s after its last refusal`);
    r.shunUntil = now + SHUN_MS;
  }

  /** Whether a new connection from `address` is closed at once (the flood shunt). */
  shunned(address: string | undefined): boolean {
    if (address === undefined || this.#refusals.size === 0) return false;
    const r = this.#refusals.get(address);
    if (r === undefined) return false;
    const now = performance.now();
    if (r.shunUntil <= now) {
      if (r.dropped !== 0) this.#o.warn(`client ${address}: ${r.dropped} connections closed at accept (flood shunt over)`);
      r.dropped = 0;
      return false;
    }
    r.shunUntil = now + SHUN_MS;
    r.dropped++;
    if (now - r.loggedAt >= SHUN_MS) {
      r.loggedAt = now;
      this.#o.warn(`client ${address} is still flooding: ${r.dropped} connections closed at accept so far`);
    }
    return true;
  }

  /** Some site has something to enforce here (Listener.submit's fast path skips the rest). */
  get active(): boolean {
    return this.#sites.size !== 0;
  }

  /** Policies for a new configuration. A site whose dynamic policy stays the same keeps its counters. */
  apply(config: AppHostConfig): void {
    const next = new Map<number, SitePolicy>();
    for (const site of config.sites) {
      const ipSection = siteLevelSection(site, IP_SECURITY_SECTION);
      const dynSection = siteLevelSection(site, DYNAMIC_IP_SECURITY_SECTION);
      let ip: IpSecurityPolicy | undefined;
      let problem: IpRuleProblem | undefined;
      if (ipSection?.final === true) {
        const c = compileIpSecurity(ipSection.element);
        if (c.kind === 'problem') {
          problem = c;
          const at = c.source === undefined ? '' : `${c.source.file}:${c.source.line}:${c.source.column}: `;
          this.#o.warn(`${at}site "${site.name}": ${c.message}; its requests get 500.19 until it is fixed`);
        } else if (!c.inert) ip = c;
      }
      let dynamic: DynamicIpPolicy | undefined;
      if (dynSection?.final === true) {
        const d = compileDynamicIpSecurity(dynSection.element);
        if (!d.inert) dynamic = d;
      }
      if (ip === undefined && problem === undefined && dynamic === undefined) continue;
      const before = this.#sites.get(site.id);
      const sameDynamic = before?.dynamic !== undefined && dynamic !== undefined && sameLimits(before.dynamic, dynamic);
      next.set(site.id, {
        siteName: site.name,
        ip,
        problem,
        dynamic,
        counters: sameDynamic ? before!.counters : new DynamicIpCounters(),
        readsForwardedFor: ip?.enableProxyMode === true || dynamic?.enableProxyMode === true,
        loggedAt: -Infinity,
      });
    }
    this.#sites = next;
  }

  /**
   * The listener's verdict on a routed request: undefined to go on, an IpDenial, or PENDING while
   * the client's host name is looked up (`resume` submits it again; the exchange waits, received).
   */
  check(ex: Exchange): IpDenial | typeof PENDING | undefined {
    const p = this.#sites.get(ex.site!.id);
    if (p === undefined) return undefined;
    if (p.problem !== undefined) return CONFIG_ERROR;
    const conn = ex.conn;
    let addr = this.#addresses.get(conn);
    if (addr === undefined) {
      addr = parseAddress(conn.remoteAddress);
      if (addr === undefined) return undefined; // not an IP socket (never for TCP)
      this.#addresses.set(conn, addr);
    }
    const xff = p.readsForwardedFor ? headerValue(ex.head.rawHeaders, 'x-forwarded-for') || undefined : undefined;
    const ip = p.ip;
    if (ip !== undefined) {
      let host: string | null | undefined;
      if (ip.needsHostName) {
        host = this.#dns.cached(conn.remoteAddress);
        if (host === undefined) {
          void this.#dns.resolve(conn.remoteAddress).then(() => this.#o.resume(ex));
          return PENDING;
        }
      }
      const v = requestVerdict(ip, addr, host, xff);
      if (v !== 0) return denial(ip.denyAction, v);
    }
    const dyn = p.dynamic;
    if (dyn !== undefined) {
      const client = dynamicClient(dyn, addr, xff);
      const { denial: sub, counter } = p.counters.check(dyn, client === addr ? conn.remoteAddress : addressKey(client), performance.now());
      if (sub !== 0) {
        if (!dyn.loggingOnly) return denial(dyn.denyAction, sub);
        this.#logOnly(p, addressKey(client), sub);
      }
      if (dyn.maxConcurrent > 0) {
        admitted(counter);
        this.#inProgress.set(ex, counter);
      }
    }
    return undefined;
  }

  /** The request ended (Listener.completed): it no longer counts as in progress. */
  release(ex: Exchange): void {
    if (this.#inProgress.size === 0) return;
    const c = this.#inProgress.get(ex);
    if (c === undefined) return;
    released(c);
    this.#inProgress.delete(ex);
  }

  /**
   * enableLoggingOnlyMode: the request is served; the server log says who went over which limit
   * (at most once a second per site, so a flood cannot flood the log).
   */
  #logOnly(p: SitePolicy, client: string, sub: number): void {
    const now = performance.now();
    if (now - p.loggedAt < 1000) return;
    p.loggedAt = now;
    const what = sub === 501 ? 'denyByConcurrentRequests' : 'denyByRequestRate';
    this.#o.warn(`site "${p.siteName}": dynamicIpSecurity (logging only): client ${client} is over ${what}; IIS would answer ${DENY_STATUS[p.dynamic!.denyAction] || 'AbortRequest'}.${sub}`);
  }
}

function sameLimits(a: DynamicIpPolicy, b: DynamicIpPolicy): boolean {
  return a.maxConcurrent === b.maxConcurrent && a.maxRequests === b.maxRequests && a.intervalMs === b.intervalMs && a.enableProxyMode === b.enableProxyMode;
}
