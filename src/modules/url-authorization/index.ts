/**
 * UrlAuthorizationModule (IIS urlauthz.dll): system.webServer/security/authorization, in
 * AuthorizeRequest. Each rule allows or denies `users` (names, `*` everyone, `?` anonymous),
 * `roles` (the Linux groups of the authenticated account) for `verbs` (empty: every verb).
 *
 * IIS's order: every Deny rule first, then the Allow rules; within each, parent levels before
 * child levels and collection order within a level. The merged collection already lists parent
 * levels first (`<add>` appends), so a stable partition gives that order. The first Deny that
 * matches refuses; else an Allow that matches lets the request through; else it is refused.
 * Refused → 401.2, which carries the challenges of the enabled schemes, so an anonymous client
 * is asked to log on and a user who is not allowed can log on as someone else.
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';

export const AUTHORIZATION_SECTION = 'system.webServer/security/authorization';

export interface AuthorizationRule {
  readonly allow: boolean;
  /** Lower-case names; '*' and '?' as written. */
  readonly users: ReadonlySet<string>;
  /** Lower-case group names. */
  readonly roles: ReadonlySet<string>;
  /** Verbs as written (IIS compares them case-sensitively); empty = every verb. */
  readonly verbs: ReadonlySet<string>;
  readonly source: string;
}

function list(text: string, lower: boolean): Set<string> {
  const out = new Set<string>();
  for (const part of text.split(',')) {
    const v = part.trim();
    if (v !== '') out.add(lower ? v.toLowerCase() : v);
  }
  return out;
}

/** Rules in evaluation order, once per effective section element. */
const compiled = new WeakMap<ConfigElement, readonly AuthorizationRule[]>();

export function rulesOf(section: ConfigElement): readonly AuthorizationRule[] {
  let rules = compiled.get(section);
  if (rules === undefined) {
    const all = section.items.map((item) => ({
      allow: item.enumName('accessType') === 'Allow',
      users: list(item.str('users'), true),
      roles: list(item.str('roles'), true),
      verbs: list(item.str('verbs'), false),
      source: item.source === undefined ? '' : `${item.source.file}:${item.source.line}`,
    }));
    rules = [...all.filter((r) => !r.allow), ...all.filter((r) => r.allow)];
    compiled.set(section, rules);
  }
  return rules;
}

/** Who a rule is matched against. */
export interface Principal {
  /** '' = anonymous. */
  readonly user: string;
  /** The account's name as the credential service resolved it (may differ from what was sent). */
  readonly accountName: string;
  readonly groups: readonly string[];
}

export function ruleMatches(rule: AuthorizationRule, who: Principal, method: string): boolean {
  if (rule.verbs.size !== 0 && !rule.verbs.has(method)) return false;
  if (rule.users.has('*')) return true;
  if (who.user === '') return rule.users.has('?');
  if (rule.users.has(who.user.toLowerCase()) || (who.accountName !== '' && rule.users.has(who.accountName.toLowerCase()))) return true;
  for (const g of who.groups) if (rule.roles.has(g.toLowerCase())) return true;
  return false;
}

/** The rule that decides, and whether the request may go on (no rule matched: refused). */
export function authorize(rules: readonly AuthorizationRule[], who: Principal, method: string): { allowed: boolean; rule: AuthorizationRule | undefined } {
  for (const rule of rules) if (ruleMatches(rule, who, method)) return { allowed: rule.allow, rule };
  return { allowed: false, rule: undefined };
}

function authorizeRequest(ctx: HttpContext): void {
  const rules = rulesOf(ctx.config.section(AUTHORIZATION_SECTION));
  // IIS's shipped rule alone (`Allow users="*"`, no Deny before it): nothing to work out.
  const first = rules[0];
  if (first !== undefined && first.allow && first.verbs.size === 0 && first.users.has('*')) return;
  const id = ctx.user === '' ? undefined : ctx.identity;
  const who: Principal = { user: ctx.user, accountName: id?.name ?? '', groups: id?.groups.map((g) => g.name) ?? [] };
  const { allowed, rule } = authorize(rules, who, ctx.request.method);
  if (allowed) return;
  ctx.setStatus(401, 2, {
    hresult: 0x80070005,
    description:
      rule === undefined
        ? `No authorization rule allows ${who.user === '' ? 'anonymous users' : `user ${who.user}`} to ${ctx.request.method} this URL.`
        : `An authorization rule${rule.source === '' ? '' : ` (${rule.source})`} denies ${who.user === '' ? 'anonymous users' : `user ${who.user}`} access to this URL.`,
  });
  ctx.finish();
}

export const UrlAuthorizationModule: ModuleDefinition = {
  name: 'UrlAuthorizationModule',
  notifications: { AuthorizeRequest: authorizeRequest },
};
