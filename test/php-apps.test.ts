/**
 * PHP applications from their IIS configuration: the applicationHost.config of an IIS 8.5 shared
 * hosting server (PHP 5.3–5.6 FastCGI applications at Windows paths, per-site handler lists) loads
 * and serves, reporting what Linux lacks instead of failing; and a Drupal-style front controller
 * behind Drupal's own web.config runs on php-cgi over FastCGI: clean URLs reach index.php,
 * protected file types answer 403, favicon.ico 404.1.
 */
import { after, before, describe, it, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { send } from './helpers/node-apps.js';
import { needs, pathExists, phpCgi } from './helpers/skip.js';
import { eventually, FIXTURES, rawRequest, REPO_ROOT, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';

const compatDir = resolve(REPO_ROOT, '../shared/compat');
const sharedHosting = join(compatDir, 'iis85-shared-hosting-applicationhost-php-fastcgi.config');
const drupalWebConfig = join(compatDir, 'drupal-php-cms-rewrite.web.config');

/** 1-based line numbers of the lines of `text` that match `re`. */
function linesMatching(text: string, re: RegExp): number[] {
  return text.split('\n').flatMap((l, i) => (re.test(l) ? [i + 1] : []));
}

test('wharf check on the IIS 8.5 shared-hosting configuration: no error, and each Windows PHP FastCGI application is reported at its line', async (t) => {
  if (!needs(t, pathExists(sharedHosting, 'an IIS 8.5 shared-hosting applicationHost.config with PHP over FastCGI'))) return;
  const dir = tempDir('wharf-php-check-');
  const r = await run(process.execPath, [WHARF_BIN, 'check', '--config', sharedHosting, '--system-drive', join(dir, 'sd')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /: error: /, r.stdout);
  assert.match(r.stdout, /test is successful/);
  // Seven <application fullPath="C:\Program Files\MaestroPanel\php\…\php-cgi.exe"> entries: PHP
  // builds for Windows that no Linux machine has. Each one is named, with its line, in the report.
  const text = readFileSync(sharedHosting, 'utf8');
  const applications = linesMatching(text, /<application fullPath="C:\\Program Files\\MaestroPanel\\php\\v5\.\d\\php-cgi\.exe"/);
  assert.equal(applications.length, 7);
  for (const line of applications) {
    const at = new RegExp(`^${sharedHosting.replace(/[.\\]/g, '\\$&')}:${line}:\\d+: warning: .*php-cgi\\.exe.* does not exist`, 'm');
    assert.match(r.stdout, at, `line ${line} is reported:\n${r.stdout}`);
  }
});

test('the IIS 8.5 shared-hosting configuration starts: its sites serve, a .php mapped to a Windows php-cgi.exe is an IIS error, not a crash', async (t) => {
  if (!needs(t, pathExists(sharedHosting, 'an IIS 8.5 shared-hosting applicationHost.config with PHP over FastCGI'))) return;
  // The file as it is, but for its bindings (port 80 for every host name) and the site's content.
  const fixture = tempDir('wharf-php-hosting-');
  writeFileSync(join(fixture, 'applicationHost.config'), readFileSync(sharedHosting, 'utf8').replace(/bindingInformation="\*:80:/g, 'bindingInformation="127.0.0.1:{{PORT}}:'));
  const content = join(fixture, 'systemdrive', 'vhosts', 'ikinci.com', 'http');
  mkdirSync(content, { recursive: true });
  writeFileSync(join(content, 'default.htm'), '<p>ikinci.com on Wharf</p>\n');
  writeFileSync(join(content, 'hello.php'), "<?php echo 'hello from PHP';\n");
  const w = await startWharf({ fixture });
  try {
    const page = await send(w.port, 'ikinci.com', { path: '/' });
    assert.equal(page.status, 200);
    assert.equal(page.text(), '<p>ikinci.com on Wharf</p>\n');
    // The site's handler list maps *.php to "C:\Program Files\MaestroPanel\php\v5.6\php-cgi.exe|-d
    // host=ikinci.com": no such program here. IIS answers a FastCGI application it cannot run with
    // a 500; the source is never sent, and the server goes on serving.
    const php = await send(w.port, 'ikinci.com', { path: '/hello.php' });
    assert.equal(php.status, 500, php.text());
    // The detailed page (a local client) names the site's own mapping and IIS's "file not found".
    assert.match(php.text(), /HTTP Error 500\.0/);
    assert.match(php.text(), /<th>Handler<\/th><td>PHP56<\/td>/);
    assert.match(php.text(), /0x80070002/);
    assert.doesNotMatch(php.text(), /<\?php/);
    assert.doesNotMatch(php.text(), /hello from PHP/);
    assert.equal((await send(w.port, 'www.ikinci.com', { path: '/default.htm' })).status, 200);
    assert.equal(w.child.exitCode, null, 'Wharf is still running');
  } finally {
    await w.stop();
  }
});

describe("a Drupal-style PHP application behind Drupal's web.config (php-cgi over FastCGI)", () => {
  let w: WharfProcess | undefined;
  const ready = (t: TestContext): boolean => needs(t, pathExists(drupalWebConfig, "Drupal's IIS web.config"), phpCgi());
  const get = (path: string, headers: Record<string, string> = {}) => send(w!.port, 'quayside.test', { path, headers });

  before(async () => {
    if (!pathExists(drupalWebConfig, '').met || !phpCgi().met) return;
    // The fixture with Drupal's web.config, unchanged, at the site's root.
    const fixture = tempDir('wharf-php-drupal-');
    cpSync(join(FIXTURES, 'php-apps'), fixture, { recursive: true });
    writeFileSync(join(fixture, 'www-drupal', 'web.config'), readFileSync(drupalWebConfig));
    w = await startWharf({ fixture });
  });
  after(async () => {
    await w?.stop();
  });

  it('sends clean URLs to index.php, which sees the URL the visitor asked for', async (t) => {
    if (!ready(t)) return;
    const r = await get('/node/42?sort=new');
    assert.equal(r.status, 200, r.text());
    assert.equal(r.headers['x-generator'], 'Quayside (Drupal-style front controller)');
    const page = r.json() as Record<string, unknown>;
    assert.equal(page['title'], 'Node 42');
    assert.equal(page['request_uri'], '/node/42?sort=new');
    assert.equal(page['script_name'], '/index.php');
    assert.equal(page['original_url'], '/node/42?sort=new');
    // appendQueryString is true by default: the query reaches the rewritten URL.
    assert.deepEqual(page['query'], { sort: 'new' });
    // A page the application does not have: index.php ran (its header is there) and answered 404,
    // and, httpErrors existingResponse being Auto, its body gave way to IIS's error page, as on
    // IIS (the WordPress test's configuration lets PHP's pages through with PassThrough).
    const missing = await get('/no/such/page');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-generator'], 'Quayside (Drupal-style front controller)');
    assert.match(missing.text(), /HTTP Error 404\.0 - Not Found/);
  });

  it("serves / through the web.config's default document (index.php), and a POST's form to index.php", async (t) => {
    if (!ready(t)) return;
    const home = await get('/');
    assert.equal(home.status, 200, home.text());
    assert.equal((home.json() as Record<string, unknown>)['title'], 'Welcome to Quayside');
    const body = 'name=Ada+Lovelace&subject=moorings';
    const r = await send(w!.port, 'quayside.test', {
      method: 'POST',
      path: '/contact',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
      body,
    });
    assert.equal(r.status, 200, r.text());
    const page = r.json() as Record<string, unknown>;
    assert.equal(page['title'], 'Thank you, Ada Lovelace');
    assert.equal(page['method'], 'POST');
  });

  it('serves files that exist as static files, not through index.php', async (t) => {
    if (!ready(t)) return;
    const css = await get('/misc/drupal.css');
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css');
    assert.equal(css.text(), 'body { color: navy }\n');
    assert.equal(css.headers['x-generator'], undefined);
  });

  it('answers 403 for the file types Drupal protects (module, include, template), without running or sending them', async (t) => {
    if (!ready(t)) return;
    for (const path of ['/modules/node/node.module', '/includes/bootstrap.inc', '/themes/garland/page.tpl.php', '/sites/default/backup.mysql', '/scripts/cron.sh']) {
      const raw = await rawRequest(w!.port, `GET ${path} HTTP/1.1\r\nHost: quayside.test\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 403 Forbidden\r\n/, `${path}:\n${raw.slice(0, 300)}`);
      assert.doesNotMatch(raw, /module source|include secret|print \$content/, path);
      assert.doesNotMatch(raw, /X-Generator/i, `${path} did not reach index.php`);
    }
    await eventually(() => w!.w3cRecords(1).some((r) => r['cs-uri-stem'] === '/includes/bootstrap.inc' && r['sc-status'] === '403' && r['sc-substatus'] === '0'));
  });

  it('answers favicon.ico with 404.1 "File Not Found" (the rule for a missing favicon), not the front controller', async (t) => {
    if (!ready(t)) return;
    const raw = await rawRequest(w!.port, 'GET /favicon.ico HTTP/1.1\r\nHost: quayside.test\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 404 File Not Found\r\n/, raw.slice(0, 300));
    assert.doesNotMatch(raw, /X-Generator/i);
    await eventually(() => w!.w3cRecords(1).some((r) => r['cs-uri-stem'] === '/favicon.ico' && r['sc-status'] === '404' && r['sc-substatus'] === '1'));
  });
});
