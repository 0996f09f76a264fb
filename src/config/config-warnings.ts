/**
 * Warnings about a configuration that loads but will not do what its author expects. Two kinds:
 *
 * - Settings Wharf parses but does not enforce (yet). The list is declarative: the `notEnforced`
 *   flag on a section's row of the schema table (schema.ts), plus FOREIGN_NOT_ENFORCED below for
 *   sections outside the schema (ASP.NET's). Security settings come first and as warnings: IIS
 *   would refuse requests that Wharf serves, and that must never be silent.
 * - A configuration that cannot serve anything: no handler mappings (every request gets 404.4),
 *   or handler mappings naming modules that are not in <modules> (500.21).
 *
 * Each warning names the file, line and column of what was written. They are printed at start-up
 * (applicationHost.config), by `wharf check` (every file), and once per worker (web.config files).
 */
import type { ErrorCode, SourcePosition } from '../errors.js';
import { appHostInternals } from './application-host.js';
import type { ConfigFile } from './config-file.js';
import type { NotEnforced, SectionSchema } from './schema.js';
import type { AttrValue, Directive, ElementNode } from './section-node.js';
import type { AppHostConfig, ConfigElement } from './types.js';
import { attributeOf, attributePosition, elementPosition } from './xml-document.js';
import type { XmlElement } from './xml-document.js';

/** Warning codes: entries of the error catalogue (src/errors.ts), so each is documented. */
export type ConfigWarningCode = Extract<ErrorCode, 'CFG_NOT_ENFORCED' | 'CFG_NO_EFFECT' | 'CFG_NO_HANDLERS' | 'CFG_HANDLER_MODULE' | 'CFG_FASTCGI'>;

export interface ConfigWarning {
  readonly code: ConfigWarningCode;
  /**
   * 'security': IIS would refuse requests that Wharf serves. 'serving': requests will fail
   * (404.4, 500.21). 'feature': a setting that has no effect in Wharf.
   */
  readonly kind: 'security' | 'serving' | 'feature';
  readonly position: SourcePosition;
  readonly message: string;
}

const RANK = { security: 0, serving: 1, feature: 2 } as const;

/** Security first, then what breaks serving, then settings without effect; file order within each. */
export function sortWarnings(warnings: readonly ConfigWarning[]): ConfigWarning[] {
  return [...warnings].sort(
    (a, b) =>
      RANK[a.kind] - RANK[b.kind] ||
      a.position.file.localeCompare(b.position.file) ||
      a.position.line - b.position.line ||
      a.position.column - b.position.column,
  );
}

/** `file:line:column: message`, or `file: message` for the file as a whole (line 0). */
export function describeWarning(w: ConfigWarning): string {
  const p = w.position;
  return p.line > 0 ? `${p.file}:${p.line}:${p.column}: ${w.message}` : `${p.file}: ${w.message}`;
}

/** The key warnings are reported once by (per process, per file position). */
export function warningKey(w: ConfigWarning): string {
  return `${w.position.file}:${w.position.line}:${w.position.column}:${w.code}:${w.message}`;
}

// ---------------------------------------------------------------------------------------------
// Settings parsed but not enforced

/**
 * Sections outside Wharf's schema (kept as written, reported as unsupported) whose use would
 * make IIS refuse requests. `elements`: child elements that restrict; `attributes`: attribute →
 * the value that changes nothing.
 */
interface ForeignNotEnforced {
  readonly section: string;
  readonly kind: 'security' | 'feature';
  readonly effect: string;
  readonly elements?: readonly string[];
  readonly attributes?: Readonly<Record<string, string>>;
}

export const FOREIGN_NOT_ENFORCED: readonly ForeignNotEnforced[] = [
  {
    // ASP.NET's URL authorization (<deny users="?"/>, <deny users="*"/>): IIS applies it through
    // the managed UrlAuthorizationModule; Wharf hosts no .NET, so nothing applies it.
    section: 'system.web/authorization',
    kind: 'security',
    elements: ['deny'],
    effect: 'ASP.NET URL authorization is not applied (Wharf hosts no .NET): every request is allowed',
  },
];

function warning(kind: 'security' | 'feature', section: string, what: string, effect: string, position: SourcePosition): ConfigWarning {
  return kind === 'security'
    ? { code: 'CFG_NOT_ENFORCED', kind, position, message: `SECURITY: ${section}: ${what} is not enforced: ${effect}` }
    : { code: 'CFG_NO_EFFECT', kind, position, message: `${section}: ${what} has no effect in Wharf: ${effect}` };
}

function childNode(node: ElementNode, path: string): ElementNode | undefined {
  let n: ElementNode | undefined = node;
  for (const name of path.split('/')) {
    if (name === '' || n === undefined) continue;
    n = n.children.find((c) => c.name === name);
  }
  return n;
}

function shownAttributes(node: ElementNode): string {
  let text = `<${node.name}`;
  for (const a of node.schema.attributes) {
    const v = node.values[a.index];
    if (v === undefined) continue;
    // Long entries (a fastCgi application's dozen attributes) are cut: the line number finds the rest.
    if (text.length > 100) return text + ' …/>';
    text += ` ${a.name}="${v.raw}"`;
  }
  return text + '/>';
}

/** An entry that changes nothing: the spec's attributes match, every other one is unset or empty. */
function harmless(item: ElementNode, specs: readonly Readonly<Record<string, string>>[]): boolean {
  return specs.some((spec) =>
    item.schema.attributes.every((a) => {
      const v: AttrValue | undefined = item.values[a.index];
      const want = spec[a.name];
      if (want === undefined) return v === undefined || v.raw.trim() === '';
      const text = v !== undefined ? v.raw : (a.defaultText ?? '');
      return text.trim().toLowerCase() === want.toLowerCase();
    }),
  );
}

function directivePosition(d: Directive): SourcePosition {
  return d.kind === 'add' ? d.item.position : d.kind === 'remove' ? d.key.position : d.position;
}

function sectionWarnings(schema: SectionSchema, flag: NotEnforced, node: ElementNode, out: ConfigWarning[]): void {
  for (const path of flag.attributes ?? []) {
    const slash = path.lastIndexOf('/');
    const owner = slash === -1 ? node : childNode(node, path.slice(0, slash));
    const name = path.slice(slash + 1);
    const attr = owner?.schema.attributeIndex.get(name);
    const v = attr === undefined ? undefined : owner!.values[attr.index];
    if (v === undefined || v.value === attr!.defaultValue) continue;
    out.push(warning(flag.kind, schema.path, `${path}="${v.raw}"`, flag.effect, v.position));
  }
  for (const [path, specs] of Object.entries(flag.items ?? {})) {
    const owner = childNode(node, path);
    if (owner === undefined) continue;
    const directives = owner.directives;
    for (let i = 0; i < directives.length; i++) {
      const d = directives[i]!;
      if (d.kind === 'add') {
        if (!harmless(d.item, specs)) out.push(warning(flag.kind, schema.path, `entry ${shownAttributes(d.item)}`, flag.effect, d.item.position));
        continue;
      }
      // <clear/> or <remove/> takes inherited entries away (IIS's allow-all rule, say). Reported
      // only when nothing is added after it here: an entry added back is harmless or reported itself.
      const followed = directives.slice(i + 1).some((e) => e.kind === 'add');
      if (!followed && specs.length > 0) {
        const what = d.kind === 'clear' ? `<${d.name}/>` : `entry ${shownAttributes(d.key)}`.replace('entry <', '<');
        out.push(warning(flag.kind, schema.path, `${what} (removing ${specs.length === 1 ? 'the default entry' : 'default entries'})`, flag.effect, directivePosition(d)));
      }
    }
  }
}

function foreignWarnings(file: string, rule: ForeignNotEnforced, el: XmlElement, out: ConfigWarning[]): void {
  for (const child of el.children) {
    if (!rule.elements?.includes(child.name)) continue;
    const attrs = child.attributes.map((a) => `${a.name}="${a.value}"`).join(' ');
    out.push(warning(rule.kind, rule.section, `<${child.name}${attrs ? ' ' + attrs : ''}/>`, rule.effect, elementPosition(file, child)));
  }
  for (const [name, fine] of Object.entries(rule.attributes ?? {})) {
    const a = attributeOf(el, name);
    if (a === undefined || a.value.trim().toLowerCase() === fine.toLowerCase()) continue;
    out.push(warning(rule.kind, rule.section, `${name}="${a.value}"`, rule.effect, attributePosition(file, a)));
  }
}

/** Settings of one parsed file that Wharf reads but does not enforce, in file order. */
export function notEnforcedWarnings(config: ConfigFile): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  for (const block of config.blocks) {
    for (const use of block.sections.values()) {
      for (const flag of use.schema.notEnforced) sectionWarnings(use.schema, flag, use.node, out);
    }
  }
  for (const p of config.preserved) {
    const rule = FOREIGN_NOT_ENFORCED.find((r) => r.section === p.section);
    if (rule !== undefined) foreignWarnings(config.file, rule, p.element, out);
  }
  return sortWarnings(out);
}

// ---------------------------------------------------------------------------------------------
// A configuration that cannot serve

/**
 * Whether a handler's preCondition can hold in a Wharf worker (integrated pipeline, 64-bit, no
 * .NET runtime): the rule of src/worker/handler-mapping.ts `preconditionHolds`, for a pool in
 * Integrated mode. Mappings that can never be chosen do not need their modules.
 */
function canBeChosen(preCondition: string): boolean {
  for (const raw of preCondition.split(',')) {
    const p = raw.trim().toLowerCase();
    if (p === 'bitness32' || p === 'classicmode' || p === 'isapimode' || p.startsWith('runtimeversion')) return false;
  }
  return true;
}

/**
 * Handler mappings and modules as one URL sees them (merged). `where` stands for the level when
 * the <handlers> section itself was never written; `scope` is appended to messages (' for site "A"').
 */
export function servingWarnings(handlers: ConfigElement, modules: ConfigElement, where: SourcePosition, scope = ''): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  if (handlers.items.length === 0) {
    out.push({
      code: 'CFG_NO_HANDLERS',
      kind: 'serving',
      position: handlers.source ?? where,
      message: `no handler mappings${scope}: every request will get 404.4 (add <handlers> and <modules>; docs/configuration.md shows a minimal working applicationHost.config)`,
    });
    return out;
  }
  const enabled = new Set(modules.items.map((m) => m.str('name').toLowerCase()));
  if (enabled.size === 0) {
    out.push({
      code: 'CFG_HANDLER_MODULE',
      kind: 'serving',
      position: modules.source ?? handlers.source ?? where,
      message: `no modules in <modules>${scope}: every handler mapping names a module that is not enabled, so every request will get 500.21 (docs/configuration.md shows a minimal working applicationHost.config)`,
    });
    return out;
  }
  for (const h of handlers.items) {
    if (!canBeChosen(h.str('preCondition'))) continue;
    for (const m of h.str('modules').split(',')) {
      const name = m.trim();
      if (name === '' || enabled.has(name.toLowerCase())) continue;
      out.push({
        code: 'CFG_HANDLER_MODULE',
        kind: 'serving',
        position: h.source ?? where,
        message: `handler ${h.str('name')} names ${name}, which is not in <modules>${scope}: requests it maps (path="${h.str('path')}") will get 500.21`,
      });
    }
  }
  return out;
}

/**
 * Security sections enforced by a module: used in a way that restricts access while their
 * module is not in <modules>, nothing enforces them (IIS would not either, but an administrator
 * who copied the section and not the module must hear it). `restricts` gives the element to point
 * at, or undefined when the use changes nothing.
 */
const SECURITY_MODULES: readonly { readonly section: string; readonly module: string; readonly effect: string; readonly restricts: (s: ConfigElement) => ConfigElement | undefined }[] = [
  {
    section: 'system.webServer/security/authentication/anonymousAuthentication',
    module: 'AnonymousAuthenticationModule',
    effect: 'anonymous requests run as the pool identity, not as the named account',
    restricts: (s) => (s.bool('enabled') && s.str('userName') !== '' && s.str('userName').toUpperCase() !== 'IUSR' ? s : undefined),
  },
  {
    section: 'system.webServer/security/authentication/basicAuthentication',
    module: 'BasicAuthenticationModule',
    effect: 'no Basic challenge is sent and Basic credentials are ignored',
    restricts: (s) => (s.bool('enabled') ? s : undefined),
  },
  {
    section: 'system.webServer/security/authentication/digestAuthentication',
    module: 'DigestAuthenticationModule',
    effect: 'no Digest challenge is sent and Digest credentials are ignored',
    restricts: (s) => (s.bool('enabled') ? s : undefined),
  },
  {
    section: 'system.webServer/security/authorization',
    module: 'UrlAuthorizationModule',
    effect: 'every request is allowed',
    // Anything but IIS's shipped `Allow users="*"` restricts (an empty list denies everyone).
    restricts: (s) => {
      if (s.items.length === 0) return s.source === undefined ? undefined : s;
      return s.items.find((i) => !(i.enumName('accessType') === 'Allow' && i.str('users').trim() === '*' && i.str('roles').trim() === '' && i.str('verbs').trim() === ''));
    },
  },
];

/**
 * The security sections one URL sees (merged) that restrict access while the module enforcing
 * them is not in its <modules>.
 */
export function securityModuleWarnings(section: (path: string) => ConfigElement, modules: ConfigElement, scope = ''): ConfigWarning[] {
  const enabled = new Set(modules.items.map((m) => m.str('name').toLowerCase()));
  const out: ConfigWarning[] = [];
  for (const rule of SECURITY_MODULES) {
    if (enabled.has(rule.module.toLowerCase())) continue;
    const at = rule.restricts(section(rule.section));
    if (at?.source === undefined) continue;
    out.push({
      code: 'CFG_NOT_ENFORCED',
      kind: 'security',
      position: at.source,
      message: `SECURITY: ${rule.section}: ${at.name === 'add' ? 'this rule' : 'this setting'} is not enforced: ${rule.module} is not in <modules>${scope}: ${rule.effect}`,
    });
  }
  return out;
}

/**
 * Everything to warn about in applicationHost.config itself: its unenforced settings and whether
 * its server level can serve. (web.config files are looked at by workers and `wharf check`.)
 */
export function appHostWarnings(appHost: AppHostConfig): ConfigWarning[] {
  const internals = appHostInternals(appHost);
  const out = internals !== undefined ? notEnforcedWarnings(internals.config) : [];
  const root = internals?.serverBlocks[0]?.position ?? { file: appHost.file, line: 0, column: 0 };
  if (appHost.sites.length > 0) {
    out.push(...servingWarnings(appHost.section('system.webServer/handlers'), appHost.section('system.webServer/modules'), root));
    out.push(...securityModuleWarnings((path) => appHost.section(path), appHost.section('system.webServer/modules')));
  }
  return sortWarnings(out);
}
