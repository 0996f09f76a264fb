import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryListingModule, DIRECTORY_BROWSE_SECTION, renderListing } from './index.js';
import { REQUEST_FILTERING_SECTION } from '../request-filtering/index.js';
import { TestContext, makeTempDir, removeDir, runHandler, type ElementSpec, type TestContextOptions } from '../../../test/helpers/module-harness.js';

// Listing dates are local time; pin the zone so the expected text is stable.
process.env.TZ = 'UTC';

const root = makeTempDir();
after(() => removeDir(root));

const WHEN = new Date('2026-11-22T02:43:00Z');
const LATER = new Date('2026-11-22T14:05:00Z');
function put(rel: string, content: string | undefined, when = WHEN): void {
  const p = join(root, rel);
  if (content === undefined) mkdirSync(p);
  else writeFileSync(p, content);
  utimesSync(p, when, when);
}
put('list', undefined);
put('list/b.txt', 'hello');
put('list/A.html', 'x'.repeat(1234), LATER);
put('list/sub', undefined);
put('list/web.config', '<configuration/>');
put('list/bin', undefined);
put('list/x&<y> z.txt', '1');
put('top.txt', 'top');

const ENABLED: Record<string, ElementSpec> = { [DIRECTORY_BROWSE_SECTION]: { attributes: { enabled: true } } };

async function list(url: string, options: Omit<TestContextOptions, 'url' | 'root'> = {}): Promise<TestContext> {
  const ctx = new TestContext({ root, url, sections: ENABLED, ...options });
  await runHandler(ctx, [DirectoryListingModule]);
  return ctx;
}

test('directoryBrowse disabled → 403.14 with IIS\'s description', async () => {
  const ctx = await list('/list/', { sections: {} });
  assert.equal(ctx.response.statusCode, 403);
  assert.equal(ctx.response.subStatus, 14);
  assert.equal(ctx.errorDetail?.module, 'DirectoryListingModule');
  assert.equal(ctx.errorDetail?.description, 'The Web server is configured to not list the contents of this directory.');
  assert.equal(ctx.finished, true);
});

test('enabled: the IIS-style page with columns, sorted case-insensitively, hidden segments left out', async () => {
  const ctx = await list('/list/', {
    headers: { host: 'www.example.com:8080' },
    sections: {
      ...ENABLED,
      [REQUEST_FILTERING_SECTION]: { children: { hiddenSegments: { items: [{ attributes: { segment: 'web.config' } }, { attributes: { segment: 'BIN' } }] } } },
    },
  });
  const res = ctx.response;
  assert.equal(res.statusCode, 200);
  assert.equal(res.header('Content-Type'), 'text/html; charset=utf-8');
  const expected =
    '<html><head><title>www.example.com - /list/</title></head><body><H1>www.example.com - /list/</H1><hr>\r\n\r\n<pre>' +
    '<A HREF="/">[To Parent Directory]</A><br><br>' +
    '11/22/2026  2:05 PM         1234 <A HREF="/list/A.html">A.html</A><br>' +
    '11/22/2026  2:43 AM            5 <A HREF="/list/b.txt">b.txt</A><br>' +
    '11/22/2026  2:43 AM        &lt;dir&gt; <A HREF="/list/sub/">sub</A><br>' +
    '11/22/2026  2:43 AM            1 <A HREF="/list/x&amp;%3Cy%3E%20z.txt">x&amp;&lt;y&gt; z.txt</A><br>' +
    '</pre><hr></body></html>';
  assert.equal(res.text(), expected);
  assert.equal(res.header('Content-Length'), String(Buffer.byteLength(expected)));
  assert.equal(ctx.finished, true);
});

test('showFlags shape the columns: no Extension hides file extensions, LongDate, None', () => {
  const entries = [
    { name: 'a.txt', isDirectory: false, size: 42, mtimeMs: WHEN.getTime() },
    { name: 'd.v1', isDirectory: true, size: 0, mtimeMs: WHEN.getTime() },
  ];
  const body = (flags: string[]): string => {
    const html = renderListing(entries, { host: 'h', path: '/', flags: new Set(flags) });
    return html.slice(html.indexOf('<pre>') + 5, html.indexOf('</pre>'));
  };
  assert.equal(body(['Date', 'Size']), '11/22/2026           42 <A HREF="/a.txt">a</A><br>11/22/2026        &lt;dir&gt; <A HREF="/d.v1/">d.v1</A><br>');
  assert.equal(body(['LongDate', 'Time', 'Extension']), '    Sunday, November 22, 2026  2:43 AM <A HREF="/a.txt">a.txt</A><br>    Sunday, November 22, 2026  2:43 AM <A HREF="/d.v1/">d.v1</A><br>');
  assert.equal(body([]), '<A HREF="/a.txt">a</A><br><A HREF="/d.v1/">d.v1</A><br>');
});

test('the site root has no parent link', async () => {
  const ctx = await list('/');
  assert.doesNotMatch(ctx.response.text(), /To Parent Directory/);
  assert.match(ctx.response.text(), /<A HREF="\/list\/">list<\/A>/);
  assert.match(ctx.response.text(), /<title>localhost - \/<\/title>/);
});

test('HEAD: same headers, no body; other verbs → 405', async () => {
  const head = await list('/list/', { method: 'HEAD' });
  assert.equal(head.response.statusCode, 200);
  assert.ok(Number(head.response.header('Content-Length')) > 0);
  assert.equal(head.response.bodyLength, 0);
  const post = await list('/list/', { method: 'POST' });
  assert.equal(post.response.statusCode, 405);
});

test('without the trailing slash → 301; a file is not the module\'s business', async () => {
  const ctx = await list('/list');
  assert.equal(ctx.response.statusCode, 301);
  assert.equal(ctx.response.header('Location'), '/list/');
  const file = await list('/top.txt');
  assert.equal(file.finished, false);
  assert.equal(file.response.bodyLength, 0);
});
