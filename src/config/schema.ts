/**
 * The configuration schema: ONE declarative table (SECTION_TABLE, further down) of every
 * section Wharf implements, transcribed attribute by attribute from IIS 10's IIS_schema.xml
 * (names, types, defaults, keys, enum/flag values, validators exactly as IIS declares them), plus
 * each section's delegation defaults from IIS's shipped <configSections>. The table drives
 * parsing, defaults, validation messages, docs and admin forms; nothing else in Wharf restates a
 * default.
 */
import type { ConfigValue } from './types.js';

export type AttributeType = 'bool' | 'uint' | 'int' | 'int64' | 'string' | 'timeSpan' | 'enum' | 'flags';
/** IIS_schema.xml timeSpanFormat: `[d.]hh:mm:ss` text, or a plain number of seconds/minutes. */
export type TimeSpanFormat = 'string' | 'seconds' | 'minutes';
export type ValidationType =
  | 'integerRange'
  | 'timeSpanRange'
  | 'nonEmptyString'
  | 'requireTrimmedString'
  | 'applicationPoolName'
  | 'siteName'
  | 'applicationPath'
  | 'virtualDirectoryPath';
export type OverrideModeDefault = 'Allow' | 'Deny';
export type AllowDefinition = 'MachineOnly' | 'MachineToWebRoot' | 'MachineToApplication' | 'AppHostOnly' | 'Everywhere';

// ---------------------------------------------------------------------------------------------
// Table vocabulary (mirrors <attribute>, <element>, <collection>, <sectionSchema> of the XML)

export interface AttributeDef {
  readonly kind: 'attribute';
  readonly name: string;
  readonly type: AttributeType;
  /** IIS defaultValue, as text (parsed by the attribute's own type). */
  readonly default?: string;
  readonly required?: boolean;
  /** isUniqueKey ('unique') or isCombinedKey ('combined'). */
  readonly key?: 'unique' | 'combined';
  readonly caseSensitive?: boolean;
  /** %VAR% references are expanded when the value is read. */
  readonly expanded?: boolean;
  readonly encrypted?: boolean;
  readonly timeSpanFormat?: TimeSpanFormat;
  /** validationType and validationParameter. */
  readonly validation?: readonly [ValidationType] | readonly [ValidationType, string];
  /** enum or flag friendly names and their numeric values, in schema order. */
  readonly values?: Readonly<Record<string, number>>;
}

export interface ElementDef {
  readonly kind: 'element';
  readonly name: string;
  readonly isCollectionDefault: boolean;
  readonly body: readonly SchemaDef[];
}

export interface CollectionOptions {
  /** addElement; IIS allows a comma-separated list of names. */
  readonly add: string;
  readonly remove?: string;
  readonly clear?: string;
  /** Sibling element holding defaults for the items (applicationPoolDefaults, siteDefaults…). */
  readonly defaultElement?: string;
  /** false: this level's items go before inherited ones (defaultDocument/files, handlers…). */
  readonly mergeAppend?: boolean;
  readonly allowDuplicates?: boolean;
  readonly allowUnrecognizedAttributes?: boolean;
}

export interface CollectionDef {
  readonly kind: 'collection';
  readonly options: CollectionOptions;
  readonly body: readonly SchemaDef[];
}

export type SchemaDef = AttributeDef | ElementDef | CollectionDef;

export interface SectionDelegation {
  /** Shipped <section overrideModeDefault>: may a web.config use the section by default? */
  readonly overrideModeDefault: OverrideModeDefault;
  readonly allowDefinition: AllowDefinition;
  readonly allowLocation?: boolean;
}

/**
 * A section Wharf parses and validates but does not act on (or only partly): declared on the
 * section's row so that every such setting is reported by one path (config-warnings.ts) at
 * start-up, by `wharf check` and once per worker for a web.config, with its file and line.
 * Only uses that would change what IIS does are reported, never a section left at its defaults:
 * an attribute in `attributes` written with a value other than its IIS default, an entry of a
 * collection in `items` other than the harmless ones listed there, or a <clear>/<remove> of such
 * a collection not followed (in the same element) by a harmless entry.
 */
export interface NotEnforced {
  /**
   * 'security': IIS would refuse requests that Wharf serves (authentication, authorization, IP
   * restrictions); reported first, as warnings. 'feature': a setting without effect (an info line).
   */
  readonly kind: 'security' | 'feature';
  /** What IIS would do that Wharf does not, completing "…is not enforced: ". */
  readonly effect: string;
  /** Attribute paths ('enabled', 'denyByRequestRate/enabled') that matter when set to a non-default value. */
  readonly attributes?: readonly string[];
  /**
   * Collections whose entries matter: '' is the section's own collection, else an element path.
   * Each maps to the entries that change nothing (attribute → value, compared ignoring case; the
   * entry's other attributes must be unset or empty), e.g. authorization's allow-all rule.
   */
  readonly items?: Readonly<Record<string, readonly Readonly<Record<string, string>>[]>>;
}

export interface SectionDef extends SectionDelegation {
  readonly path: string;
  readonly body: readonly SchemaDef[];
  /** Parsed but not (fully) acted on: see NotEnforced (several when their effects differ). */
  readonly notEnforced?: NotEnforced | readonly NotEnforced[];
  /**
   * The schema file a third-party module installs for this section (iisnode_schema.xml), when
   * the section is not IIS's own: the compat test checks only IIS's sections against IIS_schema.xml.
   */
  readonly schemaFile?: string;
}

type AttributeOptions = Omit<AttributeDef, 'kind' | 'name' | 'type'>;

function attr(name: string, type: AttributeType, options: AttributeOptions = {}): AttributeDef {
  return { kind: 'attribute', name, type, ...options };
}
function element(name: string, ...rest: [readonly SchemaDef[]] | [{ isCollectionDefault: boolean }, readonly SchemaDef[]]): ElementDef {
  const [flags, body] = rest.length === 1 ? [{ isCollectionDefault: false }, rest[0]] : rest;
  return { kind: 'element', name, isCollectionDefault: flags.isCollectionDefault, body };
}
function collection(options: CollectionOptions, body: readonly SchemaDef[]): CollectionDef {
  return { kind: 'collection', options, body };
}
function section(path: string, delegation: SectionDelegation & { schemaFile?: string; notEnforced?: NotEnforced | readonly NotEnforced[] }, body: readonly SchemaDef[]): SectionDef {
  return { path, ...delegation, body };
}

// ---------------------------------------------------------------------------------------------
// Compiled form used at run time

export interface Validation {
  readonly type: ValidationType;
  readonly min: number;
  readonly max: number;
  readonly exclude: boolean;
  /** timeSpanRange granularity in seconds. */
  readonly granularity: number;
}

export interface AttributeSchema {
  readonly name: string;
  readonly type: AttributeType;
  /** Position in its element's attribute list (values are stored by index). */
  readonly index: number;
  readonly defaultText: string | undefined;
  /** Typed default (unexpanded: expanded attributes are expanded by the reader). */
  readonly defaultValue: ConfigValue;
  readonly required: boolean;
  readonly key: 'unique' | 'combined' | undefined;
  readonly caseSensitive: boolean;
  readonly expanded: boolean;
  readonly encrypted: boolean;
  readonly timeSpanFormat: TimeSpanFormat;
  readonly validation: Validation | undefined;
  /** enum/flags: lower-case friendly name → value. */
  readonly valuesByName: ReadonlyMap<string, number> | undefined;
  /** enum/flags friendly names in schema order. */
  readonly names: readonly (readonly [name: string, value: number])[];
}

export interface ElementSchema {
  readonly name: string;
  readonly attributes: readonly AttributeSchema[];
  readonly attributeIndex: ReadonlyMap<string, AttributeSchema>;
  readonly children: ReadonlyMap<string, ElementSchema>;
  readonly collection: CollectionSchema | undefined;
  readonly isCollectionDefault: boolean;
}

export interface CollectionSchema {
  readonly addNames: readonly string[];
  readonly removeName: string | undefined;
  readonly clearName: string | undefined;
  readonly defaultElement: string | undefined;
  readonly mergeAppend: boolean;
  readonly allowDuplicates: boolean;
  readonly allowUnrecognizedAttributes: boolean;
  /** The schema of one item; its name is the (first) add element name, e.g. 'mimeMap'. */
  readonly item: ElementSchema;
  /**
   * Key attributes. Each isUniqueKey attribute is a key on its own (a site is unique by name and
   * by id); all isCombinedKey attributes together form one key (httpErrors: statusCode +
   * subStatusCode).
   */
  readonly keySets: readonly (readonly AttributeSchema[])[];
  /** Every attribute allowed on a remove element (all key attributes). */
  readonly keyAttributes: readonly AttributeSchema[];
}

export interface SectionSchema extends ElementSchema {
  readonly path: string;
  readonly overrideModeDefault: OverrideModeDefault;
  readonly allowDefinition: AllowDefinition;
  readonly allowLocation: boolean;
  /** The section's NotEnforced flags (none: everything it sets is acted on). */
  readonly notEnforced: readonly NotEnforced[];
}

// ---------------------------------------------------------------------------------------------
// Value parsing and validation (IIS's rules for each schema type)

export type ParsedValue = { readonly ok: true; readonly value: ConfigValue } | { readonly ok: false; readonly expected: string };

const UINT_MAX = 4294967295;
const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const INTEGER_TEXT = /^[+-]?\d+$/;
// [d.]hh:mm[:ss[.fffffff]]. Hours may exceed 23: IIS's own default periodicRestart time is 29:00:00.
const TIME_SPAN_TEXT = /^(?:(\d+)\.)?(\d+):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/;
const POOL_NAME_FORBIDDEN = /[|<>&\\"/[\]+=;:,?*@]/;
const SITE_NAME_FORBIDDEN = /[/?]/;

function parseInteger(raw: string, min: number, max: number): number | undefined {
  if (!INTEGER_TEXT.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

function parseTimeSpan(raw: string, format: TimeSpanFormat): number | undefined {
  if (format !== 'string') {
    const n = parseInteger(raw, 0, Number.MAX_SAFE_INTEGER);
    if (n === undefined) return undefined;
    return n * (format === 'seconds' ? 1000 : 60000);
  }
  const m = TIME_SPAN_TEXT.exec(raw);
  if (!m) return undefined;
  const days = m[1] ? Number(m[1]) : 0;
  const hours = Number(m[2]);
  const minutes = Number(m[3]);
  const seconds = m[4] ? Number(m[4]) : 0;
  if (minutes > 59 || seconds > 59) return undefined;
  const fraction = m[5] ? Math.round(Number('0.' + m[5]) * 1000) : 0;
  return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000 + fraction;
}

function namesList(attribute: AttributeSchema): string {
  return attribute.names.map(([n]) => n).join(', ');
}

/** Parses `raw` as the attribute's type (no validator). */
export function parseTyped(attribute: AttributeSchema, raw: string): ParsedValue {
  switch (attribute.type) {
    case 'bool': {
      const lower = raw.toLowerCase();
      if (lower === 'true') return { ok: true, value: true };
      if (lower === 'false') return { ok: true, value: false };
      return { ok: false, expected: 'expected true or false' };
    }
    case 'uint': {
      const n = parseInteger(raw, 0, UINT_MAX);
      return n === undefined ? { ok: false, expected: `expected an unsigned integer (0 to ${UINT_MAX})` } : { ok: true, value: n };
    }
    case 'int': {
      const n = parseInteger(raw, INT_MIN, INT_MAX);
      return n === undefined ? { ok: false, expected: `expected an integer (${INT_MIN} to ${INT_MAX})` } : { ok: true, value: n };
    }
    case 'int64': {
      const n = parseInteger(raw, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
      return n === undefined ? { ok: false, expected: 'expected an integer' } : { ok: true, value: n };
    }
    case 'timeSpan': {
      const ms = parseTimeSpan(raw, attribute.timeSpanFormat);
      if (ms !== undefined) return { ok: true, value: ms };
      const expected =
        attribute.timeSpanFormat === 'string'
          ? 'expected a time span [d.]hh:mm:ss'
          : `expected a whole number of ${attribute.timeSpanFormat}`;
      return { ok: false, expected };
    }
    case 'enum': {
      const byName = attribute.valuesByName!.get(raw.trim().toLowerCase());
      if (byName !== undefined) return { ok: true, value: byName };
      const n = parseInteger(raw.trim(), INT_MIN, UINT_MAX);
      if (n !== undefined && attribute.names.some(([, v]) => v === n)) return { ok: true, value: n };
      return { ok: false, expected: `expected one of ${namesList(attribute)}` };
    }
    case 'flags': {
      let all = 0;
      for (const [, v] of attribute.names) all |= v;
      const trimmed = raw.trim();
      const n = parseInteger(trimmed, 0, UINT_MAX);
      if (n !== undefined) {
        if ((n & ~all) === 0) return { ok: true, value: n };
        return { ok: false, expected: `expected a comma-separated list of ${namesList(attribute)}` };
      }
      let value = 0;
      if (trimmed !== '') {
        for (const part of trimmed.split(',')) {
          const v = attribute.valuesByName!.get(part.trim().toLowerCase());
          if (v === undefined) return { ok: false, expected: `expected a comma-separated list of ${namesList(attribute)}` };
          value |= v;
        }
      }
      return { ok: true, value: value >>> 0 };
    }
    case 'string':
      return { ok: true, value: raw };
  }
}

function isValidAppPath(p: string): boolean {
  if (!p.startsWith('/')) return false;
  if (p === '/') return true;
  if (p.endsWith('/')) return false;
  for (const segment of p.slice(1).split('/')) if (segment === '.' || segment === '..') return false;
  return true;
}

/** Applies the attribute's validator (validationType) to a typed value; undefined = valid. */
export function validate(attribute: AttributeSchema, value: ConfigValue): string | undefined {
  const v = attribute.validation;
  if (!v) return undefined;
  switch (v.type) {
    case 'integerRange': {
      const n = value as number;
      const inside = n >= v.min && n <= v.max;
      if (v.exclude ? !inside : inside) return undefined;
      return v.exclude ? `expected an integer outside ${v.min} to ${v.max}` : `expected an integer between ${v.min} and ${v.max}`;
    }
    case 'timeSpanRange': {
      const seconds = (value as number) / 1000;
      const inside = seconds >= v.min && seconds <= v.max;
      const aligned = Number.isInteger(seconds) && seconds % v.granularity === 0;
      if ((v.exclude ? !inside : inside) && aligned) return undefined;
      const step = v.granularity > 1 ? ` in steps of ${v.granularity} seconds` : '';
      return `expected a time span between ${v.min} and ${v.max} seconds${step}`;
    }
    case 'nonEmptyString':
      return value === '' ? 'expected a non-empty string' : undefined;
    case 'requireTrimmedString':
      return value !== String(value).trim() ? 'expected no leading or trailing white space' : undefined;
    case 'applicationPoolName':
      return POOL_NAME_FORBIDDEN.test(String(value))
        ? 'an application pool name cannot contain any of | < > & \\ " / [ ] + = ; : , ? * @'
        : undefined;
    case 'siteName':
      return SITE_NAME_FORBIDDEN.test(String(value)) ? 'a site name cannot contain / or ?' : undefined;
    case 'applicationPath':
    case 'virtualDirectoryPath':
      return isValidAppPath(String(value))
        ? undefined
        : "expected a path that starts with '/', has no trailing '/' and no '.' or '..' segments";
  }
}

/** Parses and validates; the message is IIS-like and names the attribute and element. */
export function parseAttributeValue(
  attribute: AttributeSchema,
  elementName: string,
  raw: string,
): { ok: true; value: ConfigValue } | { ok: false; message: string } {
  const typed = parseTyped(attribute, raw);
  const problem = typed.ok ? validate(attribute, typed.value) : typed.expected;
  if (problem === undefined && typed.ok) return { ok: true, value: typed.value };
  return {
    ok: false,
    message: `Invalid value '${raw}' for attribute '${attribute.name}' of element '${elementName}': ${problem}`,
  };
}

/** Friendly name of an enum value ('' when the value has none). */
export function enumNameOf(attribute: AttributeSchema, value: number): string {
  for (const [n, v] of attribute.names) if (v === value) return n;
  return '';
}

/** Names of the flags set in `value`; a zero value gives the zero-valued flag ('None') if any. */
export function flagNamesOf(attribute: AttributeSchema, value: number): Set<string> {
  const out = new Set<string>();
  for (const [n, v] of attribute.names) {
    if (v === 0 ? value === 0 : (value & v) === v) out.add(n);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Compilation of the table

function compileValidation(def: AttributeDef): Validation | undefined {
  if (!def.validation) return undefined;
  const [type, parameter = ''] = def.validation;
  const parts = parameter.split(',').map((s) => s.trim());
  const exclude = parts.includes('exclude');
  const nums = parts.filter((p) => p !== 'exclude' && p !== '').map(Number);
  return {
    type,
    min: nums[0] ?? 0,
    max: nums[1] ?? 0,
    granularity: type === 'timeSpanRange' ? nums[2] ?? 1 : 1,
    exclude,
  };
}

function implicitDefault(type: AttributeType, names: readonly (readonly [string, number])[]): ConfigValue {
  switch (type) {
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'enum':
      // IIS stores an unset enum as 0; when 0 is not a member, the first member is the closest meaning.
      return names.some(([, v]) => v === 0) ? 0 : names[0]?.[1] ?? 0;
    default:
      return 0;
  }
}

function compileAttribute(def: AttributeDef, index: number, where: string): AttributeSchema {
  const names: (readonly [string, number])[] = def.values ? Object.entries(def.values) : [];
  const partial: AttributeSchema = {
    name: def.name,
    type: def.type,
    index,
    defaultText: def.default,
    defaultValue: implicitDefault(def.type, names),
    required: def.required === true,
    key: def.key,
    caseSensitive: def.caseSensitive === true,
    expanded: def.expanded === true,
    encrypted: def.encrypted === true,
    timeSpanFormat: def.timeSpanFormat ?? 'string',
    validation: compileValidation(def),
    valuesByName: def.values ? new Map(names.map(([n, v]) => [n.toLowerCase(), v])) : undefined,
    names,
  };
  if (def.default === undefined) return partial;
  // Defaults are typed but not validated: IIS ships defaults outside their own validators
  // (site limits maxBandwidth 4294967295 with range "0,1023,exclude" is fine, but e.g. an
  // empty nonEmptyString default is legal too).
  const typed = parseTyped(partial, def.default);
  // Wharf's own schema table is wrong (a bug, found by its unit tests): never a user's condition.
  if (!typed.ok) throw new Error(`schema: default '${def.default}' of ${where}/@${def.name}: ${typed.expected}`);
  return { ...partial, defaultValue: typed.value };
}

function compileElement(name: string, isCollectionDefault: boolean, body: readonly SchemaDef[], where: string): ElementSchema {
  const attributes: AttributeSchema[] = [];
  const children = new Map<string, ElementSchema>();
  let collectionSchema: CollectionSchema | undefined;
  for (const def of body) {
    if (def.kind === 'attribute') {
      attributes.push(compileAttribute(def, attributes.length, where));
    } else if (def.kind === 'element') {
      children.set(def.name, compileElement(def.name, def.isCollectionDefault, def.body, `${where}/${def.name}`));
    } else {
      const addNames = def.options.add.split(',').map((s) => s.trim());
      const item = compileElement(addNames[0]!, false, def.body, `${where}/${addNames[0]}`);
      const unique = item.attributes.filter((a) => a.key === 'unique');
      const combined = item.attributes.filter((a) => a.key === 'combined');
      const keySets: (readonly AttributeSchema[])[] = unique.map((a) => [a]);
      if (combined.length > 0) keySets.push(combined);
      collectionSchema = {
        addNames,
        removeName: def.options.remove,
        clearName: def.options.clear,
        defaultElement: def.options.defaultElement,
        mergeAppend: def.options.mergeAppend !== false,
        allowDuplicates: def.options.allowDuplicates === true,
        allowUnrecognizedAttributes: def.options.allowUnrecognizedAttributes === true,
        item,
        keySets,
        keyAttributes: [...unique, ...combined],
      };
    }
  }
  return {
    name,
    attributes,
    attributeIndex: new Map(attributes.map((a) => [a.name, a])),
    children,
    collection: collectionSchema,
    isCollectionDefault,
  };
}

function compileSection(def: SectionDef): SectionSchema {
  const name = def.path.slice(def.path.lastIndexOf('/') + 1);
  const compiled = compileElement(name, false, def.body, def.path);
  return {
    ...compiled,
    path: def.path,
    overrideModeDefault: def.overrideModeDefault,
    allowDefinition: def.allowDefinition,
    allowLocation: def.allowLocation !== false,
    notEnforced: def.notEnforced === undefined ? [] : 'kind' in def.notEnforced ? [def.notEnforced] : def.notEnforced,
  };
}

/** Universal attributes IIS accepts on any element of any section (granular locking). */
export const LOCK_ATTRIBUTES: ReadonlySet<string> = new Set([
  'lockAttributes',
  'lockAllAttributesExcept',
  'lockElements',
  'lockAllElementsExcept',
  'lockItem',
]);

/** xmlns declarations and XDT transform attributes (xdt:Transform, xdt:Locator) are allowed anywhere. */
export function isNamespaceOrTransformAttribute(name: string): boolean {
  return name === 'xmlns' || name.startsWith('xmlns:') || name.startsWith('xdt:');
}

// ---------------------------------------------------------------------------------------------
// THE TABLE. Transcribed from ../shared/compat/iis10-IIS_schema.xml (IIS 10); delegation defaults
// (overrideModeDefault, allowDefinition) from the <configSections> IIS 10 ships. Keep the order
// and content of each section identical to the XML so the two can be compared side by side.

/** An application pool's settings: shared by <add> and <applicationPoolDefaults> (IIS repeats them). */
const APP_POOL_BODY: readonly SchemaDef[] = [
  attr('queueLength', 'uint', { default: '1000', validation: ['integerRange', '10,65535'] }),
  attr('autoStart', 'bool', { default: 'true' }),
  attr('enable32BitAppOnWin64', 'bool', { default: 'false' }),
  attr('managedRuntimeVersion', 'string', { default: '' }),
  attr('managedRuntimeLoader', 'string', { default: 'webengine4.dll' }),
  attr('enableConfigurationOverride', 'bool', { default: 'true' }),
  attr('managedPipelineMode', 'enum', { default: 'Integrated', values: { Integrated: 0, Classic: 1 } }),
  attr('CLRConfigFile', 'string', { default: '', expanded: true }),
  attr('passAnonymousToken', 'bool', { default: 'true' }),
  attr('startMode', 'enum', { default: 'OnDemand', values: { OnDemand: 0, AlwaysRunning: 1 } }),
  element('processModel', [
    attr('identityType', 'enum', { default: 'ApplicationPoolIdentity', values: { LocalSystem: 0, LocalService: 1, NetworkService: 2, SpecificUser: 3, ApplicationPoolIdentity: 4 } }),
    attr('userName', 'string'),
    attr('password', 'string', { default: '[enc:IISWASOnlyAesProvider::enc]', caseSensitive: true, encrypted: true }),
    attr('loadUserProfile', 'bool', { default: 'false' }),
    attr('setProfileEnvironment', 'bool', { default: 'true' }),
    attr('logonType', 'enum', { default: 'LogonBatch', values: { LogonBatch: 0, LogonService: 1 } }),
    attr('manualGroupMembership', 'bool', { default: 'false' }),
    attr('idleTimeout', 'timeSpan', { default: '00:20:00', validation: ['timeSpanRange', '0,2592000,60'] }),
    attr('idleTimeoutAction', 'enum', { default: 'Terminate', values: { Terminate: 0, Suspend: 1 } }),
    attr('maxProcesses', 'uint', { default: '1', validation: ['integerRange', '0,2147483647'] }),
    attr('shutdownTimeLimit', 'timeSpan', { default: '00:01:30', validation: ['timeSpanRange', '1,4294967,1'] }),
    attr('startupTimeLimit', 'timeSpan', { default: '00:01:30', validation: ['timeSpanRange', '1,4294967,1'] }),
    attr('pingingEnabled', 'bool', { default: 'true' }),
    attr('pingInterval', 'timeSpan', { default: '00:00:30', validation: ['timeSpanRange', '1,4294967,1'] }),
    attr('pingResponseTime', 'timeSpan', { default: '00:01:30', validation: ['timeSpanRange', '1,4294967,1'] }),
    attr('logEventOnProcessModel', 'flags', { default: 'IdleTimeout', values: { IdleTimeout: 1 } }),
  ]),
  element('recycling', [
    attr('disallowOverlappingRotation', 'bool', { default: 'false' }),
    attr('disallowRotationOnConfigChange', 'bool', { default: 'false' }),
    attr('logEventOnRecycle', 'flags', { default: 'Time, Requests, Schedule, Memory, IsapiUnhealthy, OnDemand, ConfigChange, PrivateMemory', values: { Time: 1, Requests: 2, Schedule: 4, Memory: 8, IsapiUnhealthy: 16, OnDemand: 32, ConfigChange: 64, PrivateMemory: 128 } }),
    element('periodicRestart', [
      attr('memory', 'uint', { default: '0' }),
      attr('privateMemory', 'uint', { default: '0' }),
      attr('requests', 'uint', { default: '0' }),
      attr('time', 'timeSpan', { default: '29:00:00', validation: ['timeSpanRange', '0,25920000,60'] }),
      element('schedule', [
        collection({ add: 'add', clear: 'clear' }, [
          attr('value', 'timeSpan', { required: true, key: 'unique', validation: ['timeSpanRange', '0,86399,60'] }),
        ]),
      ]),
    ]),
  ]),
  element('failure', [
    attr('loadBalancerCapabilities', 'enum', { default: 'HttpLevel', values: { TcpLevel: 1, HttpLevel: 2 } }),
    attr('orphanWorkerProcess', 'bool', { default: 'false' }),
    attr('orphanActionExe', 'string', { expanded: true }),
    attr('orphanActionParams', 'string', { expanded: true }),
    attr('rapidFailProtection', 'bool', { default: 'true' }),
    attr('rapidFailProtectionInterval', 'timeSpan', { default: '00:05:00', validation: ['timeSpanRange', '60,8640000,60'] }),
    attr('rapidFailProtectionMaxCrashes', 'uint', { default: '5', validation: ['integerRange', '1,2147483647'] }),
    attr('autoShutdownExe', 'string', { expanded: true }),
    attr('autoShutdownParams', 'string', { expanded: true }),
  ]),
  element('cpu', [
    attr('limit', 'uint', { default: '0', validation: ['integerRange', '0,100000'] }),
    attr('action', 'enum', { default: 'NoAction', values: { NoAction: 0, KillW3wp: 1, Throttle: 2, ThrottleUnderLoad: 3 } }),
    attr('resetInterval', 'timeSpan', { default: '00:05:00', validation: ['timeSpanRange', '0,86400,60'] }),
    attr('smpAffinitized', 'bool', { default: 'false' }),
    attr('smpProcessorAffinityMask', 'uint', { default: '4294967295' }),
    attr('smpProcessorAffinityMask2', 'uint', { default: '4294967295' }),
    attr('processorGroup', 'int', { default: '0', validation: ['integerRange', '0,2147483647'] }),
    attr('numaNodeAssignment', 'enum', { default: 'MostAvailableMemory', values: { MostAvailableMemory: 0, WindowsScheduling: 1 } }),
    attr('numaNodeAffinityMode', 'enum', { default: 'Soft', values: { Soft: 0, Hard: 1 } }),
  ]),
  element('environmentVariables', [
    collection({ add: 'add', remove: 'remove' }, [
      attr('name', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      attr('value', 'string', { required: true, validation: ['nonEmptyString'] }),
    ]),
  ]),
];

/**
 * One URL Rewrite rule, as rewrite_schema.xml declares it for `globalRules` and `rules`: the two
 * differ only in their condition keys, `logRewrittenUrl` and statusCode's default.
 */
function rewriteRuleBody(kind: 'global' | 'distributed'): readonly SchemaDef[] {
  const global = kind === 'global';
  const ck = global ? ({ key: 'combined' } as const) : {};
  const syntax = { ECMAScript: 0, Wildcard: 1, ExactMatch: 2 };
  return [
    attr('name', 'string', { required: true, key: 'unique' }),
    attr('enabled', 'bool', { default: 'true' }),
    attr('patternSyntax', 'enum', { default: 'ECMAScript', values: syntax }),
    attr('stopProcessing', 'bool', { default: 'false' }),
    element('match', [
      attr('url', 'string', { validation: ['nonEmptyString'] }),
      attr('ignoreCase', 'bool', { default: 'true' }),
      attr('negate', 'bool', { default: 'false' }),
    ]),
    element('conditions', [
      attr('logicalGrouping', 'enum', { default: 'MatchAll', values: { MatchAll: 0, MatchAny: 1 } }),
      attr('trackAllCaptures', 'bool', { default: 'false' }),
      collection({ add: 'add' }, [
        attr('input', 'string', { ...ck }),
        attr('matchType', 'enum', { default: 'Pattern', values: { Pattern: 0, IsFile: 1, IsDirectory: 2 }, ...ck }),
        attr('pattern', 'string', { ...ck }),
        attr('ignoreCase', 'bool', { default: 'true', ...ck }),
        attr('negate', 'bool', { default: 'false', ...ck }),
      ]),
    ]),
    element('serverVariables', [
      collection({ add: 'set' }, [
        attr('name', 'string', { required: true, key: 'unique', validation: ['requireTrimmedString'] }),
        attr('value', 'string'),
        attr('replace', 'bool', { default: 'true' }),
      ]),
    ]),
    element('action', [
      attr('type', 'enum', { default: 'None', values: { None: 0, Rewrite: 1, Redirect: 2, CustomResponse: 3, AbortRequest: 4 } }),
      attr('url', 'string', { validation: ['requireTrimmedString'] }),
      attr('appendQueryString', 'bool', { default: 'true' }),
      ...(global ? [] : [attr('logRewrittenUrl', 'bool', { default: 'false' })]),
      attr('redirectType', 'enum', { default: 'Permanent', values: { Permanent: 301, Found: 302, SeeOther: 303, Temporary: 307 } }),
      attr('statusCode', 'uint', { validation: ['integerRange', '300,307,exclude'], ...(global ? { default: '0' } : {}) }),
      attr('subStatusCode', 'uint', { validation: ['integerRange', '0,999'], default: '0' }),
      attr('statusReason', 'string'),
      attr('statusDescription', 'string'),
    ]),
  ];
}

// ---------------------------------------------------------------------------------------------
// What Wharf parses but does not enforce (NotEnforced). Security settings first: a rule IIS would
// enforce and Wharf does not must never be silent (docs/configuration.md says so on its first screen).

const NOT_ENFORCED = {
  // The account is looked up by name: PAM has no logon types, and Wharf never logs it on with a password.
  anonymousAuthentication: {
    kind: 'feature',
    attributes: ['password', 'logonMethod'],
    effect: 'the named account is looked up without logging on (Linux has no logon types)',
  },
  basicAuthentication: { kind: 'feature', attributes: ['logonMethod'], effect: 'PAM has no logon types: every logon is checked the same way' },
  windowsAuthentication: [
    {
      kind: 'security',
      attributes: ['extendedProtection/tokenChecking'],
      effect: 'Wharf checks no channel binding token (Extended Protection): Negotiate clients are accepted without one',
    },
    {
      kind: 'feature',
      items: { providers: [{ value: 'Negotiate' }, { value: 'Negotiate:Kerberos' }] },
      effect: 'only Negotiate (Kerberos) is offered: NTLM has no acceptor on Linux, and a client that can only do NTLM gets 401',
    },
    {
      kind: 'feature',
      attributes: ['authPersistNonNTLM'],
      effect: 'each request is authenticated on its own (Wharf keeps no logon per connection): clients send their Negotiate token with every request',
    },
  ],
  clientCertificateMappingAuthentication: {
    kind: 'security',
    attributes: ['enabled'],
    effect: 'certificates are not mapped through Active Directory (there is none on Linux): use iisClientCertificateMappingAuthentication; every request is served as if this were off',
  },
  iisClientCertificateMappingAuthentication: {
    kind: 'feature',
    attributes: ['defaultLogonDomain', 'logonMethod'],
    effect: 'Linux accounts have no logon domain or logon type: a mapping names the account itself',
  },
  // Linux has no consoles. (createProcessAsUser's default cannot be honoured either: CgiModule says so
  // at run time, once, when a request runs as another Linux account than the pool's.)
  cgi: {
    kind: 'feature',
    attributes: ['createCGIWithNewConsole'],
    effect: 'Linux has no consoles: CGI programs run without one, their stderr going to the pool log',
  },
  httpRedirect: { kind: 'feature', attributes: ['enabled'], effect: 'no redirect is sent from this section' },
  webSocket: { kind: 'feature', attributes: ['enabled'], effect: 'WebSocket upgrades are still accepted' },
  applicationInitialization: {
    kind: 'feature',
    attributes: ['remapManagedRequestsTo', 'skipManagedModules', 'doAppInitAfterRestart'],
    effect: 'these attributes have no effect (initializationPage warm-up is honoured)',
  },
} as const satisfies Record<string, NotEnforced | readonly NotEnforced[]>;

export const SECTION_TABLE: readonly SectionDef[] = [
  section('system.applicationHost/applicationPools', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'add', defaultElement: 'applicationPoolDefaults' }, [
      attr('name', 'string', { required: true, key: 'unique', validation: ['applicationPoolName'] }),
      ...APP_POOL_BODY,
    ]),
    element('applicationPoolDefaults', { isCollectionDefault: true }, [
      attr('name', 'string', { validation: ['applicationPoolName'] }),
      ...APP_POOL_BODY,
    ]),
  ]),
  section('system.applicationHost/configHistory', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    attr('enabled', 'bool', { default: 'true' }),
    attr('path', 'string', { default: '%SYSTEMDRIVE%\\inetpub\\history' }),
    attr('maxHistories', 'uint', { default: '10', validation: ['integerRange', '1,4294967295'] }),
    attr('period', 'timeSpan', { default: '00:02:00', validation: ['timeSpanRange', '10,2147483647,1'] }),
  ]),
  section('system.applicationHost/customMetadata', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'key' }, [
      attr('path', 'string', { key: 'unique' }),
      collection({ add: 'property' }, [
        attr('id', 'uint', { key: 'unique' }),
        attr('dataType', 'enum', { required: true, values: { DWord: 1, String: 2, Binary: 3, ExpandSZ: 4, MultiSZ: 5 } }),
        attr('userType', 'uint', { default: '1' }),
        attr('attributes', 'flags', { default: 'Inherit', values: { None: 0, Inherit: 1, PartialPath: 2, Secure: 4, Reference: 8, Volatile: 16, IsInherited: 32, InsertPath: 64, LocalMachineOnly: 128, NonSecureOnly: 256 } }),
        attr('value', 'string', { caseSensitive: true }),
      ]),
    ]),
  ]),
  section('system.applicationHost/listenerAdapters', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'add' }, [
      attr('name', 'string', { required: true, key: 'unique' }),
      attr('identity', 'string'),
      attr('protocolManagerDll', 'string'),
      attr('protocolManagerDllInitFunction', 'string', { caseSensitive: true }),
    ]),
  ]),
  section('system.applicationHost/log', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    attr('logInUTF8', 'bool', { default: 'true' }),
    attr('centralLogFileMode', 'enum', { default: 'Site', values: { Site: 0, CentralBinary: 1, CentralW3C: 2 } }),
    element('centralBinaryLogFile', [
      attr('enabled', 'bool', { default: 'false' }),
      attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\logs\\LogFiles', expanded: true }),
      attr('period', 'enum', { default: 'Daily', values: { Hourly: 4, Daily: 1, Weekly: 2, Monthly: 3, MaxSize: 0 } }),
      attr('truncateSize', 'int64', { default: '20971520', validation: ['integerRange', '1048576,4294967295'] }),
      attr('localTimeRollover', 'bool', { default: 'false' }),
    ]),
    element('centralW3CLogFile', [
      attr('enabled', 'bool', { default: 'true' }),
      attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\logs\\LogFiles', expanded: true, validation: ['nonEmptyString'] }),
      attr('period', 'enum', { default: 'Daily', values: { Hourly: 4, Daily: 1, Weekly: 2, Monthly: 3, MaxSize: 0 } }),
      attr('truncateSize', 'int64', { default: '20971520', validation: ['integerRange', '1048576,4294967295'] }),
      attr('localTimeRollover', 'bool', { default: 'false' }),
      attr('logExtFileFlags', 'flags', { default: 'Date, Time, ClientIP, UserName, SiteName, ServerIP, Method, UriStem, UriQuery, TimeTaken, HttpStatus, Win32Status, ServerPort, UserAgent, HttpSubStatus, Referer', values: { Date: 1, Time: 2, ClientIP: 4, UserName: 8, SiteName: 16, ComputerName: 32, ServerIP: 64, Method: 128, UriStem: 256, UriQuery: 512, HttpStatus: 1024, Win32Status: 2048, BytesSent: 4096, BytesRecv: 8192, TimeTaken: 16384, ServerPort: 32768, UserAgent: 65536, Cookie: 131072, Referer: 262144, ProtocolVersion: 524288, Host: 1048576, HttpSubStatus: 2097152 } }),
    ]),
  ]),
  section('system.applicationHost/serviceAutoStartProviders', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('name', 'string', { key: 'unique', caseSensitive: true, validation: ['nonEmptyString'] }),
      attr('type', 'string', { caseSensitive: true }),
    ]),
  ]),
  section('system.applicationHost/sites', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'site', defaultElement: 'siteDefaults' }, [
      attr('name', 'string', { required: true, key: 'unique', validation: ['siteName'] }),
      attr('id', 'uint', { required: true, key: 'unique' }),
      attr('serverAutoStart', 'bool', { default: 'true' }),
      element('bindings', [
        collection({ add: 'binding', clear: 'clear' }, [
          attr('protocol', 'string', { required: true, key: 'combined', validation: ['nonEmptyString'] }),
          attr('bindingInformation', 'string', { required: true, key: 'combined', validation: ['nonEmptyString'] }),
          attr('sslFlags', 'uint', { default: '0' }),
        ]),
      ]),
      element('limits', [
        attr('maxBandwidth', 'uint', { default: '4294967295', validation: ['integerRange', '0,1023,exclude'] }),
        attr('maxConnections', 'uint', { default: '4294967295' }),
        attr('connectionTimeout', 'timeSpan', { default: '00:02:00', validation: ['timeSpanRange', '0,65535,1'] }),
        attr('maxUrlSegments', 'uint', { default: '32', validation: ['integerRange', '0,16383'] }),
      ]),
      element('logFile', [
        attr('logExtFileFlags', 'flags', { default: 'Date, Time, ClientIP, UserName, ServerIP, Method, UriStem, UriQuery, TimeTaken, HttpStatus, Win32Status, ServerPort, UserAgent, HttpSubStatus, Referer', values: { Date: 1, Time: 2, ClientIP: 4, UserName: 8, SiteName: 16, ComputerName: 32, ServerIP: 64, Method: 128, UriStem: 256, UriQuery: 512, HttpStatus: 1024, Win32Status: 2048, BytesSent: 4096, BytesRecv: 8192, TimeTaken: 16384, ServerPort: 32768, UserAgent: 65536, Cookie: 131072, Referer: 262144, ProtocolVersion: 524288, Host: 1048576, HttpSubStatus: 2097152 } }),
        attr('customLogPluginClsid', 'string', { default: '' }),
        attr('logFormat', 'enum', { default: 'W3C', values: { IIS: 0, NCSA: 1, W3C: 2, Custom: 3 } }),
        attr('logTargetW3C', 'flags', { default: 'File', values: { File: 1, ETW: 2 } }),
        attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\logs\\LogFiles', expanded: true, validation: ['nonEmptyString'] }),
        attr('period', 'enum', { default: 'Daily', values: { MaxSize: 0, Daily: 1, Weekly: 2, Monthly: 3, Hourly: 4 } }),
        attr('truncateSize', 'int64', { default: '20971520', validation: ['integerRange', '1048576,4294967295'] }),
        attr('localTimeRollover', 'bool', { default: 'false' }),
        attr('enabled', 'bool', { default: 'true' }),
        attr('logSiteId', 'bool', { default: 'true' }),
        attr('flushByEntryCountW3CLog', 'uint', { default: '0' }),
        attr('maxLogLineLength', 'uint', { default: '65536', validation: ['integerRange', '2,65536'] }),
        element('customFields', [
          attr('maxCustomFieldLength', 'uint', { default: '4096', validation: ['integerRange', '2,65536'] }),
          collection({ add: 'add', clear: 'clear' }, [
            attr('logFieldName', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
            attr('sourceName', 'string', { required: true, validation: ['nonEmptyString'] }),
            attr('sourceType', 'enum', { required: true, values: { RequestHeader: 0, ResponseHeader: 1, ServerVariable: 2 } }),
          ]),
        ]),
      ]),
      // IIS 10 version 1709+ (not in the shipped IIS_schema.xml of 10.0): HTTP Strict Transport Security.
      element('hsts', [
        attr('enabled', 'bool', { default: 'false' }),
        attr('max-age', 'uint', { default: '0' }),
        attr('includeSubDomains', 'bool', { default: 'false' }),
        attr('preload', 'bool', { default: 'false' }),
        attr('redirectHttpToHttps', 'bool', { default: 'false' }),
      ]),
      element('traceFailedRequestsLogging', [
        attr('enabled', 'bool', { default: 'false' }),
        attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\logs\\FailedReqLogFiles', expanded: true }),
        attr('maxLogFiles', 'uint', { default: '50', validation: ['integerRange', '1,10000'] }),
        attr('maxLogFileSizeKB', 'uint', { default: '1024', validation: ['integerRange', '0,1048576'] }),
        attr('customActionsEnabled', 'bool', { default: 'false' }),
      ]),
      collection({ add: 'application', defaultElement: 'applicationDefaults' }, [
        attr('path', 'string', { required: true, key: 'unique', validation: ['applicationPath'] }),
        attr('applicationPool', 'string', { validation: ['applicationPoolName'] }),
        attr('enabledProtocols', 'string', { default: 'http' }),
        attr('serviceAutoStartEnabled', 'bool', { default: 'false' }),
        attr('serviceAutoStartProvider', 'string'),
        attr('preloadEnabled', 'bool', { default: 'false' }),
        collection({ add: 'virtualDirectory', defaultElement: 'virtualDirectoryDefaults' }, [
          attr('path', 'string', { key: 'unique', validation: ['virtualDirectoryPath'] }),
          attr('physicalPath', 'string', { expanded: true }),
          attr('userName', 'string'),
          attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
          attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
          attr('allowSubDirConfig', 'bool', { default: 'true' }),
        ]),
        element('virtualDirectoryDefaults', { isCollectionDefault: true }, [
          attr('path', 'string', { validation: ['virtualDirectoryPath'] }),
          attr('physicalPath', 'string', { expanded: true }),
          attr('userName', 'string'),
          attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
          attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
          attr('allowSubDirConfig', 'bool', { default: 'true' }),
        ]),
      ]),
      element('applicationDefaults', { isCollectionDefault: true }, [
        attr('path', 'string', { validation: ['applicationPath'] }),
        attr('applicationPool', 'string', { validation: ['applicationPoolName'] }),
        attr('enabledProtocols', 'string', { default: 'http' }),
        attr('serviceAutoStartEnabled', 'bool', { default: 'false' }),
        attr('serviceAutoStartProvider', 'string'),
        attr('preloadEnabled', 'bool', { default: 'false' }),
      ]),
      element('virtualDirectoryDefaults', { isCollectionDefault: true }, [
        attr('path', 'string', { validation: ['virtualDirectoryPath'] }),
        attr('physicalPath', 'string', { expanded: true }),
        attr('userName', 'string'),
        attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
        attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
        attr('allowSubDirConfig', 'bool', { default: 'true' }),
      ]),
    ]),
    element('siteDefaults', { isCollectionDefault: true }, [
      attr('name', 'string', { validation: ['siteName'] }),
      attr('id', 'uint'),
      attr('serverAutoStart', 'bool', { default: 'true' }),
      element('bindings', [
        collection({ add: 'binding', clear: 'clear' }, [
          attr('protocol', 'string', { required: true, key: 'combined', validation: ['nonEmptyString'] }),
          attr('bindingInformation', 'string', { required: true, key: 'combined', validation: ['nonEmptyString'] }),
          attr('sslFlags', 'uint', { default: '0' }),
        ]),
      ]),
      element('limits', [
        attr('maxBandwidth', 'uint', { default: '4294967295', validation: ['integerRange', '0,1023,exclude'] }),
        attr('maxConnections', 'uint', { default: '4294967295' }),
        attr('connectionTimeout', 'timeSpan', { default: '00:02:00', validation: ['timeSpanRange', '0,65535,1'] }),
        attr('maxUrlSegments', 'uint', { default: '32', validation: ['integerRange', '0,16383'] }),
      ]),
      element('logFile', [
        attr('logExtFileFlags', 'flags', { default: 'Date, Time, ClientIP, UserName, ServerIP, Method, UriStem, UriQuery, TimeTaken, HttpStatus, Win32Status, ServerPort, UserAgent, HttpSubStatus, Referer', values: { Date: 1, Time: 2, ClientIP: 4, UserName: 8, SiteName: 16, ComputerName: 32, ServerIP: 64, Method: 128, UriStem: 256, UriQuery: 512, HttpStatus: 1024, Win32Status: 2048, BytesSent: 4096, BytesRecv: 8192, TimeTaken: 16384, ServerPort: 32768, UserAgent: 65536, Cookie: 131072, Referer: 262144, ProtocolVersion: 524288, Host: 1048576, HttpSubStatus: 2097152 } }),
        attr('customLogPluginClsid', 'string', { default: '' }),
        attr('logFormat', 'enum', { default: 'W3C', values: { IIS: 0, NCSA: 1, W3C: 2, Custom: 3 } }),
        attr('logTargetW3C', 'flags', { default: 'File', values: { File: 1, ETW: 2 } }),
        attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\logs\\LogFiles', expanded: true }),
        attr('period', 'enum', { default: 'Daily', values: { MaxSize: 0, Daily: 1, Weekly: 2, Monthly: 3, Hourly: 4 } }),
        attr('truncateSize', 'int64', { default: '20971520', validation: ['integerRange', '1048576,4294967295'] }),
        attr('localTimeRollover', 'bool', { default: 'false' }),
        attr('enabled', 'bool', { default: 'true' }),
        attr('logSiteId', 'bool', { default: 'true' }),
        attr('flushByEntryCountW3CLog', 'uint', { default: '0' }),
        attr('maxLogLineLength', 'uint', { default: '65536', validation: ['integerRange', '2,65536'] }),
        element('customFields', [
          attr('maxCustomFieldLength', 'uint', { default: '4096', validation: ['integerRange', '2,65536'] }),
          collection({ add: 'add', clear: 'clear' }, [
            attr('logFieldName', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
            attr('sourceName', 'string', { required: true, validation: ['nonEmptyString'] }),
            attr('sourceType', 'enum', { required: true, values: { RequestHeader: 0, ResponseHeader: 1, ServerVariable: 2 } }),
          ]),
        ]),
      ]),
      // IIS 10 version 1709+ (not in the shipped IIS_schema.xml of 10.0): HTTP Strict Transport Security.
      element('hsts', [
        attr('enabled', 'bool', { default: 'false' }),
        attr('max-age', 'uint', { default: '0' }),
        attr('includeSubDomains', 'bool', { default: 'false' }),
        attr('preload', 'bool', { default: 'false' }),
        attr('redirectHttpToHttps', 'bool', { default: 'false' }),
      ]),
      element('traceFailedRequestsLogging', [
        attr('enabled', 'bool', { default: 'false' }),
        attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\FailedReqLogFiles', expanded: true }),
        attr('maxLogFiles', 'uint', { default: '50', validation: ['integerRange', '1,10000'] }),
        attr('maxLogFileSizeKB', 'uint', { default: '1024', validation: ['integerRange', '0,1048576'] }),
        attr('customActionsEnabled', 'bool', { default: 'false' }),
      ]),
    ]),
    element('applicationDefaults', { isCollectionDefault: true }, [
      attr('path', 'string', { validation: ['applicationPath'] }),
      attr('applicationPool', 'string', { validation: ['applicationPoolName'] }),
      attr('enabledProtocols', 'string', { default: 'http' }),
    ]),
    element('virtualDirectoryDefaults', { isCollectionDefault: true }, [
      attr('path', 'string', { validation: ['virtualDirectoryPath'] }),
      attr('physicalPath', 'string', { expanded: true }),
      attr('userName', 'string'),
      attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
      attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
      attr('allowSubDirConfig', 'bool', { default: 'true' }),
    ]),
  ]),
  section('system.applicationHost/webLimits', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    attr('maxGlobalBandwidth', 'uint', { default: '4294967295', validation: ['integerRange', '0,1023,exclude'] }),
    attr('connectionTimeout', 'timeSpan', { default: '00:02:00' }),
    attr('demandStartThreshold', 'uint', { default: '2147483647', validation: ['integerRange', '10,2147483647'] }),
    attr('dynamicIdleThreshold', 'uint', { default: '0', validation: ['integerRange', '0,10000'] }),
    attr('headerWaitTimeout', 'timeSpan', { default: '00:00:00', validation: ['timeSpanRange', '0,65535,1'] }),
    attr('minBytesPerSecond', 'uint', { default: '240' }),
    attr('dynamicRegistrationThreshold', 'uint', { default: '100', validation: ['integerRange', '0,4294967295'] }),
  ]),
  section('system.webServer/caching', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('enabled', 'bool', { default: 'true' }),
    attr('enableKernelCache', 'bool', { default: 'true' }),
    attr('maxCacheSize', 'uint', { default: '0' }),
    attr('maxResponseSize', 'uint', { default: '262144' }),
    element('profiles', [
      collection({ add: 'add', remove: 'remove', clear: 'clear', mergeAppend: false }, [
        attr('extension', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
        attr('policy', 'enum', { default: 'DontCache', values: { DontCache: 0, CacheUntilChange: 1, CacheForTimePeriod: 2, DisableCache: 3 } }),
        attr('kernelCachePolicy', 'enum', { default: 'DontCache', values: { DontCache: 0, CacheUntilChange: 1, CacheForTimePeriod: 2, DisableCache: 3 } }),
        attr('duration', 'timeSpan', { default: '00:00:30', validation: ['timeSpanRange', '1,4294967,1'] }),
        attr('location', 'enum', { default: 'Server', values: { Any: 0, Client: 1, Downstream: 2, Server: 3, None: 4, ServerAndClient: 5 } }),
        attr('varyByHeaders', 'string'),
        attr('varyByQueryString', 'string'),
      ]),
    ]),
  ]),
  section('system.webServer/cgi', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.cgi }, [
    attr('createCGIWithNewConsole', 'bool', { default: 'false' }),
    attr('createProcessAsUser', 'bool', { default: 'true' }),
    attr('timeout', 'timeSpan', { default: '00:15:00', validation: ['timeSpanRange', '1,2147483647,1'] }),
  ]),
  section('system.webServer/defaultDocument', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('enabled', 'bool', { default: 'true' }),
    element('files', [
      collection({ add: 'add', remove: 'remove', clear: 'clear', mergeAppend: false }, [
        attr('value', 'string', { key: 'unique' }),
      ]),
    ]),
  ]),
  section('system.webServer/directoryBrowse', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('enabled', 'bool', { default: 'false' }),
    attr('showFlags', 'flags', { default: 'Date, Time, Size, Extension', values: { None: 0, Date: 2, Time: 4, Size: 8, Extension: 16, LongDate: 32 } }),
  ]),
  section('system.webServer/fastCgi', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'application' }, [
      attr('fullPath', 'string', { required: true, key: 'combined', expanded: true, validation: ['nonEmptyString'] }),
      attr('arguments', 'string', { default: '', key: 'combined', expanded: true }),
      attr('monitorChangesTo', 'string', { default: '' }),
      attr('stderrMode', 'enum', { default: 'ReturnStdErrIn500', values: { ReturnStdErrIn500: 0, ReturnGeneric500: 1, IgnoreAndReturn200: 2, TerminateProcess: 3 } }),
      attr('maxInstances', 'uint', { default: '0', validation: ['integerRange', '0,10000'] }),
      attr('idleTimeout', 'uint', { default: '300', validation: ['integerRange', '10,2592000'] }),
      attr('activityTimeout', 'uint', { default: '70', validation: ['integerRange', '10,2592000'] }),
      attr('requestTimeout', 'uint', { default: '90', validation: ['integerRange', '10,2592000'] }),
      attr('instanceMaxRequests', 'uint', { default: '200', validation: ['integerRange', '1,10000000'] }),
      attr('signalBeforeTerminateSeconds', 'uint', { default: '0', validation: ['integerRange', '0,60'] }),
      attr('protocol', 'enum', { default: 'NamedPipe', values: { NamedPipe: 0, Tcp: 1 } }),
      attr('queueLength', 'uint', { default: '1000', validation: ['integerRange', '1,100000000'] }),
      attr('flushNamedPipe', 'bool', { default: 'false' }),
      attr('rapidFailsPerMinute', 'uint', { default: '10', validation: ['integerRange', '0,1000'] }),
      element('environmentVariables', [
        collection({ add: 'environmentVariable' }, [
          attr('name', 'string', { key: 'unique' }),
          attr('value', 'string'),
        ]),
      ]),
    ]),
  ]),
  section('system.webServer/globalModules', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('name', 'string', { required: true, key: 'unique', caseSensitive: true }),
      attr('image', 'string', { expanded: true }),
      attr('preCondition', 'string', { caseSensitive: true }),
    ]),
  ]),
  section('system.webServer/handlers', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('accessPolicy', 'flags', { default: 'Read', values: { None: 0, Read: 1, Write: 2, Execute: 4, Source: 16, Script: 512, NoRemoteWrite: 1024, NoRemoteRead: 4096, NoRemoteExecute: 8192, NoRemoteScript: 16384 } }),
    collection({ add: 'add', remove: 'remove', clear: 'clear', mergeAppend: false }, [
      attr('name', 'string', { required: true, key: 'unique', caseSensitive: true, validation: ['nonEmptyString'] }),
      attr('path', 'string', { required: true, validation: ['nonEmptyString'] }),
      attr('verb', 'string', { required: true, caseSensitive: true }),
      attr('type', 'string', { caseSensitive: true }),
      attr('modules', 'string', { default: 'ManagedPipelineHandler', caseSensitive: true }),
      attr('scriptProcessor', 'string', { expanded: true }),
      attr('resourceType', 'enum', { default: 'Unspecified', values: { File: 0, Directory: 1, Either: 2, Unspecified: 3 } }),
      attr('requireAccess', 'enum', { default: 'Script', values: { None: 0, Read: 1, Write: 2, Script: 3, Execute: 4 } }),
      attr('allowPathInfo', 'bool', { default: 'false' }),
      attr('preCondition', 'string', { caseSensitive: true }),
      attr('responseBufferLimit', 'uint', { default: '4194304' }),
    ]),
  ]),
  section('system.webServer/httpCompression', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('sendCacheHeaders', 'bool', { default: 'false' }),
    attr('expiresHeader', 'string', { default: 'Wed, 01 Jan 1997 12:00:00 GMT' }),
    attr('cacheControlHeader', 'string', { default: 'max-age=86400' }),
    attr('directory', 'string', { default: '%SystemDrive%\\inetpub\\temp\\IIS Temporary Compressed Files', expanded: true }),
    attr('doDiskSpaceLimiting', 'bool', { default: 'true' }),
    attr('maxDiskSpaceUsage', 'uint', { default: '100' }),
    attr('minFileSizeForComp', 'uint', { default: '2700' }),
    attr('noCompressionForHttp10', 'bool', { default: 'true' }),
    attr('noCompressionForProxies', 'bool', { default: 'true' }),
    attr('noCompressionForRange', 'bool', { default: 'true' }),
    attr('staticCompressionIgnoreHitFrequency', 'bool', { default: 'false' }),
    attr('staticCompressionDisableCpuUsage', 'uint', { default: '100', validation: ['integerRange', '0,100'] }),
    attr('staticCompressionEnableCpuUsage', 'uint', { default: '50', validation: ['integerRange', '0,100'] }),
    attr('dynamicCompressionDisableCpuUsage', 'uint', { default: '90', validation: ['integerRange', '0,100'] }),
    attr('dynamicCompressionEnableCpuUsage', 'uint', { default: '50', validation: ['integerRange', '0,100'] }),
    attr('dynamicCompressionBufferLimit', 'uint', { default: '65536' }),
    collection({ add: 'scheme', remove: 'remove', clear: 'clear' }, [
      attr('name', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      attr('doStaticCompression', 'bool', { default: 'true' }),
      attr('doDynamicCompression', 'bool', { default: 'true' }),
      attr('dll', 'string', { required: true, expanded: true, validation: ['nonEmptyString'] }),
      attr('staticCompressionLevel', 'uint', { default: '7' }),
      attr('dynamicCompressionLevel', 'uint', { default: '0' }),
    ]),
    element('staticTypes', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('mimeType', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
        attr('enabled', 'bool', { required: true }),
      ]),
    ]),
    element('dynamicTypes', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('mimeType', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
        attr('enabled', 'bool', { required: true }),
      ]),
    ]),
  ]),
  section('system.webServer/httpErrors', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('errorMode', 'enum', { default: 'DetailedLocalOnly', values: { DetailedLocalOnly: 0, Custom: 1, Detailed: 2 } }),
    attr('existingResponse', 'enum', { default: 'Auto', values: { Auto: 0, Replace: 1, PassThrough: 2 } }),
    attr('defaultPath', 'string', { expanded: true }),
    attr('defaultResponseMode', 'enum', { default: 'File', values: { File: 0, ExecuteURL: 1, Redirect: 2 } }),
    attr('detailedMoreInformationLink', 'string', { default: 'http://go.microsoft.com/fwlink/?LinkID=62293' }),
    attr('allowAbsolutePathsWhenDelegated', 'bool', { default: 'false' }),
    collection({ add: 'error', remove: 'remove', clear: 'clear' }, [
      attr('statusCode', 'uint', { required: true, key: 'combined', validation: ['integerRange', '400,999'] }),
      attr('subStatusCode', 'int', { default: '-1', key: 'combined', validation: ['integerRange', '-1,999'] }),
      attr('prefixLanguageFilePath', 'string', { default: '', expanded: true }),
      attr('path', 'string', { required: true, expanded: true, validation: ['nonEmptyString'] }),
      attr('responseMode', 'enum', { default: 'File', values: { File: 0, ExecuteURL: 1, Redirect: 2 } }),
    ]),
  ]),
  section('system.webServer/httpLogging', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('selectiveLogging', 'enum', { default: 'LogAll', values: { LogAll: 0, LogSuccessful: 1, LogError: 2 } }),
    attr('dontLog', 'bool', { default: 'false' }),
  ]),
  section('system.webServer/httpProtocol', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    element('customHeaders', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('name', 'string', { key: 'unique' }),
        attr('value', 'string', { caseSensitive: true }),
      ]),
    ]),
    element('redirectHeaders', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('name', 'string', { key: 'unique' }),
        attr('value', 'string', { caseSensitive: true }),
      ]),
    ]),
    attr('allowKeepAlive', 'bool', { default: 'true' }),
  ]),
  section('system.webServer/httpRedirect', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.httpRedirect }, [
    attr('enabled', 'bool', { default: 'false' }),
    attr('destination', 'string'),
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('wildcard', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      attr('destination', 'string', { required: true, validation: ['nonEmptyString'] }),
    ]),
    attr('exactDestination', 'bool', { default: 'false' }),
    attr('childOnly', 'bool', { default: 'false' }),
    attr('httpResponseStatus', 'enum', { default: 'Found', values: { Permanent: 301, Found: 302, Temporary: 307, PermRedirect: 308 } }),
  ]),
  // iisnode's own section (iisnode_schema_x64.xml of tjanczuk/iisnode 0.2.x, plus the attributes
  // its documented sample web.config uses that later releases added). Wharf honours the ones
  // docs/configuration.md lists under "Node.js applications"; the named-pipe and debugger ones
  // describe iisnode's out-of-process design and are accepted but have no effect.
  section('system.webServer/iisnode', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere', schemaFile: 'iisnode_schema.xml' }, [
    attr('node_env', 'string', { expanded: true, default: '%node_env%' }),
    attr('asyncCompletionThreadCount', 'uint', { default: '0' }),
    attr('nodeProcessCountPerApplication', 'uint', { default: '1' }),
    attr('nodeProcessCommandLine', 'string', { expanded: true, default: '"%programfiles%\\nodejs\\node.exe"' }),
    attr('interceptor', 'string', { expanded: true, default: '"%programfiles%\\iisnode\\interceptor.js"' }),
    attr('maxConcurrentRequestsPerProcess', 'uint', { default: '1024' }),
    attr('maxNamedPipeConnectionRetry', 'uint', { default: '100' }),
    attr('namedPipeConnectionRetryDelay', 'uint', { default: '250' }),
    attr('maxNamedPipeConnectionPoolSize', 'uint', { default: '512' }),
    attr('maxNamedPipePooledConnectionAge', 'uint', { default: '30000' }),
    attr('initialRequestBufferSize', 'uint', { default: '4096' }),
    attr('maxRequestBufferSize', 'uint', { default: '65536' }),
    attr('uncFileChangesPollingInterval', 'uint', { default: '5000' }),
    attr('gracefulShutdownTimeout', 'uint', { default: '60000' }),
    attr('logDirectoryNameSuffix', 'string', { expanded: true, default: 'logs' }),
    attr('logDirectory', 'string', { expanded: true, default: 'iisnode' }),
    attr('debuggingEnabled', 'bool', { default: 'true' }),
    attr('debuggerPathSegment', 'string', { expanded: true, default: 'debug' }),
    attr('debuggerPortRange', 'string', { expanded: true, default: '5058-6058' }),
    attr('debuggerExtensionDll', 'string', { expanded: true, default: '' }),
    attr('debugHeaderEnabled', 'bool', { default: 'false' }),
    attr('logFileFlushInterval', 'uint', { default: '5000' }),
    attr('maxLogFileSizeInKB', 'uint', { default: '128' }),
    attr('maxTotalLogFileSizeInKB', 'uint', { default: '1024' }),
    attr('maxLogFiles', 'uint', { default: '20' }),
    attr('loggingEnabled', 'bool', { default: 'true' }),
    attr('appendToExistingLog', 'bool', { default: 'false' }),
    attr('devErrorsEnabled', 'bool', { default: 'true' }),
    attr('flushResponse', 'bool', { default: 'false' }),
    attr('watchedFiles', 'string', { expanded: true, default: '*.js;iisnode.yml' }),
    attr('enableXFF', 'bool', { default: 'false' }),
    attr('promoteServerVars', 'string', { default: '' }),
    attr('configOverrides', 'string', { expanded: true, default: 'iisnode.yml' }),
    attr('recycleSignalEnabled', 'bool', { default: 'false' }),
    attr('idlePageOutTimePeriod', 'uint', { default: '0' }),
  ]),
  // URL Rewrite 2.1's own sections (rewrite_schema.xml, checked against ../shared/compat's copy).
  // Inbound rules (`rules`, `globalRules`), maps and allowedServerVariables are implemented;
  // outboundRules and providers are not (kept and reported, like any section Wharf lacks).
  section('system.webServer/rewrite/globalRules', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly', schemaFile: 'rewrite_schema.xml' }, [
    collection({ add: 'rule', remove: 'remove', clear: 'clear' }, rewriteRuleBody('global')),
  ]),
  section('system.webServer/rewrite/allowedServerVariables', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', schemaFile: 'rewrite_schema.xml' }, [
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [attr('name', 'string', { required: true, key: 'unique' })]),
  ]),
  section('system.webServer/rewrite/rules', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere', schemaFile: 'rewrite_schema.xml' }, [
    collection({ add: 'rule', remove: 'remove', clear: 'clear' }, rewriteRuleBody('distributed')),
  ]),
  section('system.webServer/rewrite/rewriteMaps', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere', schemaFile: 'rewrite_schema.xml' }, [
    collection({ add: 'rewriteMap', remove: 'remove', clear: 'clear' }, [
      attr('name', 'string', { required: true, key: 'unique', validation: ['requireTrimmedString'] }),
      attr('defaultValue', 'string'),
      attr('ignoreCase', 'bool', { default: 'true' }),
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('key', 'string', { required: true, caseSensitive: true, key: 'unique' }),
        attr('value', 'string'),
      ]),
    ]),
  ]),
  section('system.webServer/modules', { overrideModeDefault: 'Deny', allowDefinition: 'MachineToApplication' }, [
    attr('runAllManagedModulesForAllRequests', 'bool', { default: 'false' }),
    attr('runManagedModulesForWebDavRequests', 'bool', { default: 'false' }),
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('name', 'string', { required: true, key: 'unique', caseSensitive: true, validation: ['nonEmptyString'] }),
      attr('type', 'string', { caseSensitive: true }),
      attr('preCondition', 'string', { caseSensitive: true }),
    ]),
  ]),
  section('system.webServer/applicationInitialization', { overrideModeDefault: 'Allow', allowDefinition: 'MachineToApplication', notEnforced: NOT_ENFORCED.applicationInitialization }, [
    attr('remapManagedRequestsTo', 'string', { default: '' }),
    attr('skipManagedModules', 'bool', { default: 'false' }),
    attr('doAppInitAfterRestart', 'bool', { default: 'false' }),
    // IIS_schema.xml writes mergeElement="false" here, an attribute IIS does not define (it is not
    // mergeAppend), so the collection keeps the default append order.
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('initializationPage', 'string', { required: true, key: 'unique' }),
      attr('hostName', 'string', { default: '' }),
    ]),
  ]),
  section('system.webServer/security/access', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('sslFlags', 'flags', { default: 'None', values: { None: 0, Ssl: 8, SslNegotiateCert: 32, SslRequireCert: 64, Ssl128: 256 } }),
  ]),
  section('system.webServer/security/authentication/anonymousAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.anonymousAuthentication }, [
    attr('enabled', 'bool', { default: 'true' }),
    attr('userName', 'string', { default: 'IUSR' }),
    attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
    attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
  ]),
  section('system.webServer/security/authentication/basicAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.basicAuthentication }, [
    attr('enabled', 'bool', { default: 'false' }),
    attr('realm', 'string'),
    attr('defaultLogonDomain', 'string'),
    attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
  ]),
  section('system.webServer/security/authentication/clientCertificateMappingAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.clientCertificateMappingAuthentication }, [
    attr('enabled', 'bool', { default: 'false' }),
  ]),
  section('system.webServer/security/authentication/iisClientCertificateMappingAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.iisClientCertificateMappingAuthentication }, [
    attr('enabled', 'bool', { default: 'false' }),
    attr('oneToOneCertificateMappingsEnabled', 'bool', { default: 'true' }),
    attr('manyToOneCertificateMappingsEnabled', 'bool', { default: 'true' }),
    attr('defaultLogonDomain', 'string'),
    attr('logonMethod', 'enum', { default: 'ClearText', values: { Interactive: 0, Batch: 1, Network: 2, ClearText: 3 } }),
    element('manyToOneMappings', [
      collection({ add: 'add', clear: 'clear' }, [
        attr('name', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
        attr('description', 'string'),
        attr('enabled', 'bool', { default: 'true' }),
        attr('permissionMode', 'enum', { default: 'Allow', values: { Allow: 1, Deny: 2 } }),
        element('rules', [
          collection({ add: 'add', clear: 'clear' }, [
            attr('certificateField', 'enum', { required: true, key: 'combined', values: { Subject: 1, Issuer: 2 } }),
            attr('certificateSubField', 'string', { caseSensitive: true, required: true, key: 'combined' }),
            attr('matchCriteria', 'string', { caseSensitive: true, required: true, key: 'combined' }),
            attr('compareCaseSensitive', 'bool', { key: 'combined', default: 'true' }),
          ]),
        ]),
        attr('userName', 'string', { validation: ['nonEmptyString'] }),
        attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
      ]),
    ]),
    element('oneToOneMappings', [
      collection({ add: 'add', clear: 'clear' }, [
        attr('enabled', 'bool', { default: 'true' }),
        attr('userName', 'string'),
        attr('password', 'string', { default: '[enc:AesProvider::enc]', caseSensitive: true, encrypted: true }),
        attr('certificate', 'string', { caseSensitive: true, required: true, key: 'unique' }),
      ]),
    ]),
  ]),
  section('system.webServer/security/authentication/digestAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('enabled', 'bool', { default: 'false' }),
    attr('realm', 'string'),
  ]),
  section('system.webServer/security/authentication/windowsAuthentication', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.windowsAuthentication }, [
    attr('enabled', 'bool', { default: 'false' }),
    element('providers', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('value', 'string', { key: 'unique' }),
      ]),
    ]),
    attr('authPersistSingleRequest', 'bool', { default: 'false' }),
    attr('authPersistNonNTLM', 'bool', { default: 'false' }),
    attr('useKernelMode', 'bool', { default: 'true' }),
    attr('useAppPoolCredentials', 'bool', { default: 'false' }),
    element('extendedProtection', [
      attr('tokenChecking', 'enum', { default: 'None', values: { None: 0, Allow: 1, Require: 2 } }),
      attr('flags', 'flags', { default: 'None', values: { None: 0, Proxy: 1, NoServiceNameCheck: 2, AllowDotlessSpn: 4, ProxyCohosting: 32 } }),
      collection({ add: 'spn', remove: 'removeSpn', clear: 'clearSpns' }, [
        attr('name', 'string', { key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
  ]),
  section('system.webServer/security/authorization', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('bypassLoginPages', 'bool', { default: 'true' }),
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('accessType', 'enum', { required: true, values: { Allow: 0, Deny: 1 } }),
      attr('users', 'string', { key: 'combined' }),
      attr('roles', 'string', { key: 'combined' }),
      attr('verbs', 'string', { key: 'combined', caseSensitive: true }),
    ]),
  ]),
  section('system.webServer/security/ipSecurity', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('enableReverseDns', 'bool', { default: 'false' }),
    attr('allowUnlisted', 'bool', { default: 'true' }),
    attr('enableProxyMode', 'bool', { default: 'false' }),
    attr('denyAction', 'enum', { default: 'Forbidden', values: { AbortRequest: 0, Unauthorized: 401, Forbidden: 403, NotFound: 404 } }),
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('ipAddress', 'string', { key: 'combined' }),
      attr('subnetMask', 'string', { default: '255.255.255.255', key: 'combined' }),
      attr('domainName', 'string', { key: 'combined' }),
      attr('allowed', 'bool', { default: 'false' }),
    ]),
  ]),
  section('system.webServer/security/dynamicIpSecurity', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('denyAction', 'enum', { default: 'Forbidden', values: { AbortRequest: 0, Unauthorized: 401, Forbidden: 403, NotFound: 404 } }),
    attr('enableProxyMode', 'bool', { default: 'false' }),
    attr('enableLoggingOnlyMode', 'bool', { default: 'false' }),
    element('denyByConcurrentRequests', [
      attr('enabled', 'bool', { default: 'false' }),
      attr('maxConcurrentRequests', 'uint', { default: '5', validation: ['integerRange', '1,4294967295'] }),
    ]),
    element('denyByRequestRate', [
      attr('enabled', 'bool', { default: 'false' }),
      attr('maxRequests', 'uint', { default: '20', validation: ['integerRange', '1,4294967295'] }),
      attr('requestIntervalInMilliseconds', 'uint', { default: '200', validation: ['integerRange', '1,4294967295'] }),
    ]),
  ]),
  section('system.webServer/security/isapiCgiRestriction', { overrideModeDefault: 'Deny', allowDefinition: 'AppHostOnly' }, [
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('path', 'string', { required: true, key: 'unique', expanded: true, validation: ['nonEmptyString'] }),
      attr('allowed', 'bool', { default: 'false', required: true }),
      attr('groupId', 'string'),
      attr('description', 'string'),
    ]),
    attr('notListedIsapisAllowed', 'bool', { default: 'false' }),
    attr('notListedCgisAllowed', 'bool', { default: 'false' }),
  ]),
  section('system.webServer/security/requestFiltering', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('allowDoubleEscaping', 'bool', { default: 'false' }),
    attr('allowHighBitCharacters', 'bool', { default: 'true' }),
    attr('unescapeQueryString', 'bool', { default: 'true' }),
    // IIS_schema.xml spells this default 'defaultvalue' (lower-case v), which IIS ignores; false is
    // the implicit bool default either way.
    attr('removeServerHeader', 'bool'),
    element('fileExtensions', [
      attr('allowUnlisted', 'bool', { default: 'true' }),
      attr('applyToWebDAV', 'bool', { default: 'true' }),
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('fileExtension', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
        attr('allowed', 'bool', { default: 'true', required: true }),
      ]),
    ]),
    element('requestLimits', [
      attr('maxAllowedContentLength', 'uint', { default: '30000000' }),
      attr('maxUrl', 'uint', { default: '4096' }),
      attr('maxQueryString', 'uint', { default: '2048' }),
      element('headerLimits', [
        collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
          attr('header', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
          attr('sizeLimit', 'uint', { required: true }),
        ]),
      ]),
    ]),
    element('verbs', [
      attr('allowUnlisted', 'bool', { default: 'true' }),
      attr('applyToWebDAV', 'bool', { default: 'true' }),
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('verb', 'string', { required: true, key: 'unique', caseSensitive: true, validation: ['nonEmptyString'] }),
        attr('allowed', 'bool', { required: true }),
      ]),
    ]),
    element('hiddenSegments', [
      attr('applyToWebDAV', 'bool', { default: 'true' }),
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('segment', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
    element('alwaysAllowedUrls', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('url', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
    element('alwaysAllowedQueryStrings', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('queryString', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
    element('denyUrlSequences', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('sequence', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
    element('denyQueryStringSequences', [
      collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
        attr('sequence', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
      ]),
    ]),
    element('filteringRules', [
      collection({ add: 'filteringRule', remove: 'remove', clear: 'clear' }, [
        attr('name', 'string', { required: true, key: 'unique' }),
        attr('scanUrl', 'bool', { default: 'false' }),
        attr('scanQueryString', 'bool', { default: 'false' }),
        attr('scanAllRaw', 'bool', { default: 'false' }),
        attr('denyUnescapedPercent', 'bool', { default: 'true' }),
        element('scanHeaders', [
          collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
            attr('requestHeader', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
          ]),
        ]),
        element('appliesTo', [
          collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
            attr('fileExtension', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
          ]),
        ]),
        element('denyStrings', [
          collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
            attr('string', 'string', { required: true, key: 'unique', validation: ['nonEmptyString'] }),
          ]),
        ]),
      ]),
    ]),
  ]),
  section('system.webServer/serverRuntime', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('enabled', 'bool', { default: 'true' }),
    attr('appConcurrentRequestLimit', 'uint', { default: '5000' }),
    attr('maxRequestEntityAllowed', 'uint', { default: '4294967295' }),
    attr('uploadReadAheadSize', 'uint', { default: '49152', validation: ['integerRange', '0,2147483647'] }),
    attr('alternateHostName', 'string'),
    attr('enableNagling', 'bool', { default: 'false' }),
    attr('frequentHitThreshold', 'uint', { default: '2', validation: ['integerRange', '1,2147483647'] }),
    attr('frequentHitTimePeriod', 'timeSpan', { default: '00:00:10' }),
    attr('authenticatedUserOverride', 'enum', { default: 'UseAuthenticatedUser', values: { UseAuthenticatedUser: 1, UseWorkerProcessUser: 2 } }),
  ]),
  section('system.webServer/serverSideInclude', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere' }, [
    attr('ssiExecDisable', 'bool', { default: 'false' }),
  ]),
  section('system.webServer/staticContent', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    element('clientCache', [
      attr('cacheControlMode', 'enum', { default: 'NoControl', values: { NoControl: 0, DisableCache: 1, UseMaxAge: 2, UseExpires: 3 } }),
      attr('cacheControlMaxAge', 'timeSpan', { default: '1.00:00:00' }),
      attr('httpExpires', 'string'),
      attr('cacheControlCustom', 'string'),
      attr('setEtag', 'bool', { default: 'true' }),
    ]),
    attr('defaultDocFooter', 'string', { caseSensitive: true }),
    attr('isDocFooterFileName', 'bool', { default: 'false' }),
    attr('enableDocFooter', 'bool', { default: 'false' }),
    collection({ add: 'mimeMap', remove: 'remove', clear: 'clear' }, [
      attr('fileExtension', 'string', { required: true, key: 'unique' }),
      attr('mimeType', 'string', { required: true, validation: ['nonEmptyString'] }),
    ]),
  ]),
  // Enforced by the worker's FailedRequestTracer (customAction* are reported by it, not run).
  section('system.webServer/tracing/traceFailedRequests', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
      attr('path', 'string', { key: 'unique' }),
      attr('customActionExe', 'string', { expanded: true }),
      attr('customActionParams', 'string', { expanded: true }),
      attr('customActionTriggerLimit', 'uint', { default: '1', validation: ['integerRange', '0,10000'] }),
      element('traceAreas', [
        collection({ add: 'add', remove: 'remove', clear: 'clear' }, [
          attr('provider', 'string', { required: true, key: 'unique' }),
          attr('areas', 'string'),
          attr('verbosity', 'enum', { default: 'Warning', values: { General: 0, CriticalError: 1, Error: 2, Warning: 3, Information: 4, Verbose: 5 } }),
        ]),
      ]),
      element('failureDefinitions', [
        attr('timeTaken', 'timeSpan', { default: '00:00:00' }),
        attr('traceAllAfterTimeout', 'bool', { default: 'false' }),
        attr('statusCodes', 'string'),
        attr('verbosity', 'enum', { default: 'Ignore', values: { Ignore: 0, CriticalError: 1, Error: 2, Warning: 3 } }),
      ]),
    ]),
  ]),
  section('system.webServer/urlCompression', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('doStaticCompression', 'bool', { default: 'true' }),
    attr('doDynamicCompression', 'bool', { default: 'true' }),
    attr('dynamicCompressionBeforeCache', 'bool', { default: 'false' }),
  ]),
  section('system.webServer/validation', { overrideModeDefault: 'Allow', allowDefinition: 'Everywhere' }, [
    attr('validateIntegratedModeConfiguration', 'bool', { default: 'true' }),
  ]),
  section('system.webServer/webSocket', { overrideModeDefault: 'Deny', allowDefinition: 'Everywhere', notEnforced: NOT_ENFORCED.webSocket }, [
    attr('enabled', 'bool', { default: 'true' }),
    attr('receiveBufferLimit', 'uint', { default: '4194304', validation: ['integerRange', '4096,2147483647'] }),
    attr('pingInterval', 'timeSpan', { default: '00:00:00', validation: ['timeSpanRange', '0,86400,1'] }),
  ]),
];

// ---------------------------------------------------------------------------------------------
// Compiled lookups

/** Every implemented section by path ('system.webServer/staticContent'); paths are case-sensitive. */
export const SECTIONS: ReadonlyMap<string, SectionSchema> = new Map(SECTION_TABLE.map((def) => [def.path, compileSection(def)]));

/** Section groups implied by the implemented sections ('system.webServer', 'system.webServer/security'…). */
export const SECTION_GROUPS: ReadonlySet<string> = new Set(
  SECTION_TABLE.flatMap((def) => {
    const parts = def.path.split('/');
    return parts.slice(1).map((_, i) => parts.slice(0, i + 1).join('/'));
  }),
);

export function getSectionSchema(path: string): SectionSchema | undefined {
  return SECTIONS.get(path);
}
