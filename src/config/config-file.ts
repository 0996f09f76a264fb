/**
 * One configuration file (applicationHost.config or a web.config) split the way IIS reads it:
 * <configSections> registrations, the content outside any <location> (the file's own level), and
 * each <location path> block. Implemented sections are validated against the schema here, so a
 * file that parses is schema-clean; merging and locking happen later (merge.ts), because they
 * depend on which files sit above this one.
 */
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import { parseElementNode, unknownElement } from './section-node.js';
import type { ElementNode } from './section-node.js';
import { isNamespaceOrTransformAttribute, SECTION_GROUPS, SECTIONS } from './schema.js';
import type { AllowDefinition, OverrideModeDefault, SectionSchema } from './schema.js';
import type { UnsupportedUse } from './types.js';
import { attributeOf, attributePosition, elementPosition, parseXml } from './xml-document.js';
import type { XmlAttribute, XmlElement } from './xml-document.js';

export type ConfigFileKind = 'appHost' | 'web';
export type OverrideMode = 'Inherit' | 'Allow' | 'Deny';

/** A <section> registered in <configSections>. */
export interface SectionRegistration {
  readonly path: string;
  readonly overrideModeDefault: OverrideModeDefault;
  readonly allowDefinition: AllowDefinition;
  readonly allowLocation: boolean;
  readonly position: SourcePosition;
}

export interface SectionUse {
  readonly path: string;
  readonly schema: SectionSchema;
  readonly node: ElementNode;
}

/** Content at one path of one file: the root level, or one <location>. */
export interface LocationBlock {
  /** Unique across every file parsed by this process (cache keys are built from it). */
  readonly id: number;
  readonly file: string;
  /** Normalised location path: '' for this level ('' and '.'), else 'a/b' or 'Site Name/app'. */
  readonly path: string;
  /** True for the content outside any <location>. */
  readonly isRoot: boolean;
  readonly overrideMode: OverrideMode;
  readonly inheritInChildApplications: boolean;
  readonly position: SourcePosition;
  readonly sections: ReadonlyMap<string, SectionUse>;
}

export interface ConfigFile {
  readonly file: string;
  readonly kind: ConfigFileKind;
  readonly registrations: ReadonlyMap<string, SectionRegistration>;
  /** Section groups registered in this file's <configSections>. */
  readonly groups: ReadonlySet<string>;
  readonly blocks: readonly LocationBlock[];
  /** Sections this file uses that Wharf does not implement (first use of each). */
  readonly unsupported: readonly UnsupportedUse[];
  /** Those sections' XML, kept as written. */
  readonly preserved: readonly { readonly section: string; readonly element: XmlElement }[];
}

export interface ParseConfigOptions {
  readonly kind: ConfigFileKind;
  readonly variables?: Readonly<Record<string, string>> | undefined;
  /** Section groups registered by files above this one (only refines unsupported-use reports). */
  readonly knownGroups?: ReadonlySet<string> | undefined;
}

/**
 * Section groups of configuration Wharf does not implement, so that their sections are reported
 * one by one ('system.web/compilation', not 'system.web'). IIS learns these from <configSections>
 * and machine.config; files rarely register the .NET ones themselves.
 */
const FOREIGN_GROUPS: ReadonlySet<string> = new Set([
  'system.web',
  'system.web/caching',
  'system.web.extensions',
  'system.web.extensions/scripting',
  'system.web.extensions/scripting/webServices',
  'system.serviceModel',
  'system.serviceModel.activation',
  'system.net',
  'system.net/mailSettings',
  'system.transactions',
  'system.runtime.serialization',
  'system.xml.serialization',
  'system.webServer/webdav',
  'system.webServer/management',
  'system.ftpServer',
  'system.ftpServer/security',
  'applicationSettings',
  'userSettings',
]);

let nextBlockId = 1;

const ALLOW_DEFINITIONS: readonly AllowDefinition[] = ['MachineOnly', 'MachineToWebRoot', 'MachineToApplication', 'AppHostOnly', 'Everywhere'];

function invalid(file: string, a: XmlAttribute, message: string): ConfigError {
  return new ConfigError('CFG_INVALID_VALUE', message, attributePosition(file, a), HRESULT.invalidData);
}

function enumAttribute<T extends string>(file: string, el: XmlElement, a: XmlAttribute | undefined, values: readonly T[], fallback: T): T {
  if (!a) return fallback;
  const hit = values.find((v) => v.toLowerCase() === a.value.trim().toLowerCase());
  if (hit) return hit;
  throw invalid(file, a, `Invalid value '${a.value}' for attribute '${a.name}' of element '${el.name}': expected one of ${values.join(', ')}`);
}

function boolAttribute(file: string, el: XmlElement, a: XmlAttribute | undefined, fallback: boolean): boolean {
  if (!a) return fallback;
  const lower = a.value.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalid(file, a, `Invalid value '${a.value}' for attribute '${a.name}' of element '${el.name}': expected true or false`);
}

function checkAttributes(file: string, el: XmlElement, allowed: readonly string[]): void {
  for (const a of el.attributes) {
    if (allowed.includes(a.name) || isNamespaceOrTransformAttribute(a.name)) continue;
    throw new ConfigError(
      'CFG_UNKNOWN_ATTRIBUTE',
      `Unrecognized attribute '${a.name}'. Note that attribute names are case-sensitive.`,
      attributePosition(file, a),
      HRESULT.invalidData,
    );
  }
}

function requiredName(file: string, el: XmlElement): string {
  const a = attributeOf(el, 'name');
  if (!a || a.value.trim() === '') {
    throw new ConfigError('CFG_MISSING_ATTRIBUTE', "Missing required attribute 'name'", elementPosition(file, el), HRESULT.invalidData);
  }
  return a.value.trim();
}

function readConfigSections(
  file: string,
  el: XmlElement,
  group: string,
  registrations: Map<string, SectionRegistration>,
  groups: Set<string>,
): void {
  for (const child of el.children) {
    if (child.name === 'sectionGroup') {
      const path = (group ? group + '/' : '') + requiredName(file, child);
      groups.add(path);
      readConfigSections(file, child, path, registrations, groups);
    } else if (child.name === 'section') {
      const path = (group ? group + '/' : '') + requiredName(file, child);
      if (registrations.has(path)) {
        throw new ConfigError(
          'CFG_DUPLICATE_SECTION',
          `Section '${path}' is registered more than once in <configSections>`,
          elementPosition(file, child),
          HRESULT.alreadyExists,
        );
      }
      // Other attributes (type, requirePermission, restartOnExternalChanges…) belong to
      // System.Configuration and are accepted as written.
      registrations.set(path, {
        path,
        overrideModeDefault: enumAttribute(file, child, attributeOf(child, 'overrideModeDefault'), ['Allow', 'Deny'] as const, 'Allow'),
        allowDefinition: enumAttribute(file, child, attributeOf(child, 'allowDefinition'), ALLOW_DEFINITIONS, 'Everywhere'),
        allowLocation: boolAttribute(file, child, attributeOf(child, 'allowLocation'), true),
        position: elementPosition(file, child),
      });
    } else {
      throw unknownElement(file, child, ' in <configSections>');
    }
  }
}

/**
 * Normalises a location path. In a web.config it is relative to the file's folder ('admin',
 * 'Service/administration', 'login.aspx'); in applicationHost.config it starts with the site name.
 */
function locationPath(file: string, a: XmlAttribute | undefined): string {
  if (!a) return '';
  let p = a.value.trim();
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '.' || p === '') return '';
  while (p.endsWith('/')) p = p.slice(0, -1);
  const bad = p.startsWith('/') || p.startsWith('\\') || p.split('/').some((s) => s === '.' || s === '..' || s === '');
  if (bad) {
    throw invalid(file, a, `Invalid value '${a.value}' for attribute 'path' of element 'location': expected a relative path without '.' or '..' segments`);
  }
  return p;
}

interface BlockBuilder {
  readonly path: string;
  readonly isRoot: boolean;
  readonly overrideMode: OverrideMode;
  readonly inheritInChildApplications: boolean;
  readonly position: SourcePosition;
  readonly sections: Map<string, SectionUse>;
}

/** Parses and validates one configuration file. Throws ConfigError (CFG_XML, CFG_UNKNOWN_*, …). */
export function parseConfigFile(file: string, text: string, opts: ParseConfigOptions): ConfigFile {
  const doc = parseXml(file, text);
  const root = doc.root;
  if (root.name !== 'configuration') {
    throw unknownElement(file, root, ': the root element of a configuration file must be <configuration>');
  }
  checkAttributes(file, root, []);

  const registrations = new Map<string, SectionRegistration>();
  const groups = new Set<string>();
  let sawConfigSections = false;
  for (const child of root.children) {
    if (child.name !== 'configSections') continue;
    if (sawConfigSections) {
      throw new ConfigError('CFG_DUPLICATE_SECTION', 'Only one <configSections> element is allowed', elementPosition(file, child), HRESULT.invalidData);
    }
    sawConfigSections = true;
    checkAttributes(file, child, []);
    readConfigSections(file, child, '', registrations, groups);
  }

  const isGroup = (path: string): boolean =>
    SECTION_GROUPS.has(path) || groups.has(path) || FOREIGN_GROUPS.has(path) || opts.knownGroups?.has(path) === true;
  const unsupported: UnsupportedUse[] = [];
  const preserved: { section: string; element: XmlElement }[] = [];
  const reported = new Set<string>();
  // Which sections each level ('' + location paths, lower-cased) already holds: IIS allows a
  // section once per path per file (root content and <location path="."> are the same path).
  const levels = new Map<string, Map<string, SectionUse>>();

  const addSection = (block: BlockBuilder, path: string, schema: SectionSchema, el: XmlElement): void => {
    const levelKey = block.path.toLowerCase();
    let atLevel = levels.get(levelKey);
    if (!atLevel) levels.set(levelKey, (atLevel = new Map()));
    if (atLevel.has(path)) {
      throw new ConfigError(
        'CFG_DUPLICATE_SECTION',
        `There is a duplicate '${path}' section defined`,
        elementPosition(file, el),
        HRESULT.alreadyExists,
      );
    }
    const use: SectionUse = { path, schema, node: parseElementNode(file, el, schema, opts) };
    atLevel.set(path, use);
    block.sections.set(path, use);
  };

  const walk = (block: BlockBuilder, el: XmlElement, parent: string): void => {
    const path = parent ? `${parent}/${el.name}` : el.name;
    const schema = SECTIONS.get(path);
    if (schema) {
      addSection(block, path, schema, el);
      return;
    }
    if (isGroup(path)) {
      // Section groups carry no settings of their own (IIS: "sectionGroup ... has no settings").
      if (SECTION_GROUPS.has(path)) checkAttributes(file, el, []);
      for (const child of el.children) walk(block, child, path);
      return;
    }
    // Not implemented: kept and reported, never fatal (ASP.NET, URL Rewrite, ANCM…).
    preserved.push({ section: path, element: el });
    if (!reported.has(path)) {
      reported.add(path);
      unsupported.push({ section: path, position: elementPosition(file, el) });
    }
  };

  const blocks: LocationBlock[] = [];
  const finish = (b: BlockBuilder): void => {
    blocks.push({ id: nextBlockId++, file, ...b });
  };

  const rootBlock: BlockBuilder = {
    path: '',
    isRoot: true,
    overrideMode: 'Inherit',
    inheritInChildApplications: true,
    position: elementPosition(file, root),
    sections: new Map(),
  };
  const locations: BlockBuilder[] = [];
  for (const child of root.children) {
    if (child.name === 'configSections') continue;
    if (child.name !== 'location') {
      walk(rootBlock, child, '');
      continue;
    }
    checkAttributes(file, child, ['path', 'overrideMode', 'allowOverride', 'inheritInChildApplications']);
    const overrideModeAttr = attributeOf(child, 'overrideMode');
    const allowOverrideAttr = attributeOf(child, 'allowOverride');
    if (overrideModeAttr && allowOverrideAttr) {
      throw invalid(file, allowOverrideAttr, "A <location> cannot specify both 'overrideMode' and the legacy 'allowOverride'");
    }
    let overrideMode = enumAttribute(file, child, overrideModeAttr, ['Inherit', 'Allow', 'Deny'] as const, 'Inherit');
    if (allowOverrideAttr) overrideMode = boolAttribute(file, child, allowOverrideAttr, true) ? 'Allow' : 'Deny';
    const block: BlockBuilder = {
      path: locationPath(file, attributeOf(child, 'path')),
      isRoot: false,
      overrideMode,
      inheritInChildApplications: boolAttribute(file, child, attributeOf(child, 'inheritInChildApplications'), true),
      position: elementPosition(file, child),
      sections: new Map(),
    };
    for (const inner of child.children) {
      if (inner.name === 'location' || inner.name === 'configSections') {
        throw unknownElement(file, inner, ' inside <location>');
      }
      walk(block, inner, '');
    }
    locations.push(block);
  }
  finish(rootBlock);
  for (const b of locations) finish(b);

  return { file, kind: opts.kind, registrations, groups, blocks, unsupported, preserved };
}
