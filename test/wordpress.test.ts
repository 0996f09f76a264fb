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
import { eventually, REPO_ROOT, startWharf, tempDir, type WharfProcess } from './helpers/wharf.js';
import { BrowserSession, describeReply, prepareWordPressSite, WordPressSite } from './helpers/wordpress.js';

const compatDir = resolve(REPO_ROOT, '../shared/compat');
const webConfigFile = join(compatDir, 'wordpress-multisite-rewrite.web.config');
const THEME_CSS = '/wp-content/themes/twentytwentythree/style.css';
const admin = { user: 'wharf-admin', password: 'correct horse battery staple', email: 'admin@wharf.test' };
const POST_TITLE = 'Quay notes from Wharf';

let probed: Need[] | undefined;
/** Probed once (php-cgi -m is a process). */
const requirements = (): Need[] =>
  (probed ??= [
    pathExists(webConfigFile, "WordPress's IIS rewrite rules"),
    // mysqli for the database; DOM because WordPress offers pretty permalinks on IIS only with it
    // (iis7_supports_permalinks(): it edits web.config), and Windows builds of PHP always have it.
    phpCgi({ name: 'mysqli', pkg: 'php-mysql' }, { name: 'dom', pkg: 'php-xml' }),
    mariadb(),
    wordpress(),
  ]);

function ready(t: TestContext): boolean {
  return needs(t, ...requirements());
}

describe('WordPress under Wharf: FastCGI PHP, the shared/compat rewrite rules, MariaDB', () => {
  let db: MariaDb | undefined;
  let w: WharfProcess | undefined;
  let site: WordPressSite;
  let siteDir = '';
  let phpLog = '';

  before(async () => {
    if (!requirements().every((n) => n.met)) return;
    db = await startMariaDb({ database: 'wordpress', user: 'wordpress' });
    const dir = tempDir('wharf-wordpress-');
    chmodSync(dir, 0o755);
    siteDir = join(dir, 'site');
    prepareWordPressSite(siteDir, db, readFileSync(webConfigFile));
    // Writable by the pool's user, as WordPress's IIS instructions have it while permalinks are set up.
    chmodSync(join(siteDir, 'web.config'), 0o666);
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
    // That request is in the site's log: WordPress's user agent, a 200.
    const loopback = await eventually(() => w!.w3cRecords(1).find((r) => /^\/\d{4}\/\d{2}\/\d{2}\/hello-world\/$/.test(r['cs-uri-stem'] ?? ''))).catch(() =>
      assert.fail(`no log line for the installer's request:\n${w!.logLines(1).join('\n')}`),
    );
    assert.equal(loopback['sc-status'], '200');
    assert.match(loopback['cs(User-Agent)'] ?? '', /^WordPress\//);
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

  it('saves /%year%/%monthnum%/%postname%/ through the permalink settings form; WordPress sees IIS with URL Rewrite', async (t) => {
    if (!ready(t)) return;
    const saved = await site.setPermalinkStructure('/%year%/%monthnum%/%postname%/').catch((e: Error) => assert.fail(e.message + context()));
    assert.equal(saved.reply.headers['location'], `${site.browser.origin}/wp-admin/options-permalink.php?settings-updated=true`);
    assert.equal(await option('permalink_structure'), '/%year%/%monthnum%/%postname%/');
    // WordPress took its IIS 7+ path (SERVER_SOFTWARE Microsoft-IIS/10.0, IIS_UrlRewriteModule set,
    // PHP on FastCGI): it speaks of web.config, not .htaccess. It could write the file, but the
    // rules there are WordPress's own ("WordPress Rule 1" …), so it left it as it was.
    assert.equal(saved.notice, 'Permalink structure updated. Remove write access on web.config file now!');
    assert.deepEqual(readFileSync(join(siteDir, 'web.config')), readFileSync(webConfigFile));
  });

  it('publishes a post through the REST API (cookie nonce) and shows it at its pretty permalink', async (t) => {
    if (!ready(t)) return;
    // /wp-json/… is no file: Rule 7 rewrites the POST, body and all, to index.php.
    const published = await site.publishPost(POST_TITLE, 'Served by php-cgi over FastCGI, routed by URL Rewrite.').catch((e: Error) => assert.fail(e.message + context()));
    // The post's date (the site's time zone is UTC) gives the year and month of its address.
    const [yyyy, mm] = published.date.split('-');
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
  });

  it('rewrites a sub-site prefix away (Rules 5 and 6): /blog/wp-login.php runs wp-login.php, /blog/wp-includes/… is the static file', async (t) => {
    if (!ready(t)) return;
    const b = new BrowserSession(w!.port);
    const login = await b.request('/blog/wp-login.php');
    assert.equal(login.status, 200, describeReply('/blog/wp-login.php', login));
    assert.match(login.text(), /<form name="loginform" id="loginform"/);
    const css = '/wp-includes/css/dashicons.min.css';
    const r = await b.request(`/blog${css}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/css');
    assert.deepEqual(r.body, readFileSync(join(siteDir, css)));
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
