/**
 * httpCompression staticTypes / dynamicTypes: which MIME types a scheme compresses. IIS keeps the
 * entries in a list where an exact type (`text/event-stream`) goes to the front — later entries
 * before earlier ones — and an entry with a wildcard (`text/*`, `*\/*`, `application/*+xml`) to the
 * back in the order written; the first entry that matches decides (its `enabled`), and a type no
 * entry matches is not compressed. So the shipped `text/*` enabled + `text/event-stream` disabled
 * leaves Server-Sent Events alone whatever their order in the file. Parameters (`; charset=…`) are
 * ignored on both sides; type and subtype compare without regard to case.
 */
import type { ConfigElement } from '../../config/types.js';

interface TypeEntry {
  readonly type: string;
  readonly subtype: string;
  readonly enabled: boolean;
}

/** `type/subtype` of a media type or entry, lower case, without parameters; undefined without a '/'. */
function split(value: string): [string, string] | undefined {
  const semi = value.indexOf(';');
  const bare = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = bare.indexOf('/');
  if (slash === -1) return undefined;
  return [bare.slice(0, slash).trim(), bare.slice(slash + 1).trim()];
}

/** `*` alone matches anything; elsewhere it matches any run of characters (`vnd.*`, `*+xml`). */
function matches(pattern: string, value: string): boolean {
  if (pattern === '*' || pattern === value) return true;
  if (!pattern.includes('*')) return false;
  const parts = pattern.split('*');
  if (!value.startsWith(parts[0]!) || !value.endsWith(parts[parts.length - 1]!)) return false;
  let pos = parts[0]!.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const at = value.indexOf(parts[i]!, pos);
    if (at === -1) return false;
    pos = at + parts[i]!.length;
  }
  return pos <= value.length - parts[parts.length - 1]!.length;
}

export class ContentTypeList {
  readonly #entries: readonly TypeEntry[];
  /** Answers by Content-Type value (a handful of distinct values in practice). */
  readonly #memo = new Map<string, boolean>();

  constructor(items: ReadonlyArray<{ readonly mimeType: string; readonly enabled: boolean }>) {
    const exact: TypeEntry[] = [];
    const wild: TypeEntry[] = [];
    for (const item of items) {
      const s = split(item.mimeType);
      if (s === undefined) continue; // IIS refuses such an entry; nothing can match it
      const e = { type: s[0], subtype: s[1], enabled: item.enabled };
      if (e.type.includes('*') || e.subtype.includes('*')) wild.push(e);
      else exact.unshift(e);
    }
    this.#entries = [...exact, ...wild];
  }

  static fromElement(list: ConfigElement): ContentTypeList {
    return new ContentTypeList(list.items.map((i) => ({ mimeType: i.str('mimeType'), enabled: i.bool('enabled') })));
  }

  get size(): number {
    return this.#entries.length;
  }

  /** Whether a response of this Content-Type is compressed. */
  allows(contentType: string): boolean {
    let r = this.#memo.get(contentType);
    if (r === undefined) {
      r = this.#decide(contentType);
      if (this.#memo.size >= 256) this.#memo.clear();
      this.#memo.set(contentType, r);
    }
    return r;
  }

  #decide(contentType: string): boolean {
    const s = split(contentType);
    if (s === undefined) return false;
    for (const e of this.#entries) if (matches(e.type, s[0]) && matches(e.subtype, s[1])) return e.enabled;
    return false;
  }
}
