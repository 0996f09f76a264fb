/**
 * iisClientCertificateMappingAuthentication's mappings, compiled once per section element:
 * which account a client certificate maps to (IIS authmap.dll).
 *
 * - One-to-one: the certificate itself (base64 DER, as IIS stores it) names an account.
 * - Many-to-one: in collection order, the first enabled mapping all of whose rules match decides:
 *   `permissionMode="Allow"` maps to its userName, `Deny` refuses the certificate (403.12). A rule
 *   compares one sub-field (CN, O, OU, C, S/ST, L, E …) of the Subject or Issuer with
 *   `matchCriteria`, where `*` stands for any run of characters; a field with several values (two
 *   OUs) matches when one of them does. `compareCaseSensitive` (default true) decides case.
 * One-to-one mappings are looked at first, as IIS does.
 */
import { X509Certificate } from 'node:crypto';
import type { ConfigElement } from '../../config/types.js';

interface Rule {
  readonly field: 'Subject' | 'Issuer';
  /** Upper-case sub-field name, with Windows' aliases folded to OpenSSL's (S → ST, E → EMAILADDRESS). */
  readonly subField: string;
  readonly pattern: RegExp;
}

interface ManyToOne {
  readonly name: string;
  readonly allow: boolean;
  readonly rules: readonly Rule[];
  readonly userName: string;
}

export interface CompiledMappings {
  readonly enabled: boolean;
  /** Normalized base64 DER → userName (enabled entries of an enabled one-to-one list only). */
  readonly oneToOne: ReadonlyMap<string, string>;
  /** Enabled entries of an enabled many-to-one list. */
  readonly manyToOne: readonly ManyToOne[];
}

/** What a certificate maps to. */
export type MappingResult =
  | { readonly kind: 'user'; readonly userName: string; readonly mapping: string }
  | { readonly kind: 'denied'; readonly mapping: string }
  | { readonly kind: 'none' };

/** Windows' names for sub-fields OpenSSL names otherwise. */
const ALIASES: Readonly<Record<string, string>> = { S: 'ST', E: 'EMAILADDRESS', EMAIL: 'EMAILADDRESS', G: 'GN', SN: 'SN' };

function subFieldName(name: string): string {
  const upper = name.trim().toUpperCase();
  return ALIASES[upper] ?? upper;
}

/** `*` matches any run of characters (none included); everything else is literal. */
export function criteriaPattern(criteria: string, caseSensitive: boolean): RegExp {
  const body = criteria
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, caseSensitive ? 's' : 'is');
}

/** Base64 DER without PEM armour or white space, as the one-to-one `certificate` attribute may be pasted. */
export function normalizeCertificate(text: string): string {
  return text.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
}

const compiled = new WeakMap<ConfigElement, CompiledMappings>();

export function compileMappings(section: ConfigElement): CompiledMappings {
  let c = compiled.get(section);
  if (c !== undefined) return c;
  const oneToOne = new Map<string, string>();
  if (section.bool('oneToOneCertificateMappingsEnabled')) {
    for (const item of section.child('oneToOneMappings').items) {
      if (!item.bool('enabled')) continue;
      const key = normalizeCertificate(item.str('certificate'));
      if (!oneToOne.has(key)) oneToOne.set(key, item.str('userName'));
    }
  }
  const manyToOne: ManyToOne[] = [];
  if (section.bool('manyToOneCertificateMappingsEnabled')) {
    for (const item of section.child('manyToOneMappings').items) {
      if (!item.bool('enabled')) continue;
      const rules = item.child('rules').items.map((r) => ({
        field: r.enumName('certificateField') as 'Subject' | 'Issuer',
        subField: subFieldName(r.str('certificateSubField')),
        pattern: criteriaPattern(r.str('matchCriteria'), r.bool('compareCaseSensitive')),
      }));
      manyToOne.push({ name: item.str('name'), allow: item.enumName('permissionMode') !== 'Deny', rules, userName: item.str('userName') });
    }
  }
  c = { enabled: section.bool('enabled'), oneToOne, manyToOne };
  compiled.set(section, c);
  return c;
}

/** A distinguished name as X509Certificate prints it (one `NAME=value` a line) → values by upper-case name. */
function nameFields(dn: string): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const line of dn.split('\n')) {
    // A multi-valued RDN is printed as `A=x + B=y`.
    for (const part of line.split(' + ')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim().toUpperCase();
      const list = fields.get(name);
      if (list === undefined) fields.set(name, [part.slice(eq + 1)]);
      else list.push(part.slice(eq + 1));
    }
  }
  return fields;
}

interface CertificateNames {
  readonly subject: Map<string, string[]>;
  readonly issuer: Map<string, string[]>;
}

/** Parsed names of recent certificates: a client sends the same one on every request of a connection. */
const parsed = new Map<string, CertificateNames>();
const MAX_PARSED = 256;

function namesOf(der: string): CertificateNames | undefined {
  let n = parsed.get(der);
  if (n !== undefined) return n;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der, 'base64'));
  } catch {
    return undefined;
  }
  n = { subject: nameFields(cert.subject), issuer: nameFields(cert.issuer) };
  if (parsed.size >= MAX_PARSED) parsed.delete(parsed.keys().next().value!);
  parsed.set(der, n);
  return n;
}

function ruleMatches(rule: Rule, names: CertificateNames): boolean {
  const values = (rule.field === 'Issuer' ? names.issuer : names.subject).get(rule.subField);
  return values !== undefined && values.some((v) => rule.pattern.test(v));
}

/** The mapping for a client certificate (base64 DER, as TlsInfo.clientCert carries it). */
export function mapCertificate(m: CompiledMappings, der: string): MappingResult {
  const one = m.oneToOne.get(der);
  if (one !== undefined) return { kind: 'user', userName: one, mapping: 'one-to-one' };
  if (m.manyToOne.length === 0) return { kind: 'none' };
  const names = namesOf(der);
  if (names === undefined) return { kind: 'none' };
  for (const mapping of m.manyToOne) {
    if (!mapping.rules.every((r) => ruleMatches(r, names))) continue;
    return mapping.allow ? { kind: 'user', userName: mapping.userName, mapping: mapping.name } : { kind: 'denied', mapping: mapping.name };
  }
  return { kind: 'none' };
}
