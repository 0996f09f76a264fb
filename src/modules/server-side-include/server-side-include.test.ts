/**
 * ServerSideIncludeModule's handler on real files, through the module harness: backpressure,
 * the per-request bounds, pages and includes that are not regular files, and #exec cmd's
 * timeout and client-abort handling with real processes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, RecordingResponse, removeDir, TestContext, type TestContextOptions } from '../../../test/helpers/module-harness.js';
import { needs, tool } from '../../../test/helpers/skip.js';
import { ServerSideIncludeModule, SSI_LIMITS, W3SVC_PARAMETERS_ENV } from './index.js';
import { containedPath } from './ssi-processor.js';

// The machine-wide switch #exec cmd needs, read by the module at its first request in this process.
process.env[W3SVC_PARAMETERS_ENV] = 'SSIEnableCmdDirective=1';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) removeDir(d);
});

function site(files: Record<string, string | Buffer>): string {
  const root = makeTempDir('wharf-ssi-');
  dirs.push(root);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), content);
  }
  return root;
}

const HANDLER = { name: 'SSINC-shtml', modules: ['ServerSideIncludeModule'] };

async function serve(root: string, url: string, options: Partial<TestContextOptions> = {}): Promise<TestContext> {
  const ctx = new TestContext({ root, url, handler: HANDLER, ...options });
  await ServerSideIncludeModule.executeHandler!(ctx);
  return ctx;
}

test('the page streams with backpressure, as text/html, and is never kernel-cached', async () => {
  const chunk = 'x'.repeat(1000);
  const root = site({ 'p.shtml': `<!--#include file="a.inc"-->|`.repeat(50), 'a.inc': chunk });
  const response = new RecordingResponse({ highWaterMark: 4096 });
  const ctx = await serve(root, '/p.shtml', { response });
  assert.ok(ctx.finished);
  assert.equal(response.text(), `${chunk}|`.repeat(50));
  assert.equal(response.header('content-type'), 'text/html');
  assert.ok(response.drainCount > 5, `waited for the channel ${response.drainCount} times`);
  assert.equal(response.kernelCache.policy, 'disabled');
});

test('a MIME map entry for the extension gives the Content-Type', async () => {
  const root = site({ 'p.stm': 'x' });
  const ctx = await serve(root, '/p.stm', {
    sections: { 'system.webServer/staticContent': { items: [{ attributes: { fileExtension: '.stm', mimeType: 'text/html; charset=utf-8' } }] } },
  });
  assert.equal(ctx.response.header('content-type'), 'text/html; charset=utf-8');
});

test('processing stops after the most directives a response may have, with one message', async () => {
  const root = site({ 'p.shtml': '<!--#echo var="REQUEST_METHOD"-->'.repeat(SSI_LIMITS.maxDirectives + 10) + 'tail' });
  const ctx = await serve(root, '/p.shtml');
  const text = ctx.response.text();
  assert.ok(text.startsWith('GET'.repeat(SSI_LIMITS.maxDirectives)));
  assert.match(text.slice(3 * SSI_LIMITS.maxDirectives), /^<b>Error processing SSI file '\/p\.shtml'<\/b>: the page has more than 4096 SSI directives; processing stops here\.$/);
  assert.ok(ctx.logs.some((l) => l.level === 'warn' && /more than 4096 SSI directives/.test(l.message)));
});

test('processing stops before the output passes its bound; a document over its own bound is not read', async () => {
  const big = Buffer.alloc(SSI_LIMITS.maxDocumentBytes, 'a');
  const root = site({ 'p.shtml': '<!--#include file="big.txt"-->'.repeat(5) + 'tail', 'big.txt': big, 'huge.shtml': Buffer.alloc(SSI_LIMITS.maxDocumentBytes + 1, 'b'), 'inc.shtml': '[<!--#include file="huge.shtml"-->]' });
  const ctx = await serve(root, '/p.shtml');
  const body = ctx.response.body();
  const copies = SSI_LIMITS.maxOutputBytes / big.length;
  assert.equal(copies, 4);
  assert.ok(body.subarray(0, copies * big.length).every((b) => b === 0x61));
  assert.match(body.subarray(copies * big.length).toString(), /^<b>Error processing SSI file '\/big\.txt'<\/b>: the page's output would be larger than 67108864 bytes; processing stops here\.$/);
  const page = await serve(root, '/huge.shtml');
  assert.equal(page.response.statusCode, 500);
  assert.match(page.errorDetail!.description, /larger than 16777216 bytes/);
  const inc = await serve(root, '/inc.shtml');
  assert.match(inc.response.text(), /the file 'huge\.shtml' is larger than 16777216 bytes/);
});

test('a FIFO where an include should be neither blocks nor is read', async (t) => {
  if (!needs(t, tool('mkfifo', 'coreutils'))) return;
  const root = site({ 'p.shtml': '[<!--#include file="pipe"-->]' });
  assert.equal(spawnSync('mkfifo', [join(root, 'pipe')]).status, 0);
  const ctx = await serve(root, '/p.shtml');
  assert.match(ctx.response.text(), /'pipe' is not a file/);
});

test('containment: inside the root as written and once links are resolved', async () => {
  const outer = site({ 'secret.txt': 's', 'www/..x.inc': 'dots in a name', 'www/a.inc': 'a' });
  const root = join(outer, 'www');
  symlinkSync(join(outer, 'secret.txt'), join(root, 'out.txt'));
  symlinkSync(join(root, 'a.inc'), join(root, 'in.txt'));
  assert.ok('real' in (await containedPath(join(root, '..x.inc'), root)), 'a name starting with .. is not a parent');
  assert.deepEqual(await containedPath(join(root, 'in.txt'), root), { real: join(realpathSync(root), 'a.inc') });
  assert.deepEqual(await containedPath(join(root, '..', 'secret.txt'), root), { problem: 'outside' });
  assert.deepEqual(await containedPath(join(root, 'out.txt'), root), { problem: 'outside' });
  assert.deepEqual(await containedPath(join(root, 'none.txt'), root), { problem: 'missing' });
});

test('a missing page is 404.0 from the module', async () => {
  const root = site({});
  const ctx = await serve(root, '/gone.shtml');
  assert.equal(ctx.response.statusCode, 404);
  assert.equal(ctx.errorDetail?.module, 'ServerSideIncludeModule');
});

test('#config errmsg and timefmt are bounded and checked', async () => {
  const root = site({ 'p.shtml': `<!--#config errmsg="${'e'.repeat(1025)}"-->|<!--#config timefmt="%Q"-->|<!--#config timefmt="%Y"--><!--#flastmod file="p.shtml"-->` });
  const text = (await serve(root, '/p.shtml')).response.text();
  const [errmsg, timefmt, year] = text.split('|');
  assert.match(errmsg!, /errmsg is longer than 1024 bytes/);
  assert.match(timefmt!, /unknown token %Q/);
  assert.equal(year, String(new Date().getFullYear()));
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

async function pidIn(file: string): Promise<number> {
  for (let i = 0; i < 250; i++) {
    try {
      const pid = Number(readFileSync(file, 'utf8'));
      if (pid > 0) return pid;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${file} was never written`);
}

test('#exec cmd past the cgi timeout: the command and what it started are killed, the page goes on', async () => {
  const root = site({ 'p.shtml': '<!--#exec cmd="echo start; sleep 30 & echo $! > bg.pid; wait"-->|after' });
  const started = Date.now();
  const ctx = await serve(root, '/p.shtml', { sections: { 'system.webServer/cgi': { attributes: { timeout: 300 } } } });
  assert.ok(Date.now() - started < 5000);
  const [out, rest] = ctx.response.text().split('|');
  assert.match(out!, /^start\n<b>Error processing SSI file '\/p\.shtml'<\/b>: the command did not finish within 0\.3 seconds \(cgi timeout\); it was stopped\.$/);
  assert.equal(rest, 'after');
  assert.ok(await gone(await pidIn(join(root, 'bg.pid'))), 'the background sleep was killed with its group');
});

test('#exec cmd ends when the client goes away, and so does the page', async () => {
  const root = site({ 'p.shtml': '<!--#exec cmd="echo $$ > sh.pid; sleep 30"-->after' });
  const response = new RecordingResponse();
  const started = Date.now();
  const serving = serve(root, '/p.shtml', { response });
  const pid = await pidIn(join(root, 'sh.pid'));
  assert.equal(response.abortListeners.length, 1);
  for (const l of response.abortListeners) l();
  const ctx = await serving;
  assert.ok(Date.now() - started < 5000);
  assert.ok(await gone(pid));
  assert.equal(ctx.response.text(), '', 'nothing more is written for a client that left');
});

test('#exec cmd is refused where ssiExecDisable is true, even with SSIEnableCmdDirective', async () => {
  const root = site({ 'p.shtml': '<!--#exec cmd="echo no"-->' });
  const ctx = await serve(root, '/p.shtml', { sections: { 'system.webServer/serverSideInclude': { attributes: { ssiExecDisable: true } } } });
  assert.match(ctx.response.text(), /#EXEC calls have been disabled for this virtual path/);
});
