/**
 * IP addresses and prefixes for ipSecurity and dynamicIpSecurity (role-neutral: the listener and
 * the worker's modules both match clients). Every address is held as 128 bits in four 32-bit
 * words, IPv4 as its IPv4-mapped IPv6 form (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so one compare
 * serves both families and an IPv4 client on a dual-stack socket matches IPv4 rules.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** 128 bits, most significant word first. */
export type Address128 = readonly [number, number, number, number];

/** A network: the address with its host bits cleared, and the mask (prefix) it was cleared with. */
export interface Prefix {
  readonly network: Address128;
  readonly mask: Address128;
  /** Prefix length in the 128-bit space (an IPv4 /24 is 120). */
  readonly bits: number;
}

const V4_MAPPED_HIGH = 0xffff;

function v4Word(text: string): number {
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/**
 * An address as 128 bits, or undefined when `text` is not an IPv4 or IPv6 literal. A zone
 * (`fe80::1%eth0`) is ignored; IPv4-mapped IPv6 addresses equal their IPv4 form.
 */
export function parseAddress(text: string): Address128 | undefined {
  if (isIPv4(text)) return [0, 0, V4_MAPPED_HIGH, v4Word(text)];
  const pct = text.indexOf('%');
  const bare = pct < 0 ? text : text.slice(0, pct);
  if (!isIPv6(bare)) return undefined;
  let head = bare;
  let tail = '';
  const gap = bare.indexOf('::');
  if (gap >= 0) {
    head = bare.slice(0, gap);
    tail = bare.slice(gap + 2);
  }
  const groups = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const w = v4Word(part);
        out.push(w >>> 16, w & 0xffff);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  const all = gap >= 0 ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  return [((all[0]! << 16) | all[1]!) >>> 0, ((all[2]! << 16) | all[3]!) >>> 0, ((all[4]! << 16) | all[5]!) >>> 0, ((all[6]! << 16) | all[7]!) >>> 0];
}

/** Whether an address is IPv4 (held IPv4-mapped). */
export function isV4(a: Address128): boolean {
  return a[0] === 0 && a[1] === 0 && a[2] === V4_MAPPED_HIGH;
}

function maskOf(bits: number): Address128 {
  const w = (i: number): number => {
    const n = Math.min(32, Math.max(0, bits - 32 * i));
    return n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  };
  return [w(0), w(1), w(2), w(3)];
}

/**
 * The prefix an ipSecurity entry names: `ipAddress` with its `subnetMask`, which IIS accepts as a
 * dotted IPv4 mask (255.255.255.0, contiguous ones) or as a prefix length (24; for IPv6 entries
 * the only form, 0–128). IIS's default mask 255.255.255.255 means the single address, for IPv6
 * too. Returns a reason when the entry cannot be understood.
 */
export function parsePrefix(ipAddress: string, subnetMask: string): Prefix | string {
  const address = parseAddress(ipAddress.trim());
  if (address === undefined) return `ipAddress "${ipAddress}" is not an IPv4 or IPv6 address`;
  const v4 = isV4(address);
  const mask = subnetMask.trim();
  let bits: number;
  if (/^\d{1,3}$/.test(mask)) {
    bits = Number(mask);
    if (bits > (v4 ? 32 : 128)) return `subnetMask "${subnetMask}" is longer than the address (${v4 ? 32 : 128} bits)`;
    if (v4) bits += 96;
  } else if (isIPv4(mask)) {
    if (!v4) {
      if (mask !== '255.255.255.255') return `subnetMask "${subnetMask}" is an IPv4 mask; an IPv6 entry takes a prefix length (0-128)`;
      bits = 128;
    } else {
      const m = v4Word(mask);
      const ones = Math.clz32(~m >>> 0); // leading one bits (32 for 255.255.255.255)
      // Contiguous: the mask is exactly those leading ones.
      if (m !== (ones === 0 ? 0 : (0xffffffff << (32 - ones)) >>> 0)) return `subnetMask "${subnetMask}" is not a contiguous mask`;
      bits = 96 + ones;
    }
  } else {
    return `subnetMask "${subnetMask}" is neither a dotted IPv4 mask nor a prefix length`;
  }
  const m = maskOf(bits);
  return { network: [(address[0] & m[0]) >>> 0, (address[1] & m[1]) >>> 0, (address[2] & m[2]) >>> 0, (address[3] & m[3]) >>> 0], mask: m, bits };
}

export function inPrefix(a: Address128, p: Prefix): boolean {
  const n = p.network;
  const m = p.mask;
  return ((a[3] & m[3]) >>> 0) === n[3] && ((a[2] & m[2]) >>> 0) === n[2] && ((a[1] & m[1]) >>> 0) === n[1] && ((a[0] & m[0]) >>> 0) === n[0];
}

/** The canonical text of an address (counter keys): IPv4 dotted, IPv6 as Node prints it. */
export function addressKey(a: Address128): string {
  if (isV4(a)) return `${a[3] >>> 24}.${(a[3] >>> 16) & 255}.${(a[3] >>> 8) & 255}.${a[3] & 255}`;
  const g: string[] = [];
  for (const w of a) g.push((w >>> 16).toString(16), (w & 0xffff).toString(16));
  return g.join(':');
}

/** Most addresses an X-Forwarded-For chain is read for (a longer header is cut there). */
export const MAX_FORWARDED = 16;

/**
 * The addresses of an X-Forwarded-For value (`client, proxy1, proxy2`), original client first.
 * An entry may carry a port (`203.0.113.7:5123`, `[2001:db8::1]:443`); entries that are not
 * addresses (`unknown`, obfuscated names) are skipped. At most MAX_FORWARDED are returned.
 */
export function forwardedFor(value: string): Address128[] {
  const out: Address128[] = [];
  for (const raw of value.split(',')) {
    if (out.length === MAX_FORWARDED) break;
    let t = raw.trim();
    if (t.startsWith('[')) {
      const end = t.indexOf(']');
      if (end < 0) continue;
      t = t.slice(1, end);
    } else if (t.indexOf(':') === t.lastIndexOf(':') && t.includes('.')) {
      const colon = t.indexOf(':');
      if (colon >= 0) t = t.slice(0, colon);
    }
    const a = parseAddress(t);
    if (a !== undefined) out.push(a);
  }
  return out;
}
