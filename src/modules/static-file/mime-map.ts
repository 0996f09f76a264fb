/**
 * staticContent mimeMap lookups (reference §2 staticContent) and the Accept check that gives IIS's
 * 406.0.
 */
import type { ConfigElement } from '../../config/types.js';

// Compiled once per staticContent element: ~380 shipped entries must not be scanned per request.
const compiled = new WeakMap<ConfigElement, ReadonlyMap<string, string>>();

export function mimeMapFor(staticContent: ConfigElement): ReadonlyMap<string, string> {
  let map = compiled.get(staticContent);
  if (!map) {
    const m = new Map<string, string>();
    for (const item of staticContent.items) m.set(item.str('fileExtension').toLowerCase(), item.str('mimeType'));
    compiled.set(staticContent, m);
    map = m;
  }
  return map;
}

/**
 * The MIME type of a file name, or undefined (→ 404.3). The extension is matched case-insensitively;
 * a name without one uses the "." entry and ".*" is the catch-all, both as in IIS.
 */
export function mimeTypeOf(map: ReadonlyMap<string, string>, fileName: string): string | undefined {
  const slash = fileName.lastIndexOf('/');
  const dot = fileName.lastIndexOf('.');
  const ext = dot > slash ? fileName.slice(dot).toLowerCase() : '.';
  return map.get(ext) ?? map.get('.*');
}

/**
 * Whether an Accept header admits `type` (RFC 9110 §12.5.1): the most specific matching media range
 * decides, and q=0 excludes. No header, or one that cannot be parsed, admits everything.
 */
export function acceptAllows(accept: string | undefined, type: string): boolean {
  if (accept === undefined || accept === '') return true;
  // Fast path for the usual browser and tool headers.
  if (accept.includes('*/*') && !accept.includes('q=0')) return true;
  const semi = type.indexOf(';');
  const full = (semi < 0 ? type : type.slice(0, semi)).trim().toLowerCase();
  const major = full.slice(0, full.indexOf('/') + 1);
  let best = -1; // specificity of the best match: 0 */*, 1 type/*, 2 exact
  let bestQ = 0;
  for (const part of accept.split(',')) {
    const fields = part.split(';');
    const range = (fields[0] ?? '').trim().toLowerCase();
    if (range === '') continue;
    let specificity: number;
    if (range === full) specificity = 2;
    else if (range.endsWith('/*') && range !== '*/*' && range.slice(0, -1) === major) specificity = 1;
    else if (range === '*/*') specificity = 0;
    else continue;
    let q = 1;
    for (let i = 1; i < fields.length; i++) {
      const p = (fields[i] ?? '').trim().toLowerCase();
      if (p.startsWith('q=')) {
        const v = Number(p.slice(2));
        if (!Number.isNaN(v)) q = v;
      }
    }
    if (specificity > best) {
      best = specificity;
      bestQ = q;
    }
  }
  return best >= 0 && bestQ > 0;
}
