#!/usr/bin/env node
// The single test entry (`npm test` builds first, then runs this): unit tests beside the code
// (dist/src/**/*.test.js) and integration tests (dist/test/**/*.test.js), on node's test runner.
// Arguments narrow the run to files whose path contains one of them: `npm test -- static-file`.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const dist = join(root, 'dist');

function walk(dir, out) {
  let names;
  try { names = readdirSync(dir); } catch { return out; }
  for (const name of names) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = [...walk(join(dist, 'src'), []), ...walk(join(dist, 'test'), [])]
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched', filters.join(' '));
  process.exit(1);
}
// What the machine had before this run (pool users, groups, /run/wharf folders): test files
// remove only what the run added (test/helpers/machine-state.ts).
const stateDir = mkdtempSync(join(tmpdir(), 'wharf-test-run-'));
const stateFile = join(stateDir, 'machine-state.json');
const { pruneStaleTestState, saveMachineState } = await import(join(dist, 'test', 'helpers', 'machine-state.js'));
if (process.env.WHARF_TEST_PRUNE === '1') {
  // Leftovers of earlier runs (see machine-state.ts); opt-in, since a real Wharf may share pool names.
  const { removed, kept } = pruneStaleTestState(join(root, 'test', 'fixtures'));
  console.error(`pruned ${removed.length} leftovers of earlier test runs${kept.length ? `; kept (in use): ${kept.join(', ')}` : ''}`);
}
saveMachineState(stateFile);
const child = spawn(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, WHARF_TEST_MACHINE_STATE: stateFile },
});
child.on('exit', (code, signal) => {
  rmSync(stateDir, { recursive: true, force: true });
  process.exit(signal ? 1 : code ?? 1);
});
