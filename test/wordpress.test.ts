/**
 * WordPress under Wharf, from its IIS configuration: Debian's WordPress package in a site whose
 * web.config is the real WordPress rewrite file in shared/compat, PHP over FastCGI (php-cgi), and
 * a real MariaDB server of the test's own. Everything is done over HTTP as a person would do it:
 * the installer's form, logging in, the permalink settings form, publishing a post, then reading
 * it at its pretty permalink, which only the URL Rewrite rules can route to index.php.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startMariaDb, type MariaDb } from './helpers/mariadb.js';
import { mariadb, needs, pathExists, phpCgi, wordpress, type Need } from './helpers/skip.js';
import { REPO_ROOT, startWharf, tempDir, type WharfProcess } from './helpers/wharf.js';
import { BrowserSession, describeReply, prepareWordPressSite, WordPressSite } from './helpers/wordpress.js';

const compatDir = resolve(REPO_ROOT, '../shared/compat');
const webConfigFile = join(compatDir, 'wordpress-multisite-rewrite.web.config');
const THEME_CSS = '/wp-content/themes/twentytwentythree/style.css';
const admin = { user: 'wharf-admin', password: 'correct horse battery staple', email: 'admin@wharf.test' };
const POST_TITLE = 'Quay notes from Wharf';

const requirements = (): Need[] => [
  pathExists(webConfigFile, "WordPress's IIS rewrite rules"),
  phpCgi({ name: 'mysqli', pkg: 'php-mysql' }),
  mariadb(),
  wordpress(),
];

function ready(t: TestContext): boolean {
  return needs(t, ...requirements());
}

describe('WordPress under Wharf: FastCGI PHP, the shared/compat rewrite rules, MariaDB', () => {
  let db: MariaDb | undefined;
  let w: WharfProcess | undefined;
  let site: WordPressSite;
  let siteDir = '';
  let phpLog = '';
  /** Set by the test that publishes the post. */
  let post: { id: number; link: string } | undefined;

  before(async () => {
    if (!requirements().every((n) => n.met)) return;
    db = await startMariaDb({ database: 'wordpress', user: 'wordpress' });
    const dir = tempDir('wharf-wordpress-');
    chmodSync(dir, 0o755);
    siteDir = join(dir, 'site');
    prepareWordPressSite(siteDir, db, readFileSync(webConfigFile));
    // PHP's own log, in a file as Windows PHP installs keep it (the pool's user writes it).
    const iniDir = join(dir, 'php.d');
    const logDir = join(dir, 'php-log');
    mkdirSync(iniDir);
    mkdirSync(logDir);
    chmodSync(logDir, 0o1777);
    phpLog = join(logDir, 'php-errors.log');
    writeFileSync(join(iniDir, 'zz-wharf-test.ini'), `log_errors = On\ndisplay_errors = Off\nerror_log = ${phpLog}\n`);
    w = await startWharf({ fixture: 'wordpress', vars: { WPROOT: siteDir, PHPINI: iniDir } });
    site = new WordPressSite(new BrowserSession(w.port));
  });
  after(async () => {
    await w?.stop();
    await db?.stop();
  });

  /** What to look at when a step fails: PHP's log and the end of Wharf's output. */
  const context = (): string => {
    let log = '';
    try {
      log = readFileSync(phpLog, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      log = '(PHP wrote no log)';
    }
    return `\nPHP log:\n${log}\nWharf:\n${w?.output().split('\n').slice(-20).join('\n') ?? ''}`;
  };

  const option = async (name: string): Promise<string> => (await db!.sql(`SELECT option_value FROM wp_options WHERE option_name = '${name}'`, db!.database)).trim();

  it("runs WordPress's installer over HTTP; the installer's own request to a pretty permalink goes through the rewrite rules", async (t) => {
    if (!ready(t)) return;
    // Before installing, every page sends the visitor to the installer (a PHP redirect).
    const first = await site.browser.request('/');
    assert.equal(first.status, 302, describeReply('/ before installing', first) + context());
    assert.match(String(first.headers['location']), /\/wp-admin\/install\.php$/);
    await site.install('Wharf WordPress', admin).catch((e: Error) => assert.fail(e.message + context()));
    // WordPress guessed its address from what Wharf told PHP (HTTP_HOST, SCRIPT_FILENAME, PHP_SELF).
    assert.equal(await option('siteurl'), site.browser.origin);
    assert.equal(await option('home'), site.browser.origin);
    // The installer asked the site for its first post at /yyyy/mm/dd/hello-world/ (another PHP
    // process, through Rule 7 to index.php) and kept pretty permalinks only because that answer
    // came back from WordPress (its X-Pingback header): otherwise the option would be empty.
    assert.equal(await option('permalink_structure'), '/%year%/%monthnum%/%day%/%postname%/', context());
    // The home page, through the default document index.php, is now the blog.
    const home = await site.browser.request('/');
    assert.equal(home.status, 200, describeReply('/', home));
    assert.match(home.text(), /<title>Wharf WordPress<\/title>/);
  });

  it('logs an administrator in with the log-in form; the cookies open the dashboard', async (t) => {
    if (!ready(t)) return;
    const r = await site.logIn(admin).catch((e: Error) => assert.fail(e.message + context()));
    assert.equal(r.headers['location'], `${site.browser.origin}/wp-admin/`);
    const dashboard = await site.browser.request('/wp-admin/');
    assert.equal(dashboard.status, 200, describeReply('/wp-admin/', dashboard));
    assert.match(dashboard.text(), /<title>Dashboard &lsaquo; Wharf WordPress/);
    // Without the cookies the same page sends the visitor to the log-in form.
    const stranger = await new BrowserSession(w!.port).request('/wp-admin/');
    assert.equal(stranger.status, 302);
    assert.match(String(stranger.headers['location']), /\/wp-login\.php\?redirect_to=/);
  });

  it('saves /%year%/%monthnum%/%postname%/ through the permalink settings form and its nonce', async (t) => {
    if (!ready(t)) return;
    const r = await site.setPermalinkStructure('/%year%/%monthnum%/%postname%/').catch((e: Error) => assert.fail(e.message + context()));
    assert.equal(r.headers['location'], `${site.browser.origin}/wp-admin/options-permalink.php?settings-updated=true`);
    assert.equal(await option('permalink_structure'), '/%year%/%monthnum%/%postname%/');
    // The web.config's rules are WordPress's own: WordPress (which sees IIS and URL Rewrite in
    // SERVER_SOFTWARE and IIS_UrlRewriteModule) must have left the file as it was.
    assert.deepEqual(readFileSync(join(siteDir, 'web.config')), readFileSync(webConfigFile));
  });

  it('publishes a post through the REST API (cookie nonce) and shows it at its pretty permalink', async (t) => {
    if (!ready(t)) return;
    // /wp-json/… is no file: Rule 7 rewrites the POST, body and all, to index.php.
    const published = await site.publishPost(POST_TITLE, 'Served by php-cgi over FastCGI, routed by URL Rewrite.').catch((e: Error) => assert.fail(e.message + context()));
    post = published;
    const now = new Date();
    const yyyy = String(now.getUTCFullYear());
    const mm = String(now.getUTCMonth() + 1).padStart(2, '0');
    assert.equal(published.link, `${site.browser.origin}/${yyyy}/${mm}/quay-notes-from-wharf/`);
    const page = await site.browser.request(new URL(published.link).pathname);
    assert.equal(page.status, 200, describeReply(published.link, page) + context());
    assert.match(page.headers['content-type'] as string, /^text\/html; charset=UTF-8$/);
    assert.match(page.text(), new RegExp(`<title>${POST_TITLE} &#8211; Wharf WordPress</title>`));
    assert.match(page.text(), new RegExp(`<h1[^>]*wp-block-post-title[^>]*>${POST_TITLE}</h1>`));
    assert.match(page.text(), /Served by php-cgi over FastCGI, routed by URL Rewrite\./);
    // Anyone may read it: a visitor without cookies gets the same post.
    const visitor = await new BrowserSession(w!.port).request(new URL(published.link).pathname);
    assert.equal(visitor.status, 200);
    assert.match(visitor.text(), new RegExp(POST_TITLE));
    // The old address, ?p=<id>, redirects to the pretty one (WordPress's canonical redirect).
    const byId = await new BrowserSession(w!.port).request(`/?p=${published.id}`);
    assert.equal(byId.status, 301);
    assert.equal(byId.headers['location'], published.link);
  });

  it("answers a missing page under the pretty scheme with WordPress's own 404", async (t) => {
    if (!ready(t)) return;
    const r = await new BrowserSession(w!.port).request('/2001/01/no-such-post-here/');
    assert.equal(r.status, 404, describeReply('a missing post', r));
    // WordPress's page (its 404 template, body class error404), not IIS's "HTTP Error 404.0".
    assert.match(r.text(), /<body class="error404/);
    assert.match(r.text(), /<title>Page not found &#8211; Wharf WordPress<\/title>/);
    assert.doesNotMatch(r.text(), /HTTP Error 404/);
  });

  it('redirects /wp-admin to /wp-admin/ (Rule 3, 301), for a sub-site prefix too', async (t) => {
    if (!ready(t)) return;
    const b = new BrowserSession(w!.port);
    for (const [from, to] of [
      ['/wp-admin', '/wp-admin/'],
      ['/blog/wp-admin', '/blog/wp-admin/'],
    ] as const) {
      const r = await b.request(from);
      assert.equal(r.status, 301, `${from}: ${r.status}`);
      assert.equal(new URL(String(r.headers['location']), `${b.origin}${from}`).pathname, to, `${from} → ${String(r.headers['location'])}`);
    }
    // With the administrator's cookies, following it lands on the dashboard.
    if (post !== undefined) {
      const dashboard = await site.browser.request('/wp-admin/');
      assert.equal(dashboard.status, 200);
    }
  });

  it("serves a theme's stylesheet as a static file (StaticFileModule: ETag, ranges), without PHP", async (t) => {
    if (!ready(t)) return;
    const file = readFileSync(join(siteDir, THEME_CSS));
    const b = new BrowserSession(w!.port);
    const r = await b.request(THEME_CSS);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/css');
    assert.deepEqual(r.body, file);
    // The file's own dates and validators, which StaticFileModule gives and PHP would not.
    assert.equal(r.headers['last-modified'], statSync(join(siteDir, THEME_CSS)).mtime.toUTCString());
    assert.match(String(r.headers['etag']), /^"[^"]+"$/);
    const part = await b.request(THEME_CSS, { headers: { range: 'bytes=0-9' } });
    assert.equal(part.status, 206);
    assert.deepEqual(part.body, file.subarray(0, 10));
    const again = await b.request(THEME_CSS, { headers: { 'if-none-match': String(r.headers['etag']) } });
    assert.equal(again.status, 304);
  });
});
