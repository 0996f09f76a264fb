/**
 * HTTP.sys URL-prefix routing rebuilt from the sites' bindings: which sockets to listen on, which
 * site a request belongs to (host name > IP > wildcard), and which application — therefore which
 * application pool queue — serves its URL (longest path prefix, whole segments, any case).
 */
import { isIP } from 'node:net';
import type { ApplicationConfig, AppHostConfig, BindingConfig, SiteConfig } from '../config/types.js';
import { isUnderUrlPath } from '../http/url-path.js';

/** One listening socket: '::'/'0.0.0.0' for wildcard bindings, else a literal address. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** TLS is spoken on this socket (its bindings are https). */
  readonly secure: boolean;
}

/** A binding that cannot be served, and why (logged by the listener, reported by `wharf check`). */
export interface UnservedBinding {
  readonly site: SiteConfig;
  readonly binding: BindingConfig;
  readonly reason: string;
}

export interface SiteRoute {
  readonly site: SiteConfig;
  /** Applications sorted longest path first, for prefix matching. */
  readonly applications: readonly ApplicationConfig[];
}

interface BindingRoute {
  readonly binding: BindingConfig;
  readonly route: SiteRoute;
}

export interface AppRoute {
  readonly site: SiteConfig;
  readonly application: ApplicationConfig;
}

export class RoutingTable {
  readonly endpoints: readonly Endpoint[];
  /** port → bindings on that port. */
  readonly #byPort = new Map<number, BindingRoute[]>();
  /** Per port whose bindings share one IP: Host header value → site (null = none). */
  readonly #hostCache = new Map<number, Map<string, SiteRoute | null>>();
  /** Ports where a TLS client's SNI name can choose the binding or the certificate (namesMatter). */
  readonly #namedPorts = new Set<number>();
  readonly sites: readonly SiteRoute[];
  /** Bindings Wharf does not listen for (http and https on one port). */
  readonly unserved: readonly UnservedBinding[];

  constructor(config: AppHostConfig, options: { startedSites?: ReadonlySet<number> } = {}) {
    const sites: SiteRoute[] = [];
    const unserved: UnservedBinding[] = [];
    /** port → protocol ('http' | 'https') of the first binding seen on it. */
    const portProtocol = new Map<number, string>();
    for (const site of config.sites) {
      if (options.startedSites ? !options.startedSites.has(site.id) : !site.serverAutoStart) continue;
      const route: SiteRoute = {
        site,
        applications: [...site.applications].sort((a, b) => b.path.length - a.path.length),
      };
      sites.push(route);
      for (const binding of site.bindings) {
        const protocol = binding.protocol.toLowerCase();
        if (protocol !== 'http' && protocol !== 'https') continue;
        // One socket per port speaks one protocol: HTTP.sys refuses the same too (a port is
        // registered for http or https URLs, not both).
        const first = portProtocol.get(binding.port);
        if (first === undefined) portProtocol.set(binding.port, protocol);
        else if (first !== protocol) {
          unserved.push({ site, binding, reason: `port ${binding.port} already carries ${first} bindings; one port cannot serve both http and https` });
          continue;
        }
        let list = this.#byPort.get(binding.port);
        if (list === undefined) this.#byPort.set(binding.port, (list = []));
        list.push({ binding, route });
      }
    }
    this.sites = sites;
    this.unserved = unserved;
    for (const [port, list] of this.#byPort) {
      // One IP for every binding on the port (all '*', or all one address, whose socket only
      // ever sees that local address): the answer depends on the Host header alone.
      if (list.every((b) => b.binding.ip === list[0]!.binding.ip)) this.#hostCache.set(port, new Map());
      // sslFlags 1 (SNI) and 2 (Central Certificate Store) choose the certificate by name.
      if (list.some((b) => b.binding.host !== '' || (b.binding.sslFlags & 3) !== 0)) this.#namedPorts.add(port);
    }
    const endpoints: Endpoint[] = [];
    for (const [port, list] of this.#byPort) {
      // Linux will not let a specific address and the wildcard listen on one port together, so a
      // port with any wildcard binding gets one wildcard socket and routes by local address.
      const secure = portProtocol.get(port) === 'https';
      if (list.some((b) => b.binding.ip === '*')) {
        endpoints.push({ address: '::', port, secure });
      } else {
        const seen = new Set<string>();
        for (const b of list) {
          if (seen.has(b.binding.ip)) continue;
          seen.add(b.binding.ip);
          endpoints.push({ address: b.binding.ip, port, secure });
        }
      }
    }
    this.endpoints = endpoints;
  }

  /**
   * The site for a request that arrived on localAddress:localPort with this Host header value
   * (undefined → HTTP.sys's 400 Invalid Hostname).
   */
  site(localAddress: string, localPort: number, hostHeader: string | undefined): SiteRoute | undefined {
    const list = this.#byPort.get(localPort);
    if (list === undefined) return undefined;
    // Clients repeat the same Host value on every request: remember the answer per port when
    // the port's bindings do not depend on the local address.
    const cache = this.#hostCache.get(localPort);
    if (cache !== undefined && hostHeader !== undefined) {
      const hit = cache.get(hostHeader);
      if (hit !== undefined) return hit === null ? undefined : hit;
      const route = this.#match(list, localAddress, hostHeader);
      if (cache.size >= 4096) cache.clear();
      cache.set(hostHeader, route ?? null);
      return route;
    }
    return this.#match(list, localAddress, hostHeader);
  }

  /**
   * The binding a TLS connection to localAddress:localPort for this SNI name belongs to (the
   * same precedence as a request's Host): its sslFlags say where the certificate comes from.
   */
  binding(localAddress: string, localPort: number, serverName: string | undefined): BindingConfig | undefined {
    const list = this.#byPort.get(localPort);
    if (list === undefined) return undefined;
    return this.#best(list, localAddress, serverName === undefined ? '' : normalizeHost(serverName))?.binding;
  }

  /**
   * Whether a TLS client's SNI name can change anything on this port: some binding has a host
   * name (the binding, with its certificate and sslFlags, is chosen by name) or takes its
   * certificate by name (sslFlags 1 or 2). When not, the handshake is the same for every name.
   */
  namesMatter(port: number): boolean {
    return this.#namedPorts.has(port);
  }

  /** Whether any https binding is on this port (a TLS socket). */
  isSecurePort(port: number): boolean {
    const list = this.#byPort.get(port);
    return list !== undefined && list.length !== 0 && list[0]!.binding.protocol.toLowerCase() === 'https';
  }

  #match(list: readonly BindingRoute[], localAddress: string, hostHeader: string | undefined): SiteRoute | undefined {
    return this.#best(list, localAddress, hostHeader === undefined ? '' : normalizeHost(hostHeader))?.route;
  }

  #best(list: readonly BindingRoute[], localAddress: string, host: string): BindingRoute | undefined {
    const local = normalizeAddress(localAddress);
    // Rank: exact host (IP-specific, then wildcard IP), wildcard host (*.example.com),
    // IP-specific without host, wildcard without host.
    let best: BindingRoute | undefined;
    let bestRank = 99;
    for (let i = 0; i < list.length; i++) {
      const br = list[i]!;
      const b = br.binding;
      const ipMatch = b.ip === '*' ? 1 : normalizeAddress(b.ip) === local ? 0 : -1;
      if (ipMatch < 0) continue;
      let rank: number;
      if (b.host === '') rank = 4 + ipMatch;
      else if (b.host === host) rank = ipMatch;
      else if (b.host.startsWith('*.') && host.endsWith(b.host.slice(1)) && host.length > b.host.length - 1) rank = 2 + ipMatch;
      else continue;
      if (rank < bestRank) {
        bestRank = rank;
        best = br;
      }
    }
    return best;
  }

  /** The application of a site that serves `path` (the root application always matches). */
  static application(route: SiteRoute, path: string): ApplicationConfig {
    const apps = route.applications;
    for (let i = 0; i < apps.length; i++) {
      const a = apps[i]!;
      if (isUnderUrlPath(path, a.path)) return a;
    }
    return apps[apps.length - 1]!;
  }
}

/** Host header → lower-case host without port ('[::1]:80' → '::1'). */
export function normalizeHost(value: string): string {
  let v = value.trim().toLowerCase();
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end === -1 ? v : v.slice(1, end);
  }
  const colon = v.lastIndexOf(':');
  if (colon !== -1 && v.indexOf(':') === colon) v = v.slice(0, colon);
  if (v.endsWith('.')) v = v.slice(0, -1);
  return v;
}

/** '::ffff:127.0.0.1' (an IPv4 client on a dual-stack socket) → '127.0.0.1'. */
export function normalizeAddress(a: string): string {
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) return a.slice(7);
  return a;
}
