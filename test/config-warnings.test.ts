/**
 * What the server says about a configuration that will not do what its author expects, as an
 * administrator reads it in the console: security settings Wharf reads but does not enforce (at
 * start for applicationHost.config, once per worker for a web.config), a configuration that cannot
 * serve (404.4, 500.21), the 500.19 of a folder the pool's user cannot enter, and where Wharf
 * listens after a binding moved. Also: the minimal applicationHost.config of docs/configuration.md
 * really serves files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FIXTURES, REPO_ROOT, eventually, freePort, get, rawRequest, startWharf } from './helpers/wharf.js';

const isRoot = process.getuid?.() === 0;

/** A fixture folder: the `static` fixture's applicationHost.config, edited, and content files. */
function fixture(edit: (text: string) => string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-warn-fixture-'));
  writeFileSync(join(dir, 'applicationHost.config'), edit(readFileSync(join(FIXTURES, 'static', 'applicationHost.config'), 'utf8')));
  const all = { 'wwwroot/index.html': '<p>index</p>\n', 'wwwroot/note.txt': 'a note\n', ...files };
  for (const [name, content] of Object.entries(all)) {
    mkdirSync(resolve(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

function positionOf(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} is in the file`);
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

test('at start the console warns about each unenforced security setting of applicationHost.config (its module not in <modules>), with file:line:column; defaults are silent', async () => {
  const dir = fixture((t) =>
    t.replace(
      '<security>',
      [
        '<security>',
        '      <authentication>',
        '        <anonymousAuthentication enabled="true" />',
        '        <windowsAuthentication enabled="false" />',
        '        <basicAuthentication enabled="true" realm="shop" />',
        '      </authentication>',
        '      <authorization>',
        '        <add accessType="Allow" users="*" />',
        '      </authorization>',
        '      <ipSecurity allowUnlisted="true">',
        '        <add ipAddress="10.0.0.1" allowed="false" />',
        '      </ipSecurity>',
      ].join('\n'),
    ),
  );
  const w = await startWharf({ fixture: dir });
  try {
    const text = readFileSync(w.configFile, 'utf8');
    const out = await w.waitForOutput(/Wharf is serving/).then(() => w.output());
    assert.ok(
      out.includes(`warn  ${w.configFile}:${positionOf(text, '<basicAuthentication')}: SECURITY: system.webServer/security/authentication/basicAuthentication: this setting is not enforced: BasicAuthenticationModule is not in <modules>: no Basic challenge is sent`),
      out,
    );
    // IIS's defaults change nothing and are not reported; ipSecurity is enforced (test/ip-security.test.ts).
    assert.doesNotMatch(out, /anonymousAuthentication|windowsAuthentication|security\/authorization|ipSecurity/);
    assert.equal(count(out, 'SECURITY:'), 1, out);
    // What the warning says is what happens: the request is served, not refused (10.0.0.1 is not this client).
    assert.equal((await get(w.port, '/note.txt')).status, 200);
  } finally {
    await w.stop();
  }
});

test('a web.config rule whose module is not in <modules> is warned once per worker, naming the file and line, as ASP.NET rules are; the request is served', async () => {
  const webConfig = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<configuration>',
    '  <system.webServer>',
    '    <security>',
    '      <authorization>',
    '        <clear />',
    '        <add accessType="Deny" users="*" />',
    '      </authorization>',
    '    </security>',
    '  </system.webServer>',
    '  <system.web>',
    '    <authorization>',
    '      <deny users="*" />',
    '    </authorization>',
    '  </system.web>',
    '</configuration>',
    '',
  ].join('\n');
  // The static fixture's <modules> has no UrlAuthorizationModule: nothing enforces the rule.
  const dir = fixture((t) => t, { 'wwwroot/admin/web.config': webConfig, 'wwwroot/admin/index.html': '<p>admin</p>\n', 'wwwroot/admin/secret.txt': 'secret\n' });
  const w = await startWharf({ fixture: dir });
  try {
    const file = join(w.root, 'wwwroot', 'admin', 'web.config');
    for (const path of ['/admin/secret.txt', '/admin/secret.txt', '/admin/', '/admin/index.html']) {
      const r = await get(w.port, path);
      assert.equal(r.status, 200, `${path} is served: <deny users="*"/> is not enforced without UrlAuthorizationModule`);
    }
    const urlAuth = `${file}:7:9: SECURITY: system.webServer/security/authorization: this rule is not enforced: UrlAuthorizationModule is not in <modules>: every request is allowed`;
    const aspnet = `${file}:13:7: SECURITY: system.web/authorization: <deny users="*"/> is not enforced: ASP.NET URL authorization is not applied (Wharf hosts no .NET): every request is allowed`;
    await eventually(() => w.output().includes(aspnet) && w.output().includes(urlAuth), 10000).catch(() => assert.fail(w.output()));
    const out = w.output();
    // From the pool's worker, as a warning, exactly once for four requests.
    assert.match(out, new RegExp(`warn  \\[DefaultAppPool pid \\d+\\] ${file.replace(/[.]/g, '\\.')}:13:7: SECURITY`));
    assert.equal(count(out, urlAuth), 1, out);
    assert.equal(count(out, aspnet), 1, out);
  } finally {
    await w.stop();
  }
});

test('a site root web.config that restricts access without UrlAuthorizationModule is warned at start, before any request', async () => {
  const webConfig = '<configuration>\n  <system.webServer>\n    <security>\n      <authorization>\n        <add accessType="Deny" users="?" />\n      </authorization>\n    </security>\n  </system.webServer>\n</configuration>\n';
  const dir = fixture((t) => t, { 'wwwroot/web.config': webConfig });
  const w = await startWharf({ fixture: dir });
  try {
    const file = join(w.root, 'wwwroot', 'web.config');
    // From the main process (no "[pool pid]" prefix): no worker has started yet.
    const line = await w.waitForOutput(/warn {2}\/\S+web\.config:5:\d+: SECURITY: [^\n]*/);
    assert.equal(line, `warn  ${file}:5:9: SECURITY: system.webServer/security/authorization: this rule is not enforced: UrlAuthorizationModule is not in <modules>: every request is allowed`);
    assert.doesNotMatch(w.output(), /started worker/);
  } finally {
    await w.stop();
  }
});

test('a configuration without handler mappings is warned at start (404.4) and answers 404.4', async () => {
  const dir = fixture((t) => t.replace(/<modules>[\s\S]*<\/handlers>/, ''));
  const w = await startWharf({ fixture: dir });
  try {
    assert.match(w.output(), new RegExp(`warn  ${w.configFile.replace(/[.]/g, '\\.')}:2:1: no handler mappings: every request will get 404\\.4`));
    assert.equal((await get(w.port, '/note.txt')).status, 404);
    await eventually(() => w.logLines(7).some((l) => l.includes('/note.txt') && l.includes(' 404 4 ')), 10000);
  } finally {
    await w.stop();
  }
});

test('a handler naming a module that is not in <modules> is warned at start (500.21) and answers 500.21', async () => {
  const dir = fixture((t) => t.replace('<add name="StaticFileModule" lockItem="true" />', ''));
  const w = await startWharf({ fixture: dir });
  try {
    const text = readFileSync(w.configFile, 'utf8');
    assert.ok(
      w.output().includes(`warn  ${w.configFile}:${positionOf(text, '<add name="StaticFile" ')}: handler StaticFile names StaticFileModule, which is not in <modules>: requests it maps (path="*") will get 500.21`),
      w.output(),
    );
    assert.equal((await get(w.port, '/note.txt')).status, 500);
    await eventually(() => w.logLines(7).some((l) => l.includes('/note.txt') && l.includes(' 500 21 ')), 10000);
  } finally {
    await w.stop();
  }
});

test('the minimal applicationHost.config of docs/configuration.md serves files, without a warning', async () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
  const m = /<!-- minimal-applicationhost: begin -->\n```xml\n([\s\S]*?)```\n<!-- minimal-applicationhost: end -->/.exec(doc);
  assert.ok(m, 'docs/configuration.md has the minimal applicationHost.config between its markers');
  const text = m[1]!;
  assert.ok(text.includes('physicalPath="/var/www/mysite"') && text.includes('bindingInformation="*:8080:"'));
  const dir = mkdtempSync(join(tmpdir(), 'wharf-minimal-'));
  writeFileSync(join(dir, 'applicationHost.config'), text.replace('/var/www/mysite', '{{ROOT}}/mysite').replace('*:8080:', '127.0.0.1:{{PORT}}:'));
  mkdirSync(join(dir, 'mysite'));
  writeFileSync(join(dir, 'mysite', 'index.html'), '<h1>my site</h1>\n');
  writeFileSync(join(dir, 'mysite', 'notes.txt'), 'plain text\n');
  const w = await startWharf({ fixture: dir });
  try {
    const home = await get(w.port, '/');
    assert.equal(home.status, 200);
    assert.equal(home.body.toString(), '<h1>my site</h1>\n');
    const txt = await get(w.port, '/notes.txt');
    assert.equal(txt.status, 200);
    assert.equal(txt.headers['content-type'], 'text/plain');
    assert.equal(txt.body.toString(), 'plain text\n');
    assert.equal((await get(w.port, '/missing.html')).status, 404);
    assert.doesNotMatch(w.output(), / warn  /, 'the documented configuration starts without a warning');
  } finally {
    await w.stop();
  }
});

test('500.19 for a web.config in a folder the pool user cannot enter names the user, the right and the fix', { skip: !isRoot && 'pool identities need Wharf to run as root' }, async () => {
  const dir = fixture((t) => t, {
    'wwwroot/private/web.config': '<configuration><system.webServer><directoryBrowse enabled="false" /></system.webServer></configuration>\n',
    'wwwroot/private/page.txt': 'private page\n',
  });
  const w = await startWharf({ fixture: dir });
  try {
    const folder = join(w.root, 'wwwroot', 'private');
    // A first request starts the pool's worker (and creates its user), so the one below is not
    // bounded by a cold start on a loaded machine.
    await eventually(async () => (await get(w.port, '/note.txt')).status === 200, 30000);
    // Root's own folder that the pool's user (wharf-defaultapppool) cannot search.
    chmodSync(folder, 0o700);
    const r = await get(w.port, '/private/page.txt');
    assert.equal(r.status, 500);
    const body = r.body.toString();
    assert.match(body, /HTTP Error 500\.19/);
    assert.match(body, /0x80070005/);
    assert.match(body, /Cannot read the configuration file: permission denied \(EACCES\); the worker runs as wharf-defaultapppool \(uid \d+\), which lacks search \(x\) permission on the folder /);
    assert.ok(body.includes(`permission on the folder ${folder}.`), body);
    assert.ok(body.includes(`setfacl -m u:wharf-defaultapppool:x ${folder}`), body);
    assert.ok(body.includes(`chmod o+x ${folder}`), body);
    assert.ok(body.includes(`${join(folder, 'web.config')}`), 'the Config File row names the web.config');
    assert.doesNotMatch(body, /Fix the configuration file/);
    assert.match(body, /<th>Config Line<\/th><td>\(the whole file\)<\/td>/);
    assert.match(body, /the configuration file itself needs no change/);
    // The fix it names works, without a restart.
    chmodSync(folder, 0o711);
    await eventually(async () => (await get(w.port, '/private/page.txt')).status === 200, 10000);
  } finally {
    await w.stop();
  }
});

test('a binding moved to another port applies live and the log says what is listened on now and what stopped', async () => {
  const w = await startWharf({ fixture: 'static' });
  try {
    const newPort = await freePort();
    const text = readFileSync(w.configFile, 'utf8');
    writeFileSync(w.configFile, text.replace(`127.0.0.1:${w.port}:`, `127.0.0.1:${newPort}:`));
    const line = await w.waitForOutput(/configuration generation 2 applied from [^\n]*/);
    assert.equal(
      line,
      `configuration generation 2 applied from ${w.configFile}; started listening on 127.0.0.1:${newPort}; stopped listening on 127.0.0.1:${w.port}; now listening on 127.0.0.1:${newPort}`,
    );
    assert.equal((await get(newPort, '/site.css')).status, 200);
    await assert.rejects(rawRequest(w.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /ECONNREFUSED/);
  } finally {
    await w.stop();
  }
});
