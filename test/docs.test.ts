import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '../src/errors.js';
import { SECTIONS } from '../src/config/schema.js';
import { REPO_ROOT } from './helpers/wharf.js';

test('docs/errors.md lists every error code in the catalogue', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const missing = Object.keys(ERROR_CODES).filter((code) => !doc.includes('`' + code + '`'));
  assert.deepEqual(missing, []);
});

test('the README shows how to install, start and test', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  assert.match(readme, /npm install/);
  assert.match(readme, /npm start/);
  assert.match(readme, /npm test/);
});

test('docs/configuration.md covers every implemented configuration section', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  // A section is covered when its path appears, or its path below system.webServer/ or
  // system.applicationHost/ (tables name `system.webServer/security/authorization` as
  // `security/authorization`), or its last name in backquotes.
  const covered = (path: string): boolean =>
    doc.includes(path) || doc.includes(path.slice(path.indexOf('/') + 1)) || doc.includes('`' + path.split('/').pop()! + '`');
  const missing = [...SECTIONS.keys()].filter((path) => !covered(path));
  assert.deepEqual(missing, []);
  assert.match(doc, /^## Linux differences$/m);
});

/** The backquoted names in `text` that look like configuration section paths or element names. */
function backquoted(text: string): string[] {
  return [...text.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!);
}

/** A name (`rewrite`, `system.webServer/rewrite`, `security/ipSecurity`) that is, or is the parent of, a section the schema implements. */
function implementedSectionNamed(name: string): string | undefined {
  const bare = name.replace(/^<|\/?>$/g, '');
  for (const path of SECTIONS.keys()) {
    const segments = path.split('/');
    for (let from = 0; from < segments.length; from++) {
      // Every suffix of the path that starts at a segment boundary, and each of its parents.
      for (let to = from + 1; to <= segments.length; to++) {
        if (from === 0 && to === 1) continue; // `system.webServer` alone is a section group
        if (segments.slice(from, to).join('/') === bare) return path;
      }
    }
  }
  return undefined;
}

test('no section the schema implements is listed as unimplemented anywhere in docs/', () => {
  const conf = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  const errors = readFileSync(join(REPO_ROOT, 'docs', 'errors.md'), 'utf8');
  const notImplemented = conf.slice(conf.indexOf('## 4. Sections Wharf does not implement'), conf.indexOf('## 5.'));
  assert.ok(notImplemented.length > 100, 'docs/configuration.md has its §4 "Sections Wharf does not implement"');
  // The first column of §4's table names what a user writes; the second, how Wharf reports it.
  const reported = notImplemented
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| written') && !line.startsWith('|---'))
    .map((line) => line.split('|')[2] ?? '');
  const errorsSentence = errors.match(/Sections Wharf does not implement[\s\S]*?\.(?=\s|$)/)?.[0] ?? '';
  assert.ok(errorsSentence, 'docs/errors.md says how unimplemented sections are reported');
  const claims = [...reported.flatMap(backquoted), ...backquoted(errorsSentence)];
  const wrong = claims
    .map((name) => [name, implementedSectionNamed(name)] as const)
    .filter(([, path]) => path !== undefined)
    .map(([name, path]) => `${name} (implemented as ${path})`);
  assert.deepEqual(wrong, []);
});

test('docs/ link only to files inside the repository, and every relative link resolves', async () => {
  const { readdirSync, existsSync } = await import('node:fs');
  const { resolve, relative, isAbsolute } = await import('node:path');
  const docs = join(REPO_ROOT, 'docs');
  const pages = [join(REPO_ROOT, 'README.md'), ...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f))];
  const bad: string[] = [];
  for (const page of pages) {
    const text = readFileSync(page, 'utf8');
    const name = relative(REPO_ROOT, page);
    for (const m of text.matchAll(/\]\(([^)\s#]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/i.test(target)) continue; // http:, https:, mailto:
      const abs = resolve(join(page, '..'), target);
      const rel = relative(REPO_ROOT, abs);
      if (rel.startsWith('..') || isAbsolute(rel)) bad.push(`${name}: link to ${target} leaves the repository`);
      else if (!existsSync(abs)) bad.push(`${name}: link to ${target}, which does not exist`);
    }
    // A path in backquotes that climbs out of the repository (`../shared/…`) is a link in disguise.
    for (const m of text.matchAll(/`(\.\.\/[^`]+)`/g)) bad.push(`${name}: names ${m[1]}, outside the repository`);
  }
  assert.deepEqual(bad, []);
});
