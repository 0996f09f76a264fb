/**
 * URL Rewrite's inbound rules as IIS runs them: an unmodified Express app behind Azure App
 * Service's iisnode web.config (every URL that is not a file in /public rewritten to server.js),
 * redirects, rewrite maps, conditions on headers, CustomResponse, AbortRequest, server variables
 * and allowedServerVariables, server-level global rules, a sub-folder's rules relative to their
 * folder, and a broken rule answering 500.50 while the rest of the site serves.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { tempDir, eventually, FIXTURES, rawRequest, REPO_ROOT, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { APPS, ensureAppInstalled, send, type SendOptions } from './helpers/node-apps.js';
import { needs, pathExists } from './helpers/skip.js';

describe('URL Rewrite inbound rules', () => {
  let wharf: WharfProcess;
  const azure = (o: SendOptions) => send(wharf.port, 'azure.test', o);
  const stat = (o: SendOptions) => send(wharf.port, 'static.test', o);

  before(async () => {
    ensureAppInstalled('express');
    wharf = await startWharf({ fixture: 'rewrite', files: { 'www-azure': 'apps/express', 'www-pathinfo': 'apps/express' } });
    // Git cannot keep a folder named .git in the fixture: the global rule's target is made here.
    mkdirSync(join(wharf.root, 'www-static', '.git'), { recursive: true });
    writeFileSync(join(wharf.root, 'www-static', '.git', 'config'), '[core]\n');
  });
  after(async () => {
    await wharf?.stop();
  });

  it('routes every non-file URL to server.js; the app sees the URL the client sent', async () => {
    const r = await azure({ path: '/users/7?x=1' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { id: '7', query: { x: '1' } });
    const home = await azure({ path: '/' });
    assert.equal(home.status, 200);
    assert.equal(home.text(), 'hello world');
    // Express's own 404 for a route it lacks: the app answered, not IIS.
    const missing = await azure({ path: '/nowhere' });
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.json(), { error: 'not found', path: '/nowhere' });
    // The log keeps the client's URL (logRewrittenUrl is false by default).
    await eventually(() => wharf.logLines(1).some((l) => l.includes(' /users/7 x=1 ') && l.includes(' 200 ')));
  });

  it('serves files of /public as static content: the app does not answer them', async () => {
    const r = await azure({ path: '/css/site.css' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/css');
    assert.equal(r.text(), 'body { color: teal }\n');
    // Express marks every answer of its own (X-Powered-By); the static file has no such mark.
    assert.equal((await azure({ path: '/' })).headers['x-powered-by'], 'Express');
    assert.equal(r.headers['x-powered-by'], undefined);
  });

  it('sets a request header for the app from a rule, unless the client sent one (replace="false")', async () => {
    const set = (await azure({ path: '/headers' })).json() as { test: string | null };
    assert.equal(set.test, 'from-rewrite');
    const kept = (await azure({ path: '/headers', headers: { 'x-test': 'mine' } })).json() as { test: string | null };
    assert.equal(kept.test, 'mine');
  });

  it('redirects with back-references, functions and the query string appended', async () => {
    const r = await azure({ path: '/old/Some-Page?a=1' });
    assert.equal(r.status, 302);
    assert.equal(r.headers['location'], '/new/some-page?a=1');
    assert.match(r.text(), /Object Moved/);
  });

  it('looks values up in a rewrite map inside a condition', async () => {
    const r = await azure({ path: '/legacy/old-users?dropped=1' });
    assert.equal(r.status, 301);
    assert.equal(r.headers['location'], '/users');
    // No map entry: the condition fails, the rule does not apply, the app answers.
    const other = await azure({ path: '/legacy/unknown' });
    assert.equal(other.status, 404);
    assert.deepEqual(other.json(), { error: 'not found', path: '/legacy/unknown' });
  });

  it('answers a CustomResponse only when its header condition holds', async () => {
    const maven = await rawRequest(wharf.port, 'GET /org/apache/x.pom HTTP/1.1\r\nHost: azure.test\r\nUser-Agent: Artifactory/7.1\r\nConnection: close\r\n\r\n');
    assert.match(maven, /^HTTP\/1\.1 400 Bad request\r\n/);
    const browser = await azure({ path: '/org/apache/x.pom', headers: { 'user-agent': 'Mozilla/5.0' } });
    assert.equal(browser.status, 404);
    assert.deepEqual(browser.json(), { error: 'not found', path: '/org/apache/x.pom' });
  });

  it('AbortRequest closes the connection without a response; the site keeps serving', async () => {
    // The server must close the socket itself: a client that gives up on a hung server also ends
    // up with no bytes, so the close is awaited explicitly, within a bound.
    const started = performance.now();
    const bytes = await new Promise<number>((resolve, reject) => {
      const s = connect(wharf.port, '127.0.0.1', () => s.write('GET /wp-login.php HTTP/1.1\r\nHost: azure.test\r\n\r\n'));
      let got = 0;
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error('the server neither answered nor closed the connection within 5 s'));
      }, 5000);
      s.on('data', (d: Buffer) => (got += d.length));
      s.on('error', () => undefined); // a reset is a close too
      s.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
    });
    const ms = performance.now() - started;
    assert.equal(bytes, 0, 'no response bytes');
    assert.ok(ms < 5000, `closed after ${ms.toFixed(0)} ms`);
    // LogRequest still runs for an aborted request (IIS: "abort = no bytes, still logged").
    await eventually(() => wharf.logLines(1).some((l) => / GET \/wp-login\.php - \d+ - 127\.0\.0\.1 /.test(l)));
    assert.equal((await azure({ path: '/' })).status, 200);
  });

  it('a file the rules led to is kernel-cached under the client\'s URL, unless a rule looked at more than the URL', async () => {
    const wharfCli = async (...args: string[]): Promise<void> => {
      const r = await run(process.execPath, [WHARF_BIN, ...args, '--config', wharf.configFile]);
      assert.equal(r.code, 0, r.stderr);
    };
    // Files copied in the last 2 s are not cached yet; then 2 hits make an entry.
    await new Promise((r) => setTimeout(r, 2100));
    for (let i = 0; i < 3; i++) {
      assert.equal((await azure({ path: '/css/site.css' })).status, 200);
      // Under org/ the Maven rule matched, and its condition read User-Agent: never cached.
      assert.equal((await azure({ path: '/org/readme.txt', headers: { 'user-agent': 'Mozilla/5.0' } })).text(), 'not a maven repository\n');
    }
    await wharfCli('stop', 'apppool', 'AzurePool');
    try {
      // Only the cache can answer while the pool is stopped.
      const hit = await azure({ path: '/css/site.css' });
      assert.equal(hit.status, 200);
      assert.equal(hit.text(), 'body { color: teal }\n');
      assert.equal((await azure({ path: '/org/readme.txt', headers: { 'user-agent': 'Mozilla/5.0' } })).status, 503);
      // The file the rules tested is a dependency: removing it drops the entry.
      rmSync(join(wharf.root, 'www-azure', 'public', 'css', 'site.css'));
      await eventually(async () => (await azure({ path: '/css/site.css' })).status === 503, 5000);
    } finally {
      await wharfCli('start', 'apppool', 'AzurePool');
      writeFileSync(join(wharf.root, 'www-azure', 'public', 'css', 'site.css'), 'body { color: teal }\n');
    }
  });

  it('a rule that does not compile answers 500.50 below its folder only', async () => {
    const r = await azure({ path: '/broken/anything' });
    assert.equal(r.status, 500);
    assert.equal((await azure({ path: '/users/1' })).status, 200);
    await eventually(() => wharf.logLines(1).some((l) => l.includes(' /broken/anything ') && / 500 50 /.test(l)));
    await eventually(() => /500\.50 for \/broken\/anything: rule "Unbalanced" .*web\.config:\d+\): the pattern "\(unclosed"/.test(wharf.output()));
  });

  it("a sub-folder's rules see the URL below their folder and rewrite relative to it", async () => {
    const r = await stat({ path: '/content/article/42' });
    assert.equal(r.status, 200);
    assert.equal(r.text(), 'article page\n');
    // Outside /content the rule does not exist.
    assert.equal((await stat({ path: '/article/42' })).status, 404);
    // logRewrittenUrl="true": the W3C line has the rewritten URL, not the client's.
    await eventually(() => wharf.logLines(2).some((l) => l.includes(' /content/show.txt id=42 ') && l.includes(' 200 ')));
    assert.ok(!wharf.logLines(2).some((l) => l.includes(' /content/article/42 ')));
  });

  it('an edited rule applies live, without a restart or a recycle', async () => {
    const file = join(wharf.root, 'www-static', 'content', 'web.config');
    const before = readFileSync(file, 'utf8');
    try {
      writeFileSync(file, before.replace('^article/(\\d+)$', '^post/(\\d+)$'));
      await eventually(async () => (await stat({ path: '/content/post/7' })).status === 200, 8000);
      assert.equal((await stat({ path: '/content/article/7' })).status, 404);
    } finally {
      writeFileSync(file, before);
    }
    await eventually(async () => (await stat({ path: '/content/article/7' })).status === 200, 8000);
  });

  it('a distributed rule may set only the server variables applicationHost.config allows (500.50)', async () => {
    const r = await stat({ path: '/content/secret' });
    assert.equal(r.status, 500);
    await eventually(() => wharf.logLines(2).some((l) => l.includes(' /content/secret ') && / 500 50 /.test(l)));
    assert.match(wharf.output(), /HTTP_X_NOT_ALLOWED, which is not allowed to be set/);
  });

  it('a rewrite to server.js/{R:1} reaches the iisnode handler mapped to server.js (PATH_INFO)', async () => {
    const r = await send(wharf.port, 'pathinfo.test', { path: '/users/5?y=2' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { id: '5', query: { y: '2' } });
    assert.equal((await send(wharf.port, 'pathinfo.test', { path: '/' })).text(), 'hello world');
  });

  it('global rules run for every site before its own rules', async () => {
    const git = await rawRequest(wharf.port, 'GET /.git/config HTTP/1.1\r\nHost: static.test\r\nConnection: close\r\n\r\n');
    assert.match(git, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.doesNotMatch(git, /\[core\]/);
    const alsoAzure = await azure({ path: '/x/.git/HEAD' });
    assert.equal(alsoAzure.status, 404);
    assert.equal(typeof alsoAzure.headers['content-type'] === 'string' && alsoAzure.headers['content-type'].includes('json'), false);
    assert.equal((await stat({ path: '/index.html' })).text(), 'home\n');
  });
});

describe("Azure App Service's iisnode web.config with the embedded defaults", () => {
  it('serves the app and its public files with `wharf start --root`, the file unchanged', async (t) => {
    const template = join(REPO_ROOT, '..', 'shared', 'compat', 'iisnode-azure-app-service-kudu-template.web.config');
    if (!needs(t, pathExists(template, 'Azure App Service\'s iisnode web.config template'))) return;
    ensureAppInstalled('express');
    const dir = tempDir('wharf-azure-');
    chmodSync(dir, 0o755);
    cpSync(join(APPS, 'express'), dir, { recursive: true });
    // Kudu fills in {NodeStartFile} when it deploys; nothing else changes.
    writeFileSync(join(dir, 'web.config'), readFileSync(template, 'utf8').replace(/\{NodeStartFile\}/g, 'server.js'));
    mkdirSync(join(dir, 'public'));
    writeFileSync(join(dir, 'public', 'robots.txt'), 'User-agent: *\n');
    const w = await startWharf({ fixture: join(FIXTURES, 'embedded'), embedded: true, args: ['--root', dir] });
    try {
      const r = await send(w.port, 'localhost', { path: '/users/9?a=b' });
      assert.equal(r.status, 200, r.text().slice(0, 400));
      assert.deepEqual(r.json(), { id: '9', query: { a: 'b' } });
      const robots = await send(w.port, 'localhost', { path: '/robots.txt' });
      assert.equal(robots.status, 200);
      assert.equal(robots.text(), 'User-agent: *\n');
    } finally {
      await w.stop();
    }
  });
});
