import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultDocumentModule, DEFAULT_DOCUMENT_SECTION } from './index.js';
import { DirectoryListingModule } from '../directory-listing/index.js';
import { StaticFileModule } from '../static-file/index.js';
import { TestContext, makeTempDir, removeDir, runHandler, type TestContextOptions } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
after(() => removeDir(root));

mkdirSync(join(root, 'site'));
writeFileSync(join(root, 'site', 'index.htm'), '<p>index.htm</p>');
writeFileSync(join(root, 'site', 'index.html'), '<p>index.html</p>');
mkdirSync(join(root, 'site', 'Default.htm')); // a folder with a default document's name is skipped
mkdirSync(join(root, 'empty'));
mkdirSync(join(root, 'a b'));
writeFileSync(join(root, 'file.txt'), 'file');

const MODULES = [DefaultDocumentModule, DirectoryListingModule, StaticFileModule];
const HANDLER = { name: 'StaticFile', modules: ['DefaultDocumentModule', 'DirectoryListingModule', 'StaticFileModule'] };

async function run(url: string, options: Omit<TestContextOptions, 'url' | 'root'> = {}): Promise<TestContext> {
  const ctx = new TestContext({ root, url, handler: HANDLER, modules: MODULES, ...options });
  await runHandler(ctx, MODULES);
  return ctx;
}

test('a folder URL without its slash → 301 to URL + "/" keeping the query string', async () => {
  const ctx = await run('/site?x=1&y=2');
  const res = ctx.response;
  assert.equal(res.statusCode, 301);
  assert.equal(res.header('Location'), '/site/?x=1&y=2');
  assert.equal(res.header('Content-Type'), 'text/html; charset=UTF-8');
  assert.match(res.text(), /<h1>Object Moved<\/h1>.*<a HREF="\/site\/\?x=1&amp;y=2">here<\/a>/);
  assert.equal(res.header('Content-Length'), String(res.bodyLength));
  assert.equal(ctx.finished, true);
  assert.deepEqual(ctx.childUrls, []);
});

test('the Location is percent-encoded', async () => {
  const ctx = await run('/a%20b');
  assert.equal(ctx.response.statusCode, 301);
  assert.equal(ctx.response.header('Location'), '/a%20b/');
});

test('with the slash, the first existing file of the list runs as a child request (query kept)', async () => {
  const ctx = await run('/site/?q=1');
  assert.deepEqual(ctx.childUrls, ['/site/index.htm?q=1']);
  assert.equal(ctx.finished, true);
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.response.header('Content-Type'), 'text/html');
  assert.equal(ctx.response.text(), '<p>index.htm</p>');
});

test('the effective order of the files collection decides', async () => {
  const ctx = await run('/site/', {
    sections: { [DEFAULT_DOCUMENT_SECTION]: { children: { files: { items: [{ attributes: { value: 'index.html' } }, { attributes: { value: 'index.htm' } }] } } } },
  });
  assert.deepEqual(ctx.childUrls, ['/site/index.html']);
  assert.equal(ctx.response.text(), '<p>index.html</p>');
});

test('enabled=false, or no document found: the module does nothing and the listing module answers 403.14', async () => {
  const disabled = new TestContext({ root, url: '/site/', sections: { [DEFAULT_DOCUMENT_SECTION]: { attributes: { enabled: false } } } });
  await runHandler(disabled, [DefaultDocumentModule]);
  assert.equal(disabled.finished, false);
  assert.equal(disabled.response.statusCode, 200);
  assert.equal(disabled.response.bodyLength, 0);

  const none = new TestContext({ root, url: '/empty/' });
  await runHandler(none, [DefaultDocumentModule]);
  assert.equal(none.finished, false);
  assert.deepEqual(none.childUrls, []);

  const chain = await run('/empty/');
  assert.equal(chain.response.statusCode, 403);
  assert.equal(chain.response.subStatus, 14);
  assert.equal(chain.errorDetail?.module, 'DirectoryListingModule');
});

test('a file URL is not the module\'s business', async () => {
  const ctx = new TestContext({ root, url: '/file.txt' });
  await runHandler(ctx, [DefaultDocumentModule]);
  assert.equal(ctx.finished, false);
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.response.getHeader('Location'), undefined);
});
