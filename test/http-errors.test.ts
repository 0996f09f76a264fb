/**
 * httpErrors responseMode="ExecuteURL" and httpRedirect end to end, on a real Wharf started from
 * test/fixtures/http-errors: error pages that are a static file, a default document, a rewritten
 * URL and a hosted Node.js application, keeping the original status; pages that fail falling back
 * to the built-in page; redirects of a removed folder, exact destinations with IIS's variables,
 * childOnly, wildcards, and the embedded default configuration's HttpRedirectionModule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, FIXTURES, REPO_ROOT, requireTool, run, startWharf, type WharfProcess } from './helpers/wharf.js';
import { send, type Reply, type SendOptions } from './helpers/node-apps.js';

const HOST = 'errors.test';
const SHIPPED = (status: number): string => readFileSync(join(REPO_ROOT, 'assets', 'custerr', 'en-US', `${status}.htm`), 'utf8');
const PAGE_404 = '<h1>custom 404 page</h1>\n';

describe('httpErrors ExecuteURL and httpRedirect', () => {
  let w: WharfProcess;
  const get = (path: string, o: Omit<SendOptions, 'path'> = {}): Promise<Reply> => send(w.port, HOST, { path, ...o });
  const logged = (re: RegExp): Promise<string> => eventually(() => w.logLines(1).find((l) => re.test(l)), 10000);

  before(async () => {
    w = await startWharf({ fixture: 'http-errors' });
  });
  after(async () => {
    await w?.stop();
  });

  describe('httpErrors responseMode="ExecuteURL"', () => {
    it("a static page: the original 404 with the page's body and type; the log keeps the client's URL and status", async () => {
      const r = await get('/nothere.html?a=1');
      assert.equal(r.status, 404);
      assert.equal(r.headers['content-type'], 'text/html');
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(PAGE_404)));
      assert.equal(r.text(), PAGE_404);
      await logged(/ GET \/nothere\.html a=1 .* 404 0 2 /);
      // The page's own URL is an ordinary file.
      const page = await get('/errors/404.html');
      assert.equal(page.status, 200);
      assert.equal(page.text(), PAGE_404);
    });

    it('a default document and a rewritten URL can be the page', async () => {
      // /docs/ has no default document and browsing is off: 403.14 → "/errors/" → errors/index.html.
      const folder = await get('/docs/');
      assert.equal(folder.status, 403);
      assert.equal(folder.text(), '<h1>403 page from the default document</h1>\n');
      await logged(/ GET \/docs\/ - .* 403 14 /);
      // 404.7 (a denied extension) → "/pages/not-allowed", which a URL Rewrite rule maps to a file.
      const denied = await get('/file.secret');
      assert.equal(denied.status, 404);
      assert.equal(denied.text(), '<h1>rewritten error page</h1>\n');
      await logged(/ GET \/file\.secret - .* 404 7 /);
    });

    it('a hosted Node.js application as the page sees its own URL with IIS\'s "404;<original URL>" query; a query in the path is kept', async () => {
      const r = await get('/nodeerr/x.htm?a=1');
      assert.equal(r.status, 404);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.deepEqual(r.json(), { page: 'node error page', url: `/app/notfound?404;http://${HOST}:${w.port}/nodeerr/x.htm?a=1` });
      await logged(/ GET \/nodeerr\/x\.htm a=1 .* 404 0 /);
      const own = await get('/nodequery/y.htm');
      assert.equal(own.status, 404);
      assert.deepEqual(own.json(), { page: 'node error page', url: '/app/notfound?from=config' });
    });

    it("existingResponse: Auto and PassThrough keep an application's own error body, Replace runs the page", async () => {
      const auto = await get('/app/own404');
      assert.equal(auto.status, 404);
      assert.equal(auto.text(), "the application's own 404");
      const pass = await get('/app/pass/own404');
      assert.equal(pass.status, 404);
      assert.equal(pass.text(), "the application's own 404");
      // PassThrough with nothing to pass (the core's empty 404): the page runs.
      const empty = await get('/pass/nothere.html');
      assert.equal(empty.status, 404);
      assert.equal(empty.text(), PAGE_404);
      const replace = await get('/app/replace/own404');
      assert.equal(replace.status, 404);
      assert.equal(replace.headers['content-type'], 'text/html');
      assert.equal(replace.text(), PAGE_404);
    });

    it('a page that fails never gets an error page of its own: the built-in page for the original status', async () => {
      // The page is missing (itself a 404).
      const missing = await get('/missingpage/a.html');
      assert.equal(missing.status, 404);
      assert.equal(missing.text(), SHIPPED(404));
      await w.waitForOutput(/ExecuteURL page \/missingpage\/nothere\.html answered 404\.0; sending the built-in page for 404/);
      // The page answers 500.
      const failing = await get('/page500/a.html');
      assert.equal(failing.status, 404);
      assert.equal(failing.text(), SHIPPED(404));
      assert.doesNotMatch(failing.text(), /the error page failed/);
      await w.waitForOutput(/ExecuteURL page \/app\/fail answered 500\.0/);
      // The page belongs to an application of another pool: IIS's 403.18.
      const cross = await get('/crosspool/a.html');
      assert.equal(cross.status, 403);
      assert.equal(cross.text(), SHIPPED(403));
      await logged(/ GET \/crosspool\/a\.html - .* 403 18 /);
      // Not a URL of the site: IIS accepts only a server-relative URL for ExecuteURL.
      const absolute = await get('/absolute/a.html');
      assert.equal(absolute.status, 404);
      assert.equal(absolute.text(), SHIPPED(404));
      await w.waitForOutput(/ExecuteURL path "http:\/\/example\.com\/404\.html" is not a URL of this site/);
      // The server keeps serving.
      assert.equal((await get('/')).status, 200);
    });

    it('defaultPath with defaultResponseMode="ExecuteURL" applies to statuses without an entry', async () => {
      const r = await get('/defaults/a.html');
      assert.equal(r.status, 404);
      assert.equal(r.text(), '<h1>default error page</h1>\n');
    });

    it('a page large enough to stream still goes out with the original status', async () => {
      const big = Buffer.alloc(300 * 1024, 'x');
      big.write('<h1>big</h1>');
      writeFileSync(join(w.root, 'wwwroot', 'errors', 'big.html'), big);
      const r = await get('/big/a.html');
      assert.equal(r.status, 404);
      assert.equal(r.body.length, big.length);
      assert.ok(r.body.equals(big));
    });

    it("the client's preconditions and ranges do not reach the page; HEAD gets the page's headers only", async () => {
      const r = await get('/nothere.html', { headers: { 'if-none-match': '*', 'if-modified-since': new Date().toUTCString(), range: 'bytes=0-3' } });
      assert.equal(r.status, 404);
      assert.equal(r.text(), PAGE_404);
      const head = await get('/nothere.html', { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal(head.headers['content-length'], String(Buffer.byteLength(PAGE_404)));
      assert.equal(head.body.length, 0);
    });

    it('the listener cache keeps neither the error response nor a wrong body under the page URL', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await get('/cached-miss.html')).text(), PAGE_404);
      for (let i = 0; i < 3; i++) assert.equal((await get('/errors/404.html')).status, 200);
      const changed = '<h1>custom 404 page, edited</h1>\n';
      writeFileSync(join(w.root, 'wwwroot', 'errors', '404.html'), changed);
      // Once the page's own URL shows the edit, the missing URL must too: it was never cached.
      await eventually(async () => (await get('/errors/404.html')).text() === changed, 10000);
      const after = await get('/cached-miss.html');
      assert.equal(after.status, 404);
      assert.equal(after.text(), changed);
      writeFileSync(join(w.root, 'wwwroot', 'errors', '404.html'), PAGE_404);
      await eventually(async () => (await get('/errors/404.html')).text() === PAGE_404, 10000);
    });
  });

  describe('httpRedirect', () => {
    it('a folder whose content is gone (web.config): every URL below it, path kept, 301, IIS body', async () => {
      const r = await get('/old/a/b.html?x=1');
      assert.equal(r.status, 301);
      assert.equal(r.headers['location'], '/new/a/b.html');
      assert.equal(r.headers['content-type'], 'text/html; charset=UTF-8');
      assert.match(r.text(), /<h1>Object Moved<\/h1>This document may be found <a HREF="\/new\/a\/b\.html">here<\/a>/);
      await logged(/ GET \/old\/a\/b\.html x=1 .* 301 0 0 /);
      const folder = await get('/old');
      assert.equal(folder.status, 301);
      assert.equal(folder.headers['location'], '/new');
    });

    it('exactDestination with $V$Q from an applicationHost <location>: 308', async (t) => {
      if (!requireTool('curl').ok) return t.skip('curl missing');
      const r = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', `Host: ${HOST}`, `http://127.0.0.1:${w.port}/moved/x/y.html?z=1&w=2`]);
      assert.equal(r.stdout, '308 http://new.example/moved/x/y.html?z=1&w=2');
    });

    it('childOnly with the destination below the folder: redirected once (307), the destination served', async () => {
      const r = await get('/docs2/page.html');
      assert.equal(r.status, 307);
      assert.equal(r.headers['location'], '/docs2/v2/page.html');
      const dest = await get(r.headers['location'] as string);
      assert.equal(dest.status, 200);
      assert.equal(dest.text(), '<h1>v2 page</h1>\n');
    });

    it('wildcard entries: *.php to one page, captures into the destination, other files served', async () => {
      const php = await get('/legacy/x/y.php?q=1');
      assert.equal(php.status, 302);
      assert.equal(php.headers['location'], '/index.html');
      const item = await get('/legacy/cat/tools/item-42.html');
      assert.equal(item.status, 302);
      assert.equal(item.headers['location'], '/shop/tools?id=42');
      const kept = await get('/legacy/keep.html');
      assert.equal(kept.status, 200);
      assert.equal(kept.text(), '<h1>kept</h1>\n');
    });

    it('a destination equal to the URL itself is not sent (it would loop): the file is served, a warning logged', async () => {
      const r = await get('/self.html');
      assert.equal(r.status, 200);
      assert.equal(r.text(), '<h1>self</h1>\n');
      await w.waitForOutput(/httpRedirect: \/self\.html would redirect to itself/);
    });
  });
});

describe('httpRedirect in the embedded default configuration', () => {
  it('HttpRedirectionModule is registered: a web.config in the served folder redirects the site', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-redirect-'));
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, 'web.config'),
      '<configuration><system.webServer><httpRedirect enabled="true" destination="https://www.example.org/" /></system.webServer></configuration>',
    );
    const w = await startWharf({ fixture: join(FIXTURES, 'embedded'), embedded: true, args: ['--root', dir] });
    try {
      const r = await send(w.port, 'localhost', { path: '/some/page.html?x=1' });
      assert.equal(r.status, 302);
      assert.equal(r.headers['location'], 'https://www.example.org/some/page.html');
      assert.doesNotMatch(w.output(), /HttpRedirectionModule is not available/);
    } finally {
      await w.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
