/**
 * The IIS merge: the contributions to one section along a URL's configuration path (root of
 * applicationHost.config, its <location>s, then web.config files, shallow to deep) folded into one
 * effective element.
 *
 * - Attributes resolve independently: the deepest level that sets one wins, else the collection's
 *   default element (applicationPoolDefaults, siteDefaults…), else the schema default.
 * - Collections: <add> appends (or, for mergeAppend="false" collections such as handlers and
 *   defaultDocument/files, goes before the inherited items); an <add> whose key already exists is
 *   IIS's "Cannot add duplicate collection entry" (0x800700b7); <remove> drops an item (a missing
 *   key is ignored); <clear/> drops everything before it.
 * - Locking: a section whose override mode is Deny may not appear in a web.config; lockAttributes,
 *   lockAllAttributesExcept, lockElements, lockAllElementsExcept and lockItem bind every later
 *   (deeper) contribution. All of these are 500.19 with 0x80070021.
 */
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import type { LocationBlock, SectionUse } from './config-file.js';
import { dirname } from 'node:path';
import { expandVariables, mapExpandedPath } from './path-map.js';
import { enumNameOf, flagNamesOf, SECTIONS } from './schema.js';
import type { AllowDefinition, AttributeSchema, CollectionSchema, ElementSchema, OverrideModeDefault, SectionSchema } from './schema.js';
import { keyDisplay, keyOf } from './section-node.js';
import type { AttrValue, ElementNode, LockSpec } from './section-node.js';
import type { ConfigElement, ConfigValue, PathMapOptions } from './types.js';

/** One file's content for a section at one level, in merge order. */
export interface Contribution {
  readonly use: SectionUse;
  readonly block: LocationBlock;
  readonly fromAppHost: boolean;
  /** The level the content applies to is an application root (MachineToApplication). */
  readonly atApplicationRoot: boolean;
}

/** The <configSections> registration in force for a section (or the schema table's defaults). */
export interface EffectiveRegistration {
  readonly overrideModeDefault: OverrideModeDefault;
  readonly allowDefinition: AllowDefinition;
  readonly allowLocation: boolean;
}

export const SECTION_LOCKED_MESSAGE =
  'This configuration section cannot be used at this path. This happens when the section is locked at a parent level. ' +
  'Locking is either by default (overrideModeDefault="Deny"), or set explicitly by a location tag with overrideMode="Deny" ' +
  'or the legacy allowOverride="false".';

/**
 * What merged values need from their surroundings: the variables used to expand defaults of
 * expanded attributes (IIS expands `%SystemDrive%\inetpub\logs\LogFiles` when read), and a memo of
 * default-only elements.
 */
export class ValueContext {
  readonly variables: Readonly<Record<string, string>> | undefined;
  readonly #expanded = new Map<AttributeSchema, ConfigValue>();
  readonly #defaults = new Map<ElementSchema, MergedElement>();

  constructor(variables?: Readonly<Record<string, string>>) {
    this.variables = variables;
  }

  defaultOf(attr: AttributeSchema): ConfigValue {
    if (!attr.expanded || typeof attr.defaultValue !== 'string') return attr.defaultValue;
    let v = this.#expanded.get(attr);
    if (v === undefined) {
      v = expandVariables(attr.defaultValue, { variables: this.variables });
      this.#expanded.set(attr, v);
    }
    return v;
  }

  /** The element as the schema defaults alone make it (shared, immutable). */
  defaults(schema: ElementSchema): MergedElement {
    let e = this.#defaults.get(schema);
    if (!e) {
      e = finalize(undefined, schema, schema.name, undefined, undefined, this);
      this.#defaults.set(schema, e);
    }
    return e;
  }
}

// ---------------------------------------------------------------------------------------------
// The effective element

const NO_ITEMS: readonly MergedElement[] = [];
const NO_CHILDREN: ReadonlyMap<string, MergedElement> = new Map();

export class MergedElement implements ConfigElement {
  readonly name: string;
  readonly schema: ElementSchema;
  readonly items: readonly MergedElement[];
  readonly source: SourcePosition | undefined;
  readonly #values: readonly ConfigValue[];
  /** Where each attribute was set (undefined = schema default). */
  readonly #sources: readonly (SourcePosition | undefined)[];
  readonly #children: ReadonlyMap<string, MergedElement>;
  readonly #context: ValueContext;

  constructor(
    name: string,
    schema: ElementSchema,
    values: readonly ConfigValue[],
    sources: readonly (SourcePosition | undefined)[],
    children: ReadonlyMap<string, MergedElement>,
    items: readonly MergedElement[],
    source: SourcePosition | undefined,
    context: ValueContext,
  ) {
    this.name = name;
    this.schema = schema;
    this.#values = values;
    this.#sources = sources;
    this.#children = children;
    this.items = items;
    this.source = source;
    this.#context = context;
  }

  #attr(attribute: string): AttributeSchema {
    const a = this.schema.attributeIndex.get(attribute);
    if (!a) throw new TypeError(`'${attribute}' is not an attribute of configuration element '${this.name}'`);
    return a;
  }

  #typed(attribute: string, types: readonly string[]): AttributeSchema {
    const a = this.#attr(attribute);
    if (!types.includes(a.type)) throw new TypeError(`Attribute '${attribute}' of '${this.name}' is of type ${a.type}`);
    return a;
  }

  get(attribute: string): ConfigValue {
    return this.#values[this.#attr(attribute).index]!;
  }

  bool(attribute: string): boolean {
    return this.#values[this.#typed(attribute, ['bool']).index] as boolean;
  }

  num(attribute: string): number {
    return this.#values[this.#typed(attribute, ['uint', 'int', 'int64', 'timeSpan', 'enum', 'flags']).index] as number;
  }

  str(attribute: string): string {
    return this.#values[this.#typed(attribute, ['string']).index] as string;
  }

  enumName(attribute: string): string {
    const a = this.#typed(attribute, ['enum']);
    return enumNameOf(a, this.#values[a.index] as number);
  }

  flagNames(attribute: string): ReadonlySet<string> {
    const a = this.#typed(attribute, ['flags']);
    return flagNamesOf(a, this.#values[a.index] as number);
  }

  isSet(attribute: string): boolean {
    return this.#sources[this.#attr(attribute).index] !== undefined;
  }

  /** Where an attribute's effective value was written (undefined for a schema default). */
  attributeSource(attribute: string): SourcePosition | undefined {
    return this.#sources[this.#attr(attribute).index];
  }

  child(name: string): MergedElement {
    const c = this.#children.get(name);
    if (c) return c;
    const schema = this.schema.children.get(name);
    if (!schema) throw new TypeError(`'${name}' is not a child element of configuration element '${this.name}'`);
    return this.#context.defaults(schema);
  }

  /** The child element if this element's schema has one by that name. */
  childIfDefined(name: string): MergedElement | undefined {
    return this.schema.children.has(name) ? this.child(name) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Building

interface Item {
  readonly keys: readonly string[];
  readonly node: ElementNode;
  readonly builder: Builder;
  readonly lockItem: boolean;
  /** Index of the contribution that added it: locks bind only later contributions. */
  readonly contribution: number;
}

class ItemList {
  readonly items: Item[] = [];
  /** One index per key set: key text → item. */
  readonly #index: Map<string, Item>[];

  constructor(collection: CollectionSchema) {
    this.#index = collection.keySets.map(() => new Map<string, Item>());
  }

  find(set: number, key: string): Item | undefined {
    return this.#index[set]?.get(key);
  }

  insert(item: Item, at: number): void {
    this.items.splice(at, 0, item);
    for (let s = 0; s < this.#index.length; s++) {
      const idx = this.#index[s]!;
      if (!idx.has(item.keys[s]!)) idx.set(item.keys[s]!, item);
    }
  }

  remove(item: Item): number {
    const at = this.items.indexOf(item);
    this.items.splice(at, 1);
    for (let s = 0; s < this.#index.length; s++) {
      const idx = this.#index[s]!;
      if (idx.get(item.keys[s]!) !== item) continue;
      idx.delete(item.keys[s]!);
      // With allowDuplicates another item may carry the same key.
      const next = this.items.find((i) => i.keys[s] === item.keys[s]);
      if (next) idx.set(item.keys[s]!, next);
    }
    return at;
  }

  clear(): void {
    this.items.length = 0;
    for (const idx of this.#index) idx.clear();
  }
}

class Builder {
  readonly schema: ElementSchema;
  readonly name: string;
  readonly values: (AttrValue | undefined)[];
  source: SourcePosition | undefined;
  readonly locks: LockSpec[] = [];
  children: Map<string, Builder> | undefined;
  /** undefined until some level uses the collection (then the default element's items no longer apply). */
  list: ItemList | undefined;

  constructor(schema: ElementSchema, name: string) {
    this.schema = schema;
    this.name = name;
    this.values = new Array(schema.attributes.length).fill(undefined);
  }

  child(name: string): Builder {
    this.children ??= new Map();
    let c = this.children.get(name);
    if (!c) {
      c = new Builder(this.schema.children.get(name)!, name);
      this.children.set(name, c);
    }
    return c;
  }

  attributeLocked(name: string): string | undefined {
    for (const l of this.locks) {
      if (l.attributes && (l.attributes.has('*') || l.attributes.has(name))) return 'lockAttributes';
      if (l.allAttributesExcept && !l.allAttributesExcept.has(name)) return 'lockAllAttributesExcept';
    }
    return undefined;
  }

  elementLocked(name: string): string | undefined {
    for (const l of this.locks) {
      if (l.elements && (l.elements.has('*') || l.elements.has(name))) return 'lockElements';
      if (l.allElementsExcept && !l.allElementsExcept.has(name)) return 'lockAllElementsExcept';
    }
    return undefined;
  }
}

function lockError(message: string, position: SourcePosition | undefined): ConfigError {
  return new ConfigError('CFG_LOCKED', message, position, HRESULT.lockViolation);
}

function describeKey(collection: CollectionSchema, node: ElementNode, set: number): string {
  const attrs = collection.keySets[set]!;
  if (attrs.length === 1) {
    return `unique key attribute '${attrs[0]!.name}' set to '${keyDisplay(node.values, attrs[0]!)}'`;
  }
  const names = attrs.map((a) => a.name).join(', ');
  const values = attrs.map((a) => keyDisplay(node.values, a)).join(', ');
  return `combined key attributes '${names}' respectively set to '${values}'`;
}

function applyNode(b: Builder, node: ElementNode, contribution: number): void {
  const schema = b.schema;
  for (const attr of schema.attributes) {
    const v = node.values[attr.index];
    if (!v) continue;
    const how = b.attributeLocked(attr.name);
    if (how) {
      throw lockError(`Lock violation: attribute '${attr.name}' of element '${node.name}' is locked at a parent level (${how})`, v.position);
    }
    b.values[attr.index] = v;
  }
  b.source = node.position;

  for (const child of node.children) {
    const how = b.elementLocked(child.name);
    if (how) throw lockError(`Lock violation: element '${child.name}' of '${node.name}' is locked at a parent level (${how})`, child.position);
    applyNode(b.child(child.name), child, contribution);
  }

  const collection = schema.collection;
  if (collection && node.directives.length > 0) {
    const list = (b.list ??= new ItemList(collection));
    // mergeAppend="false": this level's adds go before the inherited items, in document order.
    let insertAt = 0;
    for (const d of node.directives) {
      const directiveName = d.kind === 'add' ? d.item.name : d.kind === 'remove' ? d.key.name : d.name;
      const position = d.kind === 'add' ? d.item.position : d.kind === 'remove' ? d.key.position : d.position;
      const how = b.elementLocked(directiveName);
      if (how) throw lockError(`Lock violation: element '${directiveName}' of '${node.name}' is locked at a parent level (${how})`, position);

      if (d.kind === 'clear') {
        const locked = list.items.find((i) => i.lockItem && i.contribution < contribution);
        if (locked) {
          throw lockError(
            `Lock violation: <${d.name}/> cannot remove the collection entry of type '${locked.node.name}' with ${describeKey(collection, locked.node, 0)}, which is locked at a parent level (lockItem)`,
            position,
          );
        }
        list.clear();
        insertAt = 0;
      } else if (d.kind === 'remove') {
        if (collection.keySets.length === 0) continue;
        const item = list.find(0, keyOf(d.key.values, collection.keySets[0]!));
        if (!item) continue; // IIS ignores the removal of a key that is not there.
        if (item.lockItem && item.contribution < contribution) {
          throw lockError(
            `Lock violation: the collection entry of type '${item.node.name}' with ${describeKey(collection, item.node, 0)} is locked at a parent level (lockItem) and cannot be removed`,
            position,
          );
        }
        const at = list.remove(item);
        if (at < insertAt) insertAt--;
      } else {
        const keys = collection.keySets.map((set) => keyOf(d.item.values, set));
        for (let s = 0; s < keys.length; s++) {
          const existing = list.find(s, keys[s]!);
          if (!existing) continue;
          if (existing.lockItem && existing.contribution < contribution) {
            throw lockError(
              `Lock violation: the collection entry of type '${existing.node.name}' with ${describeKey(collection, existing.node, s)} is locked at a parent level (lockItem)`,
              position,
            );
          }
          if (!collection.allowDuplicates) {
            throw new ConfigError(
              'CFG_DUPLICATE_ENTRY',
              `Cannot add duplicate collection entry of type '${d.item.name}' with ${describeKey(collection, d.item, s)}`,
              position,
              HRESULT.alreadyExists,
            );
          }
        }
        const builder = new Builder(collection.item, d.item.name);
        applyNode(builder, d.item, contribution);
        const item: Item = { keys, node: d.item, builder, lockItem: d.item.lockItem, contribution };
        if (collection.mergeAppend) list.insert(item, list.items.length);
        else list.insert(item, insertAt++);
      }
    }
  }

  if (node.locks) b.locks.push(node.locks);
}

type DefaultsScope = ReadonlyMap<string, MergedElement>;

/**
 * Freezes a builder into a MergedElement. `fallback` is the collection default element for an
 * item (or the matching child of it); `scope` carries collection-default elements of ancestors,
 * so a site's <applicationDefaults> falls back to the one under <sites>.
 */
function finalize(
  b: Builder | undefined,
  schema: ElementSchema,
  name: string,
  fallback: MergedElement | undefined,
  scope: DefaultsScope | undefined,
  ctx: ValueContext,
): MergedElement {
  const n = schema.attributes.length;
  const values: ConfigValue[] = new Array(n);
  const sources: (SourcePosition | undefined)[] = new Array(n);
  for (const attr of schema.attributes) {
    const own = b?.values[attr.index];
    if (own) {
      values[attr.index] = own.value;
      sources[attr.index] = own.position;
      continue;
    }
    if (fallback && fallback.schema.attributeIndex.has(attr.name) && fallback.isSet(attr.name)) {
      values[attr.index] = fallback.get(attr.name);
      sources[attr.index] = fallback.attributeSource(attr.name);
      continue;
    }
    values[attr.index] = ctx.defaultOf(attr);
    sources[attr.index] = undefined;
  }

  let children: Map<string, MergedElement> | undefined;
  let innerScope = scope;
  if (schema.children.size > 0) {
    children = new Map();
    // Collection-default children first: they fall back to the ancestors' element of the same
    // name and are themselves the fallback of this element's items and descendants.
    for (const [childName, childSchema] of schema.children) {
      if (!childSchema.isCollectionDefault) continue;
      const c = finalize(b?.children?.get(childName), childSchema, childName, scope?.get(childName), scope, ctx);
      children.set(childName, c);
      const next = new Map(innerScope ?? []);
      next.set(childName, c);
      innerScope = next;
    }
    for (const [childName, childSchema] of schema.children) {
      if (childSchema.isCollectionDefault) continue;
      const childBuilder = b?.children?.get(childName);
      const childFallback = fallback?.childIfDefined(childName);
      const c =
        !childBuilder && !childFallback && innerScope === undefined
          ? ctx.defaults(childSchema)
          : finalize(childBuilder, childSchema, childName, childFallback, innerScope, ctx);
      children.set(childName, c);
    }
  }

  let items: readonly MergedElement[] = NO_ITEMS;
  const collection = schema.collection;
  if (collection) {
    if (b?.list) {
      const itemFallback = collection.defaultElement ? children?.get(collection.defaultElement) : undefined;
      items = b.list.items.map((i) => finalize(i.builder, collection.item, i.node.name, itemFallback, innerScope, ctx));
    } else if (fallback) {
      // An item that never touches a child collection gets the default element's items
      // (e.g. a periodicRestart schedule set in applicationPoolDefaults applies to every pool).
      items = fallback.items;
    }
  }

  return new MergedElement(name, schema, values, sources, children ?? NO_CHILDREN, items, b?.source ?? fallback?.source, ctx);
}

function wrongLevel(message: string, position: SourcePosition): ConfigError {
  return new ConfigError('CFG_WRONG_LEVEL', message, position, HRESULT.invalidData);
}

/**
 * Merges the contributions to one section (already in IIS order) into its effective element.
 * Throws the first ConfigError met, positioned in the file that caused it.
 */
export function mergeSection(
  schema: SectionSchema,
  registration: EffectiveRegistration,
  contributions: readonly Contribution[],
  ctx: ValueContext,
): MergedElement {
  if (contributions.length === 0) return ctx.defaults(schema);
  let mode: OverrideModeDefault = registration.overrideModeDefault;
  const root = new Builder(schema, schema.name);
  for (let i = 0; i < contributions.length; i++) {
    const c = contributions[i]!;
    const node = c.use.node;
    const inLocation = !c.block.isRoot && c.block.path !== '';
    if (inLocation && !registration.allowLocation) {
      throw wrongLevel(`The configuration section '${schema.path}' cannot be used inside a <location> (allowLocation="false")`, node.position);
    }
    if (c.fromAppHost) {
      // applicationHost.config is never locked by its own defaults; but an AppHostOnly section
      // describes the whole server and means nothing under a site path.
      if (inLocation && registration.allowDefinition === 'AppHostOnly') {
        throw wrongLevel(`The configuration section '${schema.path}' can only be set at the server level of applicationHost.config (allowDefinition="AppHostOnly")`, node.position);
      }
    } else {
      if (registration.allowDefinition === 'AppHostOnly' || registration.allowDefinition === 'MachineOnly' || registration.allowDefinition === 'MachineToWebRoot') {
        throw wrongLevel(
          `The configuration section '${schema.path}' can only be set in applicationHost.config (allowDefinition="${registration.allowDefinition}")`,
          node.position,
        );
      }
      if (registration.allowDefinition === 'MachineToApplication' && !c.atApplicationRoot) {
        throw wrongLevel(
          `It is an error to use a section registered as allowDefinition='MachineToApplication' beyond application level ('${schema.path}'). ` +
            'This error can be caused by a virtual directory not being configured as an application.',
          node.position,
        );
      }
      if (mode === 'Deny') throw lockError(SECTION_LOCKED_MESSAGE, node.position);
    }
    applyNode(root, node, i);
    if (c.block.overrideMode !== 'Inherit') mode = c.block.overrideMode;
  }
  return finalize(root, schema, schema.name, undefined, undefined, ctx);
}

/**
 * The Linux path of a path-valued attribute (logFile directory, httpErrors prefixLanguageFilePath,
 * fastCgi fullPath…): expanded when read, then mapped by the path rule, a relative path resolving
 * against the folder of the file that set it (`opts.baseDir` for schema defaults).
 */
export function resolvePathAttribute(
  element: ConfigElement,
  attribute: string,
  opts: PathMapOptions,
): string {
  const source = element instanceof MergedElement ? element.attributeSource(attribute) : undefined;
  const baseDir = source && source.line > 0 ? dirname(source.file) : opts.baseDir;
  return mapExpandedPath(element.str(attribute), { ...opts, baseDir }, source);
}

/** A merged section, else its schema defaults; a path Wharf does not implement is a caller bug. */
export function sectionOrDefaults(sections: ReadonlyMap<string, MergedElement>, context: ValueContext, path: string): MergedElement {
  const merged = sections.get(path);
  if (merged) return merged;
  const schema = SECTIONS.get(path);
  if (!schema) throw new TypeError(`'${path}' is not a configuration section Wharf implements`);
  return context.defaults(schema);
}
