import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePathPattern, preconditionHolds } from './handler-mapping.js';

const integrated = { managedRuntimeVersion: 'v4.0', managedPipelineMode: 'Integrated' };
const classic = { managedRuntimeVersion: '', managedPipelineMode: 'Classic' };

test('path patterns: *, *.ext, *. (extension-less), names and wildcards, case-insensitive', () => {
  const m = (pattern: string, name: string, path = '/' + name): boolean => compilePathPattern(pattern)(name, path);
  assert.equal(m('*', 'anything.txt'), true);
  assert.equal(m('*.php', 'INDEX.PHP'), true);
  assert.equal(m('*.php', 'index.phps'), false);
  assert.equal(m('*.php', '.php'), false);
  assert.equal(m('*.', 'extensionless'), true);
  assert.equal(m('*.', 'file.txt'), false);
  assert.equal(m('trace.axd', 'Trace.axd'), true);
  assert.equal(m('web?.config', 'web1.config'), true);
  assert.equal(m('handler.fcgi/*', 'x', '/handler.fcgi/x'), true);
});

test('preconditions as they evaluate in a Wharf worker (64-bit, no .NET runtime)', () => {
  assert.equal(preconditionHolds('', integrated), true);
  assert.equal(preconditionHolds('integratedMode', integrated), true);
  assert.equal(preconditionHolds('integratedMode', classic), false);
  assert.equal(preconditionHolds('classicMode', classic), true);
  assert.equal(preconditionHolds('bitness64', integrated), true);
  assert.equal(preconditionHolds('bitness32', integrated), false);
  // ASP.NET mappings never match: the worker hosts no CLR, whatever the pool names.
  assert.equal(preconditionHolds('integratedMode,runtimeVersionv4.0', integrated), false);
  assert.equal(preconditionHolds('classicMode,runtimeVersionv2.0,bitness64', classic), false);
});
