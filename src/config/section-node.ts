/**
 * One file's content for an implemented section, checked against the schema: every attribute
 * known and typed, every element known, collection directives (add/remove/clear) recognised,
 * locking attributes read. IIS rejects a file whose section has an unknown element or attribute
 * or a bad value with 500.19 / 0x8007000d; so do we, positioned at the offending attribute.
 */
import { ConfigError, HRESULT } from '../errors.js';
import type { SourcePosition } from '../errors.js';
import { expandVariables } from './path-map.js';
import type { VariableOptions } from './path-map.js';
import { isNamespaceOrTransformAttribute, LOCK_ATTRIBUTES, parseAttributeValue } from './schema.js';
import type { AttributeSchema, ElementSchema } from './schema.js';
import type { ConfigValue } from './types.js';
import { attributePosition, elementPosition } from './xml-document.js';
import type { XmlAttribute, XmlElement } from './xml-document.js';

export interface AttrValue {
  readonly value: ConfigValue;
  /** The text as written in the file (before %VAR% expansion). */
  readonly raw: string;
  readonly position: SourcePosition;
}

/** lockAttributes / lockAllAttributesExcept / lockElements / lockAllElementsExcept of one element. */
export interface LockSpec {
  /** Names, or '*' for all. */
  readonly attributes: ReadonlySet<string> | undefined;
  readonly allAttributesExcept: ReadonlySet<string> | undefined;
  readonly elements: ReadonlySet<string> | undefined;
  readonly allElementsExcept: ReadonlySet<string> | undefined;
}

export interface ElementNode {
  readonly schema: ElementSchema;
  /** The element name as written ('mimeMap', 'add', 'clientCache'). */
  readonly name: string;
  readonly file: string;
  readonly position: SourcePosition;
  /** By attribute index; undefined where the file does not set the attribute. */
  readonly values: readonly (AttrValue | undefined)[];
  readonly locks: LockSpec | undefined;
  /** lockItem="true" on a collection item. */
  readonly lockItem: boolean;
  /** Child elements (each name at most once), in document order. */
  readonly children: readonly ElementNode[];
  /** Collection directives in document order. */
  readonly directives: readonly Directive[];
}

export type Directive =
  | { readonly kind: 'add'; readonly item: ElementNode }
  /** `key` carries the key attributes of the item to remove (defaults filled in). */
  | { readonly kind: 'remove'; readonly key: ElementNode }
  | { readonly kind: 'clear'; readonly name: string; readonly position: SourcePosition };

const NO_DIRECTIVES: readonly Directive[] = [];
const NO_CHILDREN: readonly ElementNode[] = [];

function unknownAttribute(file: string, a: XmlAttribute): ConfigError {
  return new ConfigError(
    'CFG_UNKNOWN_ATTRIBUTE',
    `Unrecognized attribute '${a.name}'. Note that attribute names are case-sensitive.`,
    attributePosition(file, a),
    HRESULT.invalidData,
  );
}

export function unknownElement(file: string, e: XmlElement, detail = ''): ConfigError {
  return new ConfigError('CFG_UNKNOWN_ELEMENT', `Unrecognized element '${e.name}'${detail}`, elementPosition(file, e), HRESULT.invalidData);
}

function invalidValue(file: string, a: XmlAttribute, message: string): ConfigError {
  return new ConfigError('CFG_INVALID_VALUE', message, attributePosition(file, a), HRESULT.invalidData);
}

function nameList(raw: string): Set<string> {
  const out = new Set<string>();
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (name !== '') out.add(name);
  }
  return out;
}

interface LockTexts {
  attributes?: XmlAttribute;
  allAttributesExcept?: XmlAttribute;
  elements?: XmlAttribute;
  allElementsExcept?: XmlAttribute;
  item?: XmlAttribute;
}

/** Names lockElements may mention: child elements and the collection's add/remove/clear. */
function lockableElementNames(schema: ElementSchema): Set<string> {
  const names = new Set(schema.children.keys());
  const c = schema.collection;
  if (c) {
    for (const n of c.addNames) names.add(n);
    if (c.removeName) names.add(c.removeName);
    if (c.clearName) names.add(c.clearName);
  }
  return names;
}

function readLocks(file: string, xml: XmlElement, schema: ElementSchema, texts: LockTexts): LockSpec | undefined {
  if (!texts.attributes && !texts.allAttributesExcept && !texts.elements && !texts.allElementsExcept) return undefined;
  const checkAttributes = (a: XmlAttribute | undefined): Set<string> | undefined => {
    if (!a) return undefined;
    const names = nameList(a.value);
    for (const n of names) {
      if (n !== '*' && !schema.attributeIndex.has(n)) {
        throw invalidValue(file, a, `Invalid value '${a.value}' for attribute '${a.name}' of element '${xml.name}': '${n}' is not an attribute of '${xml.name}'`);
      }
    }
    return names;
  };
  const lockable = lockableElementNames(schema);
  const checkElements = (a: XmlAttribute | undefined): Set<string> | undefined => {
    if (!a) return undefined;
    const names = nameList(a.value);
    for (const n of names) {
      if (n !== '*' && !lockable.has(n)) {
        throw invalidValue(file, a, `Invalid value '${a.value}' for attribute '${a.name}' of element '${xml.name}': '${n}' is not an element of '${xml.name}'`);
      }
    }
    return names;
  };
  return {
    attributes: checkAttributes(texts.attributes),
    allAttributesExcept: checkAttributes(texts.allAttributesExcept),
    elements: checkElements(texts.elements),
    allElementsExcept: checkElements(texts.allElementsExcept),
  };
}

function parseLockItem(file: string, xml: XmlElement, a: XmlAttribute | undefined): boolean {
  if (!a) return false;
  const lower = a.value.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw invalidValue(file, a, `Invalid value '${a.value}' for attribute 'lockItem' of element '${xml.name}': expected true or false`);
}

function parseValue(file: string, xml: XmlElement, schema: AttributeSchema, a: XmlAttribute, opts: VariableOptions): AttrValue {
  const parsed = parseAttributeValue(schema, xml.name, a.value);
  if (!parsed.ok) throw invalidValue(file, a, parsed.message);
  // IIS expands environment variables of expanded="true" attributes when the value is read.
  const value = schema.expanded && typeof parsed.value === 'string' ? expandVariables(parsed.value, opts) : parsed.value;
  return { value, raw: a.value, position: attributePosition(file, a) };
}

/**
 * Reads the attributes of `xml` against `schema`. `allowed` limits which schema attributes may
 * appear (a <remove> accepts only key attributes).
 */
function readAttributes(
  file: string,
  xml: XmlElement,
  schema: ElementSchema,
  opts: VariableOptions,
  allowed: ReadonlySet<string> | undefined,
  allowUnrecognized: boolean,
): { values: (AttrValue | undefined)[]; locks: LockTexts } {
  const values: (AttrValue | undefined)[] = new Array(schema.attributes.length).fill(undefined);
  const locks: LockTexts = {};
  for (const a of xml.attributes) {
    if (LOCK_ATTRIBUTES.has(a.name)) {
      if (a.name === 'lockAttributes') locks.attributes = a;
      else if (a.name === 'lockAllAttributesExcept') locks.allAttributesExcept = a;
      else if (a.name === 'lockElements') locks.elements = a;
      else if (a.name === 'lockAllElementsExcept') locks.allElementsExcept = a;
      else locks.item = a;
      continue;
    }
    if (isNamespaceOrTransformAttribute(a.name)) continue;
    const attr = schema.attributeIndex.get(a.name);
    if (!attr || (allowed && !allowed.has(a.name))) {
      if (allowUnrecognized && !attr) continue;
      throw unknownAttribute(file, a);
    }
    values[attr.index] = parseValue(file, xml, attr, a, opts);
  }
  return { values, locks };
}

function missingAttribute(file: string, xml: XmlElement, attr: AttributeSchema): ConfigError {
  return new ConfigError('CFG_MISSING_ATTRIBUTE', `Missing required attribute '${attr.name}'`, elementPosition(file, xml), HRESULT.invalidData);
}

/** Validates `xml` as an instance of `schema` (a section, child element or collection item). */
export function parseElementNode(
  file: string,
  xml: XmlElement,
  schema: ElementSchema,
  opts: VariableOptions,
  allowUnrecognizedAttributes = false,
): ElementNode {
  const { values, locks } = readAttributes(file, xml, schema, opts, undefined, allowUnrecognizedAttributes);
  for (const attr of schema.attributes) {
    if (attr.required && values[attr.index] === undefined) throw missingAttribute(file, xml, attr);
  }
  let children: ElementNode[] | undefined;
  let directives: Directive[] | undefined;
  const seen = new Set<string>();
  const c = schema.collection;
  for (const child of xml.children) {
    const childSchema = schema.children.get(child.name);
    if (childSchema) {
      if (seen.has(child.name)) throw unknownElement(file, child, `: it may appear only once inside '${xml.name}'`);
      seen.add(child.name);
      (children ??= []).push(parseElementNode(file, child, childSchema, opts));
      continue;
    }
    if (c && c.addNames.includes(child.name)) {
      const item = parseElementNode(file, child, c.item, opts, c.allowUnrecognizedAttributes);
      (directives ??= []).push({ kind: 'add', item });
      continue;
    }
    if (c && c.removeName === child.name) {
      (directives ??= []).push({ kind: 'remove', key: parseRemove(file, child, c.item, c.keyAttributes, opts) });
      continue;
    }
    if (c && c.clearName === child.name) {
      readAttributes(file, child, c.item, opts, new Set(), false);
      (directives ??= []).push({ kind: 'clear', name: child.name, position: elementPosition(file, child) });
      continue;
    }
    throw unknownElement(file, child);
  }
  return {
    schema,
    name: xml.name,
    file,
    position: elementPosition(file, xml),
    values,
    locks: readLocks(file, xml, schema, locks),
    lockItem: parseLockItem(file, xml, locks.item),
    children: children ?? NO_CHILDREN,
    directives: directives ?? NO_DIRECTIVES,
  };
}

function parseRemove(
  file: string,
  xml: XmlElement,
  item: ElementSchema,
  keys: readonly AttributeSchema[],
  opts: VariableOptions,
): ElementNode {
  const { values } = readAttributes(file, xml, item, opts, new Set(keys.map((k) => k.name)), false);
  for (const k of keys) {
    if (values[k.index] === undefined && k.required) throw missingAttribute(file, xml, k);
  }
  return {
    schema: item,
    name: xml.name,
    file,
    position: elementPosition(file, xml),
    values,
    locks: undefined,
    lockItem: false,
    children: NO_CHILDREN,
    directives: NO_DIRECTIVES,
  };
}

/**
 * Key text of one key set of an item: typed values joined, lower-cased unless the attribute is
 * caseSensitive (IIS compares keys case-insensitively by default). Unset key attributes count as
 * their schema default (an httpErrors error without subStatusCode is -1).
 */
export function keyOf(values: readonly (AttrValue | undefined)[], keySet: readonly AttributeSchema[]): string {
  let key = '';
  for (let i = 0; i < keySet.length; i++) {
    const attr = keySet[i]!;
    const v = values[attr.index]?.value ?? attr.defaultValue;
    const text = String(v);
    key += (i === 0 ? '' : '\u0000') + (attr.type === 'string' && !attr.caseSensitive ? text.toLowerCase() : text);
  }
  return key;
}

/** How a key attribute is shown in messages: as written, else its default. */
export function keyDisplay(values: readonly (AttrValue | undefined)[], attr: AttributeSchema): string {
  const set = values[attr.index];
  if (set) return set.raw;
  return attr.defaultText ?? String(attr.defaultValue);
}
