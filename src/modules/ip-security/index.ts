/**
 * IpRestrictionModule (IIS iprestr.dll) and DynamicIpRestrictionModule, in BeginRequest: the
 * URL's effective `security/ipSecurity` and `security/dynamicIpSecurity` (rules in
 * src/http/ip-security-rules.ts), for URLs whose rules differ from their site's. When
 * applicationHost.config's site-level section is what every URL gets (siteLevelSection().final)
 * the listener has enforced it before any pool (src/listener/ip-restrictions.ts) and these
 * modules do nothing, so each request is judged once.
 *
 * Dynamic counters here are this worker's own, per site and configuration scope (a web garden's
 * workers each count their share); the listener's, for site-level sections, are shared.
 */
import { siteLevelSection } from '../../config/application-host.js';
import type { ConfigElement } from '../../config/types.js';
import { addressKey, parseAddress, type Address128 } from '../../http/ip-address.js';
import { admitted, DynamicIpCounters, released, type ClientCounter } from '../../http/dynamic-ip-counters.js';
import { compileDynamicIpSecurity, compileIpSecurity, DENY_STATUS, dynamicClient, requestVerdict, type DenyAction, type IpSecurityPolicy } from '../../http/ip-security-rules.js';
import { ReverseDns } from '../../http/reverse-dns.js';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { statusText } from '../sub-status.js';

export const IP_SECURITY_SECTION = 'system.webServer/security/ipSecurity';
export const DYNAMIC_IP_SECURITY_SECTION = 'system.webServer/security/dynamicIpSecurity';

const reverseDns = new ReverseDns();

/** The URL's section, unless the listener enforces the site's (then undefined). */
function sectionToEnforce(ctx: HttpContext, path: string): ConfigElement | undefined {
  if (ctx.isChildRequest) return undefined; // the client's request was judged already
  if (siteLevelSection(ctx.site, path)?.final === true) return undefined;
  return ctx.config.section(path);
}

function refuse(ctx: HttpContext, module: string, action: DenyAction, subStatus: number): void {
  const status = DENY_STATUS[action];
  ctx.setStatus(status === 0 ? 403 : status, subStatus, {
    module,
    notification: ctx.notification,
    hresult: 0,
    description: statusText(403, subStatus).description,
  });
  // AbortRequest: the connection is reset, LogRequest and EndRequest still run (iis-behavior.md §3.3).
  if (status === 0) ctx.response.abort();
  ctx.finish();
}

/**
 * Synchronous unless a rule needs the client's host name (STYLE.md §8): a promise here would send
 * every request's BeginRequest down the pipeline's asynchronous path, even where the listener
 * judged the site's rules and this module has nothing to do.
 */
function ipRestriction(ctx: HttpContext): void | Promise<void> {
  const section = sectionToEnforce(ctx, IP_SECURITY_SECTION);
  if (section === undefined) return;
  const policy = compileIpSecurity(section);
  if (policy.kind === 'problem') {
    ctx.setStatus(500, 19, { module: 'IpRestrictionModule', notification: ctx.notification, hresult: 0, description: policy.message });
    ctx.finish();
    return;
  }
  if (policy.inert) return;
  const client = parseAddress(ctx.request.remoteAddress);
  if (client === undefined) return;
  if (policy.needsHostName) return reverseDns.resolve(ctx.request.remoteAddress).then((host) => judge(ctx, policy, client, host));
  judge(ctx, policy, client, undefined);
}

function judge(ctx: HttpContext, policy: IpSecurityPolicy, client: Address128, host: string | null | undefined): void {
  const v = requestVerdict(policy, client, host, policy.enableProxyMode ? ctx.request.headers['x-forwarded-for'] : undefined);
  if (v !== 0) refuse(ctx, 'IpRestrictionModule', policy.denyAction, v);
}

/** This worker's counters, per site and configuration scope (bounded: a few per site in practice). */
const counters = new Map<string, DynamicIpCounters>();
const MAX_SCOPES = 1_000;
const COUNTER_ITEM = 'DynamicIpRestrictionModule.counter';
let loggedAt = -Infinity;

function dynamicRestriction(ctx: HttpContext): void {
  const section = sectionToEnforce(ctx, DYNAMIC_IP_SECURITY_SECTION);
  if (section === undefined) return;
  const policy = compileDynamicIpSecurity(section);
  if (policy.inert) return;
  const address = parseAddress(ctx.request.remoteAddress);
  if (address === undefined) return;
  const scope = `${ctx.site.id} ${ctx.config.sectionScope(DYNAMIC_IP_SECURITY_SECTION)}`;
  let c = counters.get(scope);
  if (c === undefined) {
    if (counters.size >= MAX_SCOPES) counters.clear();
    counters.set(scope, (c = new DynamicIpCounters()));
  }
  const client = addressKey(dynamicClient(policy, address, ctx.request.headers['x-forwarded-for']));
  const { denial, counter } = c.check(policy, client, performance.now());
  if (denial !== 0) {
    if (!policy.loggingOnly) {
      refuse(ctx, 'DynamicIpRestrictionModule', policy.denyAction, denial);
      return;
    }
    const now = performance.now();
    // At most once a second per worker: a flood must not flood the log.
    if (now - loggedAt >= 1000) {
      loggedAt = now;
      ctx.log('warn', `dynamicIpSecurity (logging only): client ${client} is over ${denial === 501 ? 'denyByConcurrentRequests' : 'denyByRequestRate'} for ${ctx.request.path}`);
    }
  }
  if (policy.maxConcurrent > 0) {
    admitted(counter);
    ctx.items.set(COUNTER_ITEM, counter);
  }
}

function endRequest(ctx: HttpContext): void {
  const counter = ctx.items.get(COUNTER_ITEM) as ClientCounter | undefined;
  if (counter === undefined) return;
  ctx.items.delete(COUNTER_ITEM);
  released(counter);
}

export const IpRestrictionModule: ModuleDefinition = {
  name: 'IpRestrictionModule',
  notifications: { BeginRequest: ipRestriction },
};

export const DynamicIpRestrictionModule: ModuleDefinition = {
  name: 'DynamicIpRestrictionModule',
  notifications: { BeginRequest: dynamicRestriction, EndRequest: endRequest },
};
