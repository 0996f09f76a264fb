import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HttpContext, ModuleDefinition, WorkerServices } from '../worker/module-api.js';
import { lazyHandlerModule } from './lazy-module.js';
import { BUILTIN_MODULES } from './index.js';

const ctx = {} as HttpContext;
const services = { poolName: () => 'P' } as unknown as WorkerServices;

test('a lazy module is imported on its first request, attached then, and called directly afterwards', async () => {
  const calls: string[] = [];
  let loads = 0;
  const real: ModuleDefinition = {
    name: 'ExampleModule',
    executeHandler: () => void calls.push('handler'),
    attach: (w) => void calls.push(`attach ${w.poolName()}`),
  };
  const lazy = lazyHandlerModule({ name: 'ExampleModule', load: async () => (loads++, real) });
  lazy.attach!(services);
  assert.equal(loads, 0, 'registration imports nothing');
  await Promise.all([lazy.executeHandler!(ctx), lazy.executeHandler!(ctx)]);
  assert.equal(loads, 1, 'concurrent first requests share one import');
  assert.deepEqual(calls, ['attach P', 'handler', 'handler']);
  assert.equal(lazy.executeHandler!(ctx), undefined, 'a synchronous handler stays synchronous once loaded');
});

test('a lazy module that loads something else fails its request instead of running it', async () => {
  const lazy = lazyHandlerModule({ name: 'CgiModule', load: async () => ({ name: 'Other', executeHandler: () => undefined }) });
  await assert.rejects(Promise.resolve(lazy.executeHandler!(ctx)), { code: 'MOD_FAILED' });
});

test('the lazily loaded built-in modules load the definitions their folders export', async () => {
  const folders: Record<string, string> = {
    DirectoryListingModule: './directory-listing/index.js',
    ServerSideIncludeModule: './server-side-include/index.js',
    CgiModule: './cgi/index.js',
    FastCgiModule: './fastcgi/index.js',
    iisnode: './iisnode/index.js',
  };
  for (const [name, folder] of Object.entries(folders)) {
    const ns = (await import(folder)) as Record<string, ModuleDefinition>;
    const real = Object.values(ns).find((v) => typeof v === 'object' && v !== null && (v as ModuleDefinition).name === name);
    assert.ok(real !== undefined, `${folder} exports ${name}`);
    const builtin = BUILTIN_MODULES.find((m) => m.name === name)!;
    assert.notEqual(builtin, real, `${name} is a stand-in until its first request`);
    assert.equal(typeof builtin.executeHandler, 'function');
    assert.equal(builtin.notifications, undefined);
  }
});
