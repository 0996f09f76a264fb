import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, HRESULT } from '../errors.js';
import { loadAppHost, loadAppHostFile, parseBindingInformation } from './application-host.js';
import type { AppHostConfig } from './types.js';
import { needs, otherUser } from '../../test/helpers/skip.js';

const FILE = '/etc/wharf/applicationHost.config';
const OPTS = { systemDrive: '/srv/wharf', variables: { IIS_USER_HOME: '/home/iis' } };

function host(inner: string, webServer = ''): string {
  return `<configuration>
<system.applicationHost>
${inner}
</system.applicationHost>
<system.webServer>${webServer}</system.webServer>
</configuration>`;
}

const POOLS = `<applicationPools>
  <add name="DefaultAppPool" />
  <add name="Shop" queueLength="4000" startMode="AlwaysRunning" autoStart="false"><processModel maxProcesses="2" /></add>
  <applicationPoolDefaults><processModel idleTimeout="00:10:00" /></applicationPoolDefaults>
</applicationPools>`;

const SITES = `<sites>
  <site name="Default Web Site" id="1">
    <application path="/">
      <virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" />
      <virtualDirectory path="/Images" physicalPath="D:\\images" allowSubDirConfig="false" />
    </application>
    <application path="/shop" applicationPool="Shop" preloadEnabled="true">
      <virtualDirectory path="/" physicalPath="shop" />
    </application>
    <bindings>
      <binding protocol="http" bindingInformation="*:80:" />
      <binding protocol="https" bindingInformation="[::1]:8443:WWW.Example.COM" sslFlags="1" />
      <binding protocol="net.tcp" bindingInformation="808:*" />
    </bindings>
    <limits connectionTimeout="00:00:30" />
  </site>
  <site name="Second" id="7" serverAutoStart="false">
    <application path="/" applicationPool="DefaultAppPool">
      <virtualDirectory path="/" physicalPath="/var/www/second" />
    </application>
    <bindings><binding protocol="http" bindingInformation=":8080:localhost" /></bindings>
    <logFile directory="%IIS_USER_HOME%\\Logs" period="Hourly" />
    <applicationDefaults enabledProtocols="http,https" />
  </site>
  <siteDefaults>
    <logFile logFormat="W3C" truncateSize="1048576" />
    <limits maxUrlSegments="64" />
    <traceFailedRequestsLogging enabled="true" />
  </siteDefaults>
  <applicationDefaults applicationPool="DefaultAppPool" />
  <virtualDirectoryDefaults allowSubDirConfig="true" />
</sites>`;

function fails(text: string): ConfigError {
  try {
    loadAppHost(FILE, text, OPTS);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

describe('loadAppHost', () => {
  const appHost: AppHostConfig = loadAppHost(FILE, host(POOLS + SITES, '<directoryBrowse enabled="true" /><asp />'), OPTS);

  it('builds typed sites with bindings, applications and virtual directories', () => {
    assert.equal(appHost.file, FILE);
    assert.deepEqual(
      appHost.sites.map((s) => [s.id, s.name, s.serverAutoStart]),
      [
        [1, 'Default Web Site', true],
        [7, 'Second', false],
      ],
    );
    const site = appHost.sites[0]!;
    assert.deepEqual(
      site.bindings.map((b) => [b.protocol, b.ip, b.port, b.host]),
      [
        ['http', '*', 80, ''],
        ['https', '::1', 8443, 'www.example.com'],
        ['net.tcp', '', 0, ''],
      ],
    );
    assert.deepEqual(appHost.sites[1]!.bindings.map((b) => [b.ip, b.port, b.host]), [['*', 8080, 'localhost']]);
    const [root, shop] = site.applications;
    assert.deepEqual([root!.path, root!.applicationPool, root!.enabledProtocols, root!.preloadEnabled], ['/', 'DefaultAppPool', 'http', false]);
    assert.deepEqual([shop!.path, shop!.applicationPool, shop!.preloadEnabled], ['/shop', 'Shop', true]);
    assert.deepEqual(root!.virtualDirectories, [
      { path: '/', physicalPath: '/srv/wharf/inetpub/wwwroot', allowSubDirConfig: true },
      { path: '/Images', physicalPath: '/srv/wharf/drives/d/images', allowSubDirConfig: false },
    ]);
    assert.equal(shop!.virtualDirectories[0]!.physicalPath, '/etc/wharf/shop', 'relative to the config file folder');
    // Site-level applicationDefaults inherit from the <sites> level ones.
    assert.deepEqual([appHost.sites[1]!.applications[0]!.applicationPool, appHost.sites[1]!.applications[0]!.enabledProtocols], ['DefaultAppPool', 'http,https']);
  });

  it('merges limits, logFile and traceFailedRequestsLogging over siteDefaults', () => {
    const [one, two] = appHost.sites;
    assert.equal(one!.limits.num('connectionTimeout'), 30_000);
    assert.equal(one!.limits.num('maxUrlSegments'), 64);
    assert.equal(one!.limits.num('maxConnections'), 4294967295);
    assert.equal(one!.logFile.num('truncateSize'), 1048576);
    assert.equal(one!.logFile.enumName('period'), 'Daily');
    assert.equal(one!.logFileDirectory, '/srv/wharf/inetpub/logs/LogFiles', 'schema default, expanded and mapped');
    assert.equal(two!.logFile.enumName('period'), 'Hourly');
    assert.equal(two!.logFile.num('truncateSize'), 1048576);
    assert.equal(two!.logFileDirectory, '/home/iis/Logs');
    assert.equal(one!.traceFailedRequestsLogging.bool('enabled'), true);
    assert.equal(one!.traceFailedRequestsLogging.num('maxLogFiles'), 50);
  });

  it('builds application pools over applicationPoolDefaults', () => {
    assert.deepEqual(
      appHost.applicationPools.map((p) => [p.name, p.queueLength, p.autoStart, p.startMode]),
      [
        ['DefaultAppPool', 1000, true, 'OnDemand'],
        ['Shop', 4000, false, 'AlwaysRunning'],
      ],
    );
    const shop = appHost.applicationPools[1]!.element;
    assert.equal(shop.child('processModel').num('maxProcesses'), 2);
    assert.equal(shop.child('processModel').num('idleTimeout'), 600_000);
    assert.equal(shop.child('processModel').enumName('identityType'), 'ApplicationPoolIdentity');
    assert.equal(shop.child('failure').num('rapidFailProtectionMaxCrashes'), 5);
  });

  it('serves server-level sections, defaults for unused ones, and lists unsupported sections', () => {
    assert.equal(appHost.section('system.webServer/directoryBrowse').bool('enabled'), true);
    assert.equal(appHost.section('system.applicationHost/webLimits').num('minBytesPerSecond'), 240);
    assert.throws(() => appHost.section('system.web/compilation'), TypeError);
    assert.deepEqual(appHost.unsupported.map((u) => [u.section, u.position.file, u.position.line]), [['system.webServer/asp', FILE, 40]]);
  });

  it('parses bindingInformation like HTTP.sys', () => {
    assert.deepEqual(parseBindingInformation('http', '10.0.0.5:80:Shop.example.com', undefined), {
      protocol: 'http',
      bindingInformation: '10.0.0.5:80:Shop.example.com',
      ip: '10.0.0.5',
      port: 80,
      host: 'shop.example.com',
      sslFlags: 0,
    });
    assert.equal(parseBindingInformation('https', '*:443:*.example.com', undefined).host, '*.example.com');
    const at = { file: FILE, line: 3, column: 9 };
    for (const bad of ['*:0:', '*:70000:', '*:80', 'nonsense', '[::1:80:', '*:http:']) {
      assert.throws(
        () => parseBindingInformation('http', bad, at),
        (err: unknown) => err instanceof ConfigError && err.code === 'CFG_INVALID_VALUE' && err.position === at && err.message.includes(`'${bad}'`),
        bad,
      );
    }
  });
});

describe('loadAppHost validation', () => {
  const pools = '<applicationPools><add name="DefaultAppPool" /></applicationPools>';
  const site = (attrs: string, body = '<application path="/" applicationPool="DefaultAppPool"><virtualDirectory path="/" physicalPath="/w" /></application>'): string =>
    `<site ${attrs}>${body}<bindings><binding protocol="http" bindingInformation="*:80:" /></bindings></site>`;

  it('rejects duplicate site ids and names at the duplicate site', () => {
    const id = fails(host(`${pools}<sites>\n${site('name="A" id="1"')}\n${site('name="B" id="1"')}\n</sites>`));
    assert.equal(id.code, 'CFG_INVALID_SITE');
    assert.match(id.message, /unique key attribute 'id' set to '1' \(already used by site 'A'\)/);
    assert.deepEqual([id.position?.file, id.position?.line, id.position?.column], [FILE, 5, 1]);
    const name = fails(host(`${pools}<sites>\n${site('name="A" id="1"')}\n${site('name="a" id="2"')}\n</sites>`));
    assert.equal(name.code, 'CFG_INVALID_SITE');
    assert.match(name.message, /unique key attribute 'name' set to 'a'/);
  });

  it('requires a root application, a root virtual directory and existing pools', () => {
    const noRootApp = fails(host(`${pools}<sites>\n${site('name="A" id="1"', '<application path="/x" applicationPool="DefaultAppPool"><virtualDirectory path="/" physicalPath="/w" /></application>')}</sites>`));
    assert.deepEqual([noRootApp.code, noRootApp.message, noRootApp.position?.line], ['CFG_INVALID_SITE', "The site 'A' has no root application '/'", 4]);
    const noRootVdir = fails(host(`${pools}<sites>${site('name="A" id="1"', '<application path="/" applicationPool="DefaultAppPool"><virtualDirectory path="/v" physicalPath="/w" /></application>')}</sites>`));
    assert.equal(noRootVdir.message, "The application '/' of site 'A' has no root virtual directory '/'");
    const noPool = fails(host(`${pools}<sites>${site('name="A" id="1"', '<application path="/" applicationPool="Missing"><virtualDirectory path="/" physicalPath="/w" /></application>')}</sites>`));
    assert.equal(noPool.code, 'CFG_INVALID_SITE');
    assert.equal(noPool.message, "The application '/' of site 'A' uses the application pool 'Missing', which does not exist");
    const unset = fails(host(`${pools}<sites>${site('name="A" id="1"', '<application path="/"><virtualDirectory path="/" physicalPath="/w" /></application>')}</sites>`));
    assert.match(unset.message, /has no applicationPool/);
  });

  it('reports UNC physical paths and bad bindings at their attribute', () => {
    const unc = fails(host(`${pools}<sites>\n${site('name="A" id="1"', '<application path="/" applicationPool="DefaultAppPool"><virtualDirectory path="/" physicalPath="\\\\nas\\www" /></application>')}</sites>`));
    assert.equal(unc.code, 'CFG_INVALID_VALUE');
    assert.equal(unc.position?.line, 4);
    const binding = fails(host(`${pools}<sites>\n<site name="A" id="1"><application path="/" applicationPool="DefaultAppPool"><virtualDirectory path="/" physicalPath="/w" /></application>\n<bindings><binding protocol="http" bindingInformation="*:eighty:" /></bindings></site></sites>`));
    assert.deepEqual([binding.code, binding.position?.line, binding.position?.column], ['CFG_INVALID_VALUE', 5, 36]);
  });

  it('trial-merges every <location> at load time', () => {
    const text = `<configuration><system.applicationHost>${pools}<sites>${site('name="A" id="1"')}</sites></system.applicationHost>
<system.webServer><staticContent><mimeMap fileExtension=".a" mimeType="a/a" /></staticContent></system.webServer>
<location path="A/app">
  <system.webServer><staticContent><mimeMap fileExtension=".A" mimeType="a/b" /></staticContent></system.webServer>
</location></configuration>`;
    const err = fails(text);
    assert.deepEqual([err.code, err.position?.line], ['CFG_DUPLICATE_ENTRY', 4]);
  });
});

describe('loadAppHostFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-apphost-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the file (BOM and all) and resolves relative paths against its folder', () => {
    const file = join(dir, 'applicationHost.config');
    writeFileSync(file, '\uFEFF' + host(POOLS + SITES));
    const appHost = loadAppHostFile(file, OPTS);
    assert.equal(appHost.sites[0]!.applications[1]!.virtualDirectories[0]!.physicalPath, join(dir, 'shop'));
    assert.ok(appHost.text.includes('<sites>'));
  });

  it('reports a missing or unreadable file as CFG_READ', () => {
    const missing = join(dir, 'nope.config');
    assert.throws(
      () => loadAppHostFile(missing, OPTS),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.code === 'CFG_READ' &&
        err.hresult === HRESULT.pathNotFound &&
        err.position?.file === missing &&
        err.message === 'Cannot read the configuration file: the file does not exist (ENOENT)' &&
        err.describe() === `${missing}: Cannot read the configuration file: the file does not exist (ENOENT)`,
    );
    const folder = join(dir, 'folder.config');
    mkdirSync(folder);
    assert.throws(() => loadAppHostFile(folder, OPTS), { code: 'CFG_READ' });
  });

  it('reports a file it may not read as CFG_READ with E_ACCESSDENIED', (t) => {
    const locked = join(dir, 'locked.config');
    writeFileSync(locked, host(POOLS + SITES));
    chmodSync(locked, 0o000);
    if (process.getuid?.() !== 0) {
      assert.throws(() => loadAppHostFile(locked, OPTS), (err: unknown) => err instanceof ConfigError && err.hresult === HRESULT.accessDenied);
      return;
    }
    // Root reads a mode 000 file: the reader is nobody, in a child process.
    if (!needs(t, otherUser())) return;
    chmodSync(dir, 0o755);
    const module = new URL('./application-host.js', import.meta.url).href;
    const code = `import(${JSON.stringify(module)}).then((m) => { try { m.loadAppHostFile(${JSON.stringify(locked)}, {}); console.log('read'); } catch (e) { console.log(e.code, e.hresult); } })`;
    const r = spawnSync(process.execPath, ['-e', code], { uid: 65534, gid: 65534, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `CFG_READ ${HRESULT.accessDenied}`);
  });
});
