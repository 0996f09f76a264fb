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
