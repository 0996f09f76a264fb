import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/wharf.js';
import { ERROR_CODES } from './errors.js';

/** Source files of src/ (not tests, not the catalogue itself), as text. */
function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && p !== join(REPO_ROOT, 'src', 'errors.ts')) out.push(readFileSync(p, 'utf8'));
  }
  return out;
}

const CODE = /^[A-Z]{3,4}_[A-Z0-9_]+$/; // three-letter areas, and OTEL (the OTEL_* variables users know)

test('every error code is used somewhere in src/ (thrown, logged or typed): none is orphaned', () => {
  const text = sources(join(REPO_ROOT, 'src')).join('\n');
  const unused = Object.keys(ERROR_CODES).filter((code) => !new RegExp(`['"\`(]${code}['"\`:) ]`).test(text));
  assert.deepEqual(unused, []);
});

test('docs/errors.md documents exactly the codes of the catalogue', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  // The first cell of a table row is a code when it looks like one.
  const documented = new Set<string>();
  for (const m of doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)) if (CODE.test(m[1]!)) documented.add(m[1]!);
  const codes = Object.keys(ERROR_CODES);
  assert.deepEqual(codes.filter((c) => !documented.has(c)), [], 'in the catalogue, not in docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !(c in ERROR_CODES)), [], 'in docs/errors.md, not in the catalogue');
});

test('codes are AREA_NAME with a known area, and each has a meaning', () => {
  for (const [code, meaning] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^(CFG|LSN|WAS|IPC|MOD|ADM|MET|OTEL|TLS|SEC)_[A-Z0-9_]+$/);
    assert.ok(meaning.length > 10, code);
  }
});
