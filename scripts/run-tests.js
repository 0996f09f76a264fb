#!/usr/bin/env node
// The single test entry (`npm test` builds first, then runs this): unit tests beside the code
// (dist/src/**/*.test.js) and integration tests (dist/test/**/*.test.js), on node's test runner.
// Arguments narrow the run to files whose path contains one of them: `npm test -- static-file`.
//
// Skips: a second reporter (scripts/skip-reporter.js) records every skipped test with its reason.
// The run ends with the list of skips and the totals; under CI=true a skip whose reason is not an
// allowed `needs <kind>: …` (test/helpers/skip.ts, CI_ALLOWED_SKIPS) counts as a failure, so a
// skip cannot hide a regression in CI.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
const { CI_ALLOWED_SKIPS, SKIP_REASON } = await import(pathToFileURL(join(dist, 'test', 'helpers', 'skip.js')).href);
const work = mkdtempSync(join(tmpdir(), 'wharf-test-run-'));
const skipsFile = join(work, 'skips.jsonl');
// What the machine had before this run (pool users, groups, /run/wharf folders): test files
// remove only what the run added (test/helpers/machine-state.ts).
const stateFile = join(work, 'machine-state.json');
const { pruneStaleTestState, saveMachineState } = await import(pathToFileURL(join(dist, 'test', 'helpers', 'machine-state.js')).href);
if (process.env.WHARF_TEST_PRUNE === '1') {
  // Leftovers of earlier runs (see machine-state.ts); opt-in, since a real Wharf may share pool names.
  const { removed, kept } = pruneStaleTestState(join(root, 'test', 'fixtures'));
  console.error(`pruned ${removed.length} leftovers of earlier test runs${kept.length ? `; kept (in use): ${kept.join(', ')}` : ''}`);
}
saveMachineState(stateFile);
const child = spawn(
  process.execPath,
  [
    '--test',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${pathToFileURL(join(root, 'scripts', 'skip-reporter.js')).href}`,
    `--test-reporter-destination=${skipsFile}`,
    ...files,
  ],
  { stdio: 'inherit', cwd: root, env: { ...process.env, WHARF_TEST_MACHINE_STATE: stateFile } },
);
child.on('exit', (code, signal) => {
  const status = signal ? 1 : code ?? 1;
  let records = [];
  try {
    records = readFileSync(skipsFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
  } catch {
    // the run died before the reporter wrote anything: node's own output says why
  }
  rmSync(work, { recursive: true, force: true });
  process.exit(report(records, status));
});

/** Print the skips and the totals; the exit status, failing a CI run on an unexpected skip. */
function report(records, status) {
  const ci = process.env['CI'] === 'true';
  const skips = records.filter((r) => r.kind === 'skip' || r.kind === 'todo');
  const totals = new Map(records.filter((r) => r.kind === 'total').map((r) => r.message.split(' ')));
  let unexpected = 0;
  if (skips.length > 0) {
    process.stdout.write(`\nSkipped (${skips.length}):\n`);
    for (const s of skips) {
      const kind = SKIP_REASON.exec(s.reason)?.[1];
      const allowed = s.kind === 'skip' && kind !== undefined && CI_ALLOWED_SKIPS.includes(kind);
      if (!allowed) unexpected++;
      const where = s.file ? relative(root, s.file).replace(/^dist\//, '').replace(/\.js$/, '.ts') : '?';
      const verdict = allowed ? 'allowed in CI' : ci ? 'NOT ALLOWED in CI: counted as a failure' : 'would fail under CI=true';
      process.stdout.write(`  ${s.kind} ${where} › ${s.name}\n      ${s.reason || '(no reason given)'} [${verdict}]\n`);
    }
    process.stdout.write('\n');
  }
  // The totals end the run, TAP-style, with unexpected CI skips counted in `fail`.
  const failures = Number(totals.get('fail') ?? 0) + (ci ? unexpected : 0);
  for (const [name, value] of totals) {
    if (name === 'fail') process.stdout.write(`# fail ${failures}${ci && unexpected > 0 ? ` (${unexpected} unexpected skip${unexpected === 1 ? '' : 's'} under CI=true)` : ''}\n`);
    else if (name === 'skipped') process.stdout.write(`# skipped ${value} (${skips.length - unexpected} allowed in CI, ${unexpected} not)\n`);
    else process.stdout.write(`# ${name} ${value}\n`);
  }
  return status !== 0 ? status : failures > 0 ? 1 : 0;
}
