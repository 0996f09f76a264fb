import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import { FakeConfigElement, makeTempDir, removeDir, runHandler, TestContext, type ElementSpec } from '../../../test/helpers/module-harness.js';
import { CgiModule } from './index.js';
import { cgiProcesses } from './cgi-processes.js';

const root = makeTempDir('wharf-cgi-module-');
after(() => removeDir(root));

function script(name: string, text: string, mode = 0o755): string {
  const path = join(root, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

script('hello.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nhello %s\\n" "$REQUEST_METHOD"\n');
script('plain.cgi', '#!/bin/sh\necho never\n', 0o644);
script('sleepy.cgi', '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nsleep 4545.5 &\nwait\n');
script('args.sh', 'printf "Content-Type: text/plain\\n\\n"\nfor a in "$@"; do printf "[%s]" "$a"; done\n');

interface Setup {
  readonly url: string;
  readonly scriptProcessor?: string;
  readonly notListedCgisAllowed?: boolean;
  readonly allowed?: readonly string[];
  readonly timeoutMs?: number;
  readonly uid?: number;
}

/** A request mapped to CgiModule, with the cgi sections the module reads. */
function context(s: Setup): TestContext {
  const ctx = new TestContext({ root, url: s.url, handler: { name: 'CGI', modules: ['CgiModule'] }, isLocal: true });
  const sections: Record<string, ConfigElement> = {
    'system.webServer/cgi': new FakeConfigElement('cgi', { attributes: { createProcessAsUser: true, createCGIWithNewConsole: false, timeout: s.timeoutMs ?? 60_000 } }),
    'system.webServer/security/isapiCgiRestriction': new FakeConfigElement('isapiCgiRestriction', {
      attributes: { notListedCgisAllowed: s.notListedCgisAllowed ?? false, notListedIsapisAllowed: false },
      items: (s.allowed ?? []).map((path): ElementSpec => ({ attributes: { path, allowed: true } })),
    }),
    'system.webServer/modules': new FakeConfigElement('modules', { items: [{ attributes: { name: 'CgiModule' } }] }),
  };
  const config = ctx.config;
  Object.defineProperty(ctx, 'config', { value: { ...config, section: (p: string) => sections[p] ?? config.section(p) } });
  Object.defineProperty(ctx, 'handler', {
    value: { ...ctx.handler!, scriptProcessor: s.scriptProcessor ?? '', element: new FakeConfigElement('add', { attributes: { allowPathInfo: false } }) },
  });
  if (s.uid !== undefined) ctx.identity = { name: 'alice', provider: 'pam', uid: s.uid, gid: s.uid, groups: [] } as unknown as TestContext['identity'];
  return ctx;
}

describe('CgiModule', () => {
  it('runs a listed script and answers with what it prints', async () => {
    const ctx = context({ url: '/hello.cgi', allowed: [join(root, 'hello.cgi')] });
    await runHandler(ctx, [CgiModule]);
    assert.equal(ctx.response.statusCode, 200);
    assert.equal(ctx.response.text(), 'hello GET\n');
    assert.equal(ctx.finished, true);
  });

  it('404.2 for a program isapiCgiRestriction does not allow; notListedCgisAllowed lets it run', async () => {
    const denied = context({ url: '/hello.cgi' });
    await runHandler(denied, [CgiModule]);
    assert.deepEqual([denied.response.statusCode, denied.response.subStatus], [404, 2]);
    assert.equal(denied.errorDetail?.hresult, 0x800704ec);
    assert.match(denied.errorDetail?.description ?? '', /isapiCgiRestriction with allowed="true"/);
    const open = context({ url: '/hello.cgi', notListedCgisAllowed: true });
    await runHandler(open, [CgiModule]);
    assert.equal(open.response.text(), 'hello GET\n');
  });

  it('a scriptProcessor is what the list must name, with its %s arguments', async () => {
    const sp = '/bin/sh "%s" %s';
    const listed = context({ url: '/args.sh?x+y%20z', scriptProcessor: sp, allowed: ['/bin/sh %s %s'] });
    await runHandler(listed, [CgiModule]);
    assert.equal(listed.response.text(), '[x][y z]');
    // Listing the script is not listing the program that runs it.
    const script = context({ url: '/args.sh', scriptProcessor: sp, allowed: [join(root, 'args.sh')] });
    await runHandler(script, [CgiModule]);
    assert.deepEqual([script.response.statusCode, script.response.subStatus], [404, 2]);
  });

  it('403.1 for a file the pool may not execute, 404.0 for a missing one', async () => {
    const plain = context({ url: '/plain.cgi', notListedCgisAllowed: true });
    await runHandler(plain, [CgiModule]);
    assert.deepEqual([plain.response.statusCode, plain.response.subStatus], [403, 1]);
    const missing = context({ url: '/missing.cgi', notListedCgisAllowed: true });
    await runHandler(missing, [CgiModule]);
    assert.deepEqual([missing.response.statusCode, missing.response.subStatus], [404, 0]);
  });

  it('500 when the scriptProcessor program cannot be started', async () => {
    const ctx = context({ url: '/args.sh', scriptProcessor: '/nonexistent/interpreter %s', notListedCgisAllowed: true });
    await runHandler(ctx, [CgiModule]);
    assert.equal(ctx.response.statusCode, 500);
    assert.equal(ctx.errorDetail?.hresult, 0x80070002);
  });

  it('says once that createProcessAsUser is not enforced, when the request runs as another account', async () => {
    const anonymous = context({ url: '/hello.cgi', notListedCgisAllowed: true });
    await runHandler(anonymous, [CgiModule]);
    assert.deepEqual(anonymous.logs, []);
    const first = context({ url: '/hello.cgi', notListedCgisAllowed: true, uid: 54321 });
    await runHandler(first, [CgiModule]);
    assert.equal(first.logs.length, 1);
    assert.match(first.logs[0]!.message, /^SECURITY: system\.webServer\/cgi: createProcessAsUser="true" is not enforced: .*"alice", uid 54321/);
    assert.equal(first.response.text(), 'hello GET\n', 'the program still runs, as the pool');
  });

  it('a client that leaves ends the program and its children', async () => {
    const ctx = context({ url: '/sleepy.cgi', notListedCgisAllowed: true });
    const done = runHandler(ctx, [CgiModule]);
    // Wait until the program runs, then the client goes.
    for (let i = 0; i < 200 && cgiProcesses.running === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(cgiProcesses.running, 1);
    await new Promise((r) => setTimeout(r, 100));
    for (const f of ctx.response.abortListeners) f();
    await done;
    assert.equal(ctx.response.aborted, true);
    assert.equal(cgiProcesses.running, 0);
  });

  it('502.1 after the cgi timeout', async () => {
    const ctx = context({ url: '/sleepy.cgi', notListedCgisAllowed: true, timeoutMs: 300 });
    await runHandler(ctx, [CgiModule]);
    assert.deepEqual([ctx.response.statusCode, ctx.response.subStatus, ctx.response.win32Status], [502, 1, 1460]);
    assert.equal(cgiProcesses.running, 0);
  });
});
