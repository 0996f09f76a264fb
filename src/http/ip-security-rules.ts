/**
 * IIS's IP and domain restrictions as data (role-neutral): `security/ipSecurity` and
 * `security/dynamicIpSecurity` compiled once per effective section, and the verdict for a client.
 * The listener applies them to whole sites before any pool is involved, IpRestrictionModule and
 * DynamicIpRestrictionModule to URLs whose rules differ below the site (docs/configuration.md).
 *
 * ipSecurity (iis-behavior.md §2 security/ipSecurity): entries are tried in their effective order
 * (parent levels first, then the order written) and the first entry matching the client decides;
 * none matching → `allowUnlisted`. Domain entries match only with `enableReverseDns`, against the
 * client's forward-confirmed host name (`*.example.com` also matches every name below it); a name
 * that cannot be found matches nothing. A denial is the deny action's status with sub-status 503
 * (address, or unlisted) or 504 (host name).
 */
import type { ConfigElement } from '../config/types.js';
import type { SourcePosition } from '../errors.js';
import { forwardedFor, inPrefix, parsePrefix, type Address128, type Prefix } from './ip-address.js';

export type DenyAction = 'AbortRequest' | 'Unauthorized' | 'Forbidden' | 'NotFound';

/** The status each deny action answers with; AbortRequest resets the connection (0). */
export const DENY_STATUS: Readonly<Record<DenyAction, number>> = { AbortRequest: 0, Unauthorized: 401, Forbidden: 403, NotFound: 404 };

/** IIS's sub-statuses for IP denials, combined with the deny action's status (403.503, 404.504 …). */
export const IP_DENIED = { concurrentRequests: 501, requestRate: 502, address: 503, hostName: 504 } as const;
export type IpDenial = (typeof IP_DENIED)[keyof typeof IP_DENIED];

type IpRule =
  | { readonly kind: 'address'; readonly prefix: Prefix; readonly allowed: boolean }
  | { readonly kind: 'domain'; readonly name: string; readonly wildcard: boolean; readonly allowed: boolean };

export interface IpSecurityPolicy {
  readonly kind: 'ipSecurity';
  readonly rules: readonly IpRule[];
  readonly allowUnlisted: boolean;
  readonly enableReverseDns: boolean;
  readonly enableProxyMode: boolean;
  readonly denyAction: DenyAction;
  /** Some rule needs the client's host name (a domain entry, with enableReverseDns). */
  readonly needsHostName: boolean;
  /** Nothing can be denied: allowUnlisted with no deny entry. */
  readonly inert: boolean;
}

/** An entry IIS would refuse (its configuration error), with where it was written. */
export interface IpRuleProblem {
  readonly kind: 'problem';
  readonly message: string;
  readonly source: SourcePosition | undefined;
}

export interface DynamicIpPolicy {
  readonly kind: 'dynamicIpSecurity';
  readonly denyAction: DenyAction;
  readonly enableProxyMode: boolean;
  readonly loggingOnly: boolean;
  /** denyByConcurrentRequests maxConcurrentRequests; 0 when not enabled. */
  readonly maxConcurrent: number;
  /** denyByRequestRate maxRequests per intervalMs; 0 when not enabled. */
  readonly maxRequests: number;
  readonly intervalMs: number;
  /** Neither limit is enabled. */
  readonly inert: boolean;
}

const compiledIp = new WeakMap<ConfigElement, IpSecurityPolicy | IpRuleProblem>();
const compiledDynamic = new WeakMap<ConfigElement, DynamicIpPolicy>();

/** The effective ipSecurity section as a policy (once per element), or its first bad entry. */
export function compileIpSecurity(section: ConfigElement): IpSecurityPolicy | IpRuleProblem {
  let c = compiledIp.get(section);
  if (c === undefined) compiledIp.set(section, (c = compile(section)));
  return c;
}

function compile(section: ConfigElement): IpSecurityPolicy | IpRuleProblem {
  const rules: IpRule[] = [];
  const enableReverseDns = section.bool('enableReverseDns');
  let denies = false;
  for (const item of section.items) {
    const allowed = item.bool('allowed');
    const ip = item.str('ipAddress');
    const domain = item.str('domainName').trim().toLowerCase();
    if (ip !== '') {
      const prefix = parsePrefix(ip, item.str('subnetMask'));
      if (typeof prefix === 'string') return { kind: 'problem', message: `ipSecurity: ${prefix}`, source: item.source };
      rules.push({ kind: 'address', prefix, allowed });
    } else if (domain !== '') {
      const wildcard = domain.startsWith('*.');
      rules.push({ kind: 'domain', name: wildcard ? domain.slice(1) : domain, wildcard, allowed });
    } else {
      return { kind: 'problem', message: 'ipSecurity: an entry needs an ipAddress or a domainName', source: item.source };
    }
    if (!allowed) denies = true;
  }
  const allowUnlisted = section.bool('allowUnlisted');
  return {
    kind: 'ipSecurity',
    rules,
    allowUnlisted,
    enableReverseDns,
    enableProxyMode: section.bool('enableProxyMode'),
    denyAction: section.enumName('denyAction') as DenyAction,
    needsHostName: enableReverseDns && rules.some((r) => r.kind === 'domain'),
    inert: allowUnlisted && !denies,
  };
}

/** The effective dynamicIpSecurity section as a policy (once per element). */
export function compileDynamicIpSecurity(section: ConfigElement): DynamicIpPolicy {
  let c = compiledDynamic.get(section);
  if (c === undefined) {
    const conc = section.child('denyByConcurrentRequests');
    const rate = section.child('denyByRequestRate');
    const maxConcurrent = conc.bool('enabled') ? conc.num('maxConcurrentRequests') : 0;
    const maxRequests = rate.bool('enabled') ? rate.num('maxRequests') : 0;
    c = {
      kind: 'dynamicIpSecurity',
      denyAction: section.enumName('denyAction') as DenyAction,
      enableProxyMode: section.bool('enableProxyMode'),
      loggingOnly: section.bool('enableLoggingOnlyMode'),
      maxConcurrent,
      maxRequests,
      intervalMs: rate.num('requestIntervalInMilliseconds'),
      inert: maxConcurrent === 0 && maxRequests === 0,
    };
    compiledDynamic.set(section, c);
  }
  return c;
}

/**
 * The verdict for one address: 0 allowed, else the sub-status (503 address or unlisted, 504 host
 * name). `hostName` is the forward-confirmed name of this address (null: none found, undefined:
 * not looked up, so domain entries match nothing).
 */
export function addressVerdict(policy: IpSecurityPolicy, address: Address128, hostName: string | null | undefined): 0 | 503 | 504 {
  for (const r of policy.rules) {
    if (r.kind === 'address') {
      if (inPrefix(address, r.prefix)) return r.allowed ? 0 : IP_DENIED.address;
    } else if (policy.enableReverseDns && typeof hostName === 'string' && domainMatches(r.name, r.wildcard, hostName)) {
      return r.allowed ? 0 : IP_DENIED.hostName;
    }
  }
  return policy.allowUnlisted ? 0 : IP_DENIED.address;
}

function domainMatches(name: string, wildcard: boolean, host: string): boolean {
  // name is ".example.com" for a wildcard entry.
  return wildcard ? host.endsWith(name) && host.length > name.length : host === name;
}

/**
 * The verdict for a request: the connection's address, and with enableProxyMode every address of
 * its X-Forwarded-For chain too (any denied one denies the request: a proxy must not launder a
 * denied client). Domain entries apply to the connection's address (`hostName`).
 */
export function requestVerdict(policy: IpSecurityPolicy, client: Address128, hostName: string | null | undefined, xForwardedFor: string | undefined): 0 | 503 | 504 {
  const v = addressVerdict(policy, client, hostName);
  if (v !== 0 || !policy.enableProxyMode || xForwardedFor === undefined) return v;
  for (const a of forwardedFor(xForwardedFor)) {
    const f = addressVerdict(policy, a, undefined);
    if (f !== 0) return f;
  }
  return 0;
}

/**
 * Whose counters a request counts against: with enableProxyMode the original client, the first
 * address of X-Forwarded-For (the IIS blog's "client, proxy1, proxy2"), else the connection's.
 */
export function dynamicClient(policy: DynamicIpPolicy, client: Address128, xForwardedFor: string | undefined): Address128 {
  if (!policy.enableProxyMode || xForwardedFor === undefined) return client;
  return forwardedFor(xForwardedFor)[0] ?? client;
}
