import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, HRESULT } from '../errors.js';
import { loadAppHost } from './application-host.js';
import { ConfigSystem } from './config-system.js';
import type { ConfigElement, ResolvedConfig, ResolveResult, UnsupportedUse } from './types.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

interface Fixture {
  readonly dir: string;
  readonly clock: { t: number };
  readonly reports: UnsupportedUse[];
  write(rel: string, text: string): string;
  remove(rel: string): void;
  system(onPathTooLong?: (folder: string) => void): ConfigSystem;
}

/**
 * Site 1 "Site": root app → <dir>/root (with vdir /img → <dir>/images, allowSubDirConfig=false),
 * child app /app → <dir>/appdir. Site 2 "Other" → <dir>/other. `extra` goes inside
 * <configuration> of applicationHost.config after the server-level sections.
 */
function fixture(appHostServer = '', extra = ''): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-cfgsys-'));
  roots.push(dir);
  for (const d of ['root/sub/deeper', 'appdir/x', 'images/x', 'other']) mkdirSync(join(dir, d), { recursive: true });
  const appHostText = `<configuration>
  <configSections>
    <sectionGroup name="system.webServer">
      <section name="staticContent" overrideModeDefault="Allow" />
      <section name="handlers" overrideModeDefault="Deny" />
      <section name="modules" allowDefinition="MachineToApplication" overrideModeDefault="Deny" />
    </sectionGroup>
  </configSections>
  <system.applicationHost>
    <applicationPools><add name="DefaultAppPool" /><add name="AppPool" /></applicationPools>
    <sites>
      <site name="Site" id="1">
        <application path="/">
          <virtualDirectory path="/" physicalPath="root" />
          <virtualDirectory path="/img" physicalPath="images" allowSubDirConfig="false" />
        </application>
        <application path="/app" applicationPool="AppPool">
          <virtualDirectory path="/" physicalPath="appdir" />
        </application>
        <bindings><binding protocol="http" bindingInformation="*:80:" /></bindings>
      </site>
      <site name="Other" id="2">
        <application path="/"><virtualDirectory path="/" physicalPath="other" /></application>
        <bindings><binding protocol="http" bindingInformation="*:81:" /></bindings>
      </site>
      <applicationDefaults applicationPool="DefaultAppPool" />
    </sites>
  </system.applicationHost>
  <system.webServer>${appHostServer}</system.webServer>
  ${extra}
</configuration>`;
  const appHostFile = join(dir, 'applicationHost.config');
  writeFileSync(appHostFile, appHostText);
  const clock = { t: 1_000_000 };
  const reports: UnsupportedUse[] = [];
  return {
    dir,
    clock,
    reports,
    write(rel, text) {
      const file = join(dir, rel);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      return file;
    },
    remove(rel) {
      rmSync(join(dir, rel), { recursive: true, force: true });
    },
    system(onPathTooLong) {
      const appHost = loadAppHost(appHostFile, appHostText, { systemDrive: join(dir, 'c') });
      return new ConfigSystem(appHost, { systemDrive: join(dir, 'c'), now: () => clock.t, onUnsupported: (u) => reports.push(u), onPathTooLong });
    },
  };
}

function ws(inner: string): string {
  return `<configuration><system.webServer>${inner}</system.webServer></configuration>`;
}

function ok(r: ResolveResult): ResolvedConfig {
  if (!r.ok) assert.fail(`expected ok, got ${r.error.code}: ${r.error.describe()}`);
  return r.config;
}

function failed(r: ResolveResult): ConfigError {
  if (r.ok) assert.fail('expected a configuration error');
  return r.error;
}

function headers(c: ResolvedConfig): string[] {
  return c.section('system.webServer/httpProtocol').child('customHeaders').items.map((i) => i.str('name'));
}

const redirect = (c: ResolvedConfig): boolean => c.section('system.webServer/httpRedirect').bool('enabled');

describe('ConfigSystem: URL mapping', () => {
  it('finds the application and virtual directory by longest whole-segment prefix, case-insensitively', () => {
    const f = fixture();
    const cs = f.system();
    const app = ok(cs.resolve(1, '/APP/x/page.html'));
    assert.equal(app.application.path, '/app');
    assert.equal(app.application.applicationPool, 'AppPool');
    assert.equal(app.virtualDirectoryUrl, '/app');
    assert.equal(app.physicalPath, join(f.dir, 'appdir/x/page.html'));
    assert.equal(app.site.name, 'Site');

    const notApp = ok(cs.resolve(1, '/application/a'));
    assert.equal(notApp.application.path, '/');
    assert.equal(notApp.physicalPath, join(f.dir, 'root/application/a'));

    const img = ok(cs.resolve(1, '/img/logo.png'));
    assert.deepEqual([img.virtualDirectoryUrl, img.virtualDirectory.path, img.physicalPath], ['/img', '/img', join(f.dir, 'images/logo.png')]);
    assert.equal(ok(cs.resolve(1, '/')).physicalPath, join(f.dir, 'root'));
    assert.equal(ok(cs.resolve(1, '/sub/')).physicalPath, join(f.dir, 'root/sub'));
  });

  it('never maps outside the virtual directory', () => {
    const f = fixture();
    assert.equal(ok(f.system().resolve(1, '/img/../../etc/passwd')).physicalPath, join(f.dir, 'images/etc/passwd'));
  });

  it('answers an unknown site with CFG_INVALID_SITE and unknown sections with a TypeError', () => {
    const f = fixture();
    const cs = f.system();
    assert.equal(failed(cs.resolve(9, '/')).code, 'CFG_INVALID_SITE');
    const c = ok(cs.resolve(1, '/'));
    assert.throws(() => c.section('system.web/compilation'), TypeError);
    assert.equal(c.section('system.webServer/directoryBrowse').bool('enabled'), false, 'unused sections give schema defaults');
  });
});

describe('ConfigSystem: merge order', () => {
  const add = (name: string): string => `<httpProtocol><customHeaders><add name="${name}" value="1" /></customHeaders></httpProtocol>`;

  it('applies applicationHost root, its <location>s, then web.config files level by level', () => {
    const f = fixture(
      add('H0-apphost-root'),
      `<location path="Site">${ws(add('H1-apphost-site')).replace(/<\/?configuration>/g, '')}</location>
       <location path="site/SUB">${ws(add('H3-apphost-sub')).replace(/<\/?configuration>/g, '')}</location>`,
    );
    f.write('root/web.config', `<configuration><system.webServer>${add('H2-web-root')}</system.webServer>
      <location path="sub"><system.webServer>${add('H4-web-root-location-sub')}</system.webServer></location></configuration>`);
    f.write('root/sub/web.config', ws(add('H5-web-sub')));
    f.write('root/sub/deeper/web.config', ws('<httpProtocol><customHeaders><remove name="H2-web-root" /></customHeaders></httpProtocol>'));
    const cs = f.system();
    assert.deepEqual(headers(ok(cs.resolve(1, '/sub/page.html'))), [
      'H0-apphost-root',
      'H1-apphost-site',
      'H2-web-root',
      'H3-apphost-sub',
      'H4-web-root-location-sub',
      'H5-web-sub',
    ]);
    assert.deepEqual(headers(ok(cs.resolve(1, '/sub/deeper/x'))), [
      'H0-apphost-root',
      'H1-apphost-site',
      'H3-apphost-sub',
      'H4-web-root-location-sub',
      'H5-web-sub',
    ]);
    assert.deepEqual(headers(ok(cs.resolve(1, '/other'))), ['H0-apphost-root', 'H1-apphost-site', 'H2-web-root']);
    assert.deepEqual(headers(ok(cs.resolve(2, '/sub/page.html'))), ['H0-apphost-root'], 'other sites see only the server level');
  });

  it('lets a <location path> name a file', () => {
    const f = fixture();
    f.write('root/web.config', '<configuration><location path="login.aspx"><system.webServer><httpRedirect enabled="true" /></system.webServer></location></configuration>');
    const cs = f.system();
    assert.equal(redirect(ok(cs.resolve(1, '/LOGIN.aspx'))), true);
    assert.equal(redirect(ok(cs.resolve(1, '/other.aspx'))), false);
    assert.equal(redirect(ok(cs.resolve(1, '/'))), false);
  });

  it('stops inheritInChildApplications="false" locations at child applications, not at subfolders', () => {
    const f = fixture('', `<location path="Site" inheritInChildApplications="false"><system.webServer><directoryBrowse enabled="true" /></system.webServer></location>`);
    f.write('root/web.config', '<configuration><location path="." inheritInChildApplications="false"><system.webServer><httpRedirect enabled="true" /></system.webServer></location></configuration>');
    const cs = f.system();
    const sub = ok(cs.resolve(1, '/sub/x'));
    assert.equal(redirect(sub), true);
    assert.equal(sub.section('system.webServer/directoryBrowse').bool('enabled'), true);
    const app = ok(cs.resolve(1, '/app/x'));
    assert.equal(redirect(app), false);
    assert.equal(app.section('system.webServer/directoryBrowse').bool('enabled'), false);
  });

  it('inherits ordinary web.config settings into child applications', () => {
    const f = fixture();
    f.write('root/web.config', ws('<httpRedirect enabled="true" />'));
    f.write('appdir/web.config', ws('<directoryBrowse enabled="true" />'));
    const app = ok(f.system().resolve(1, '/app/x'));
    assert.equal(redirect(app), true);
    assert.equal(app.section('system.webServer/directoryBrowse').bool('enabled'), true);
  });

  it('ignores web.config files below a virtual directory with allowSubDirConfig="false"', () => {
    const f = fixture();
    f.write('images/web.config', ws('<directoryBrowse enabled="true" />'));
    f.write('images/x/web.config', ws('<httpRedirect enabled="true" />'));
    const c = ok(f.system().resolve(1, '/img/x/a.png'));
    assert.equal(c.section('system.webServer/directoryBrowse').bool('enabled'), true, 'the directory root is read');
    assert.equal(redirect(c), false, 'folders below it are not');
  });

  it('names the deepest level that writes a section (sectionScope)', () => {
    const f = fixture(
      '<httpRedirect destination="/x" />',
      `<location path="Site/sub/deeper"><system.webServer><httpRedirect enabled="true" /></system.webServer></location>`,
    );
    f.write('root/sub/web.config', ws('<httpRedirect enabled="true" /><directoryBrowse enabled="true" />'));
    f.write('root/web.config', '<configuration><location path="page.htm"><system.webServer><httpRedirect enabled="true" /></system.webServer></location></configuration>');
    const cs = f.system();
    const scope = (url: string, section = 'system.webServer/httpRedirect'): string => ok(cs.resolve(1, url)).sectionScope(section);
    assert.equal(scope('/a.htm'), '/', 'server level only');
    assert.equal(scope('/page.htm'), '/page.htm', 'a <location> naming a file in a web.config');
    assert.equal(scope('/sub/a/b.htm'), '/sub', 'a folder web.config');
    assert.equal(scope('/sub/deeper/c.htm'), '/sub/deeper', 'an applicationHost <location>');
    assert.equal(scope('/sub/deeper/c.htm', 'system.webServer/directoryBrowse'), '/sub');
    assert.equal(scope('/x', 'system.webServer/defaultDocument'), '/', 'a section nobody writes');
  });

  it('finds a web.config spelled Web.config', () => {
    const f = fixture();
    f.write('root/sub/Web.config', ws('<httpRedirect enabled="true" />'));
    assert.equal(redirect(ok(f.system().resolve(1, '/sub/a'))), true);
  });
});

describe('ConfigSystem: errors', () => {
  it('fails only the URLs below a broken web.config, with file, line and column', () => {
    const f = fixture();
    const broken = f.write('root/sub/web.config', '<configuration>\n  <system.webServer>\n    <directoryBrowse enabled="maybe" />\n  </system.webServer>\n</configuration>');
    const cs = f.system();
    const err = failed(cs.resolve(1, '/sub/page'));
    assert.equal(err.code, 'CFG_INVALID_VALUE');
    assert.deepEqual(err.position, { file: broken, line: 3, column: 22 });
    assert.equal(err.hresult, HRESULT.invalidData);
    assert.equal(err.message, "Invalid value 'maybe' for attribute 'enabled' of element 'directoryBrowse': expected true or false");
    assert.equal(ok(cs.resolve(1, '/other/page')).application.path, '/');
    assert.equal(failed(cs.resolve(1, '/sub/deeper/x')).code, 'CFG_INVALID_VALUE');
  });

  it('reports a section locked by default, and honours delegation by <location overrideMode="Allow">', () => {
    const f = fixture('', '<location path="Other" overrideMode="Allow"><system.webServer><handlers /></system.webServer></location>');
    const webConfig = ws('<handlers><add name="php" path="*.php" verb="*" modules="FastCgiModule" /></handlers>');
    const locked = f.write('root/web.config', webConfig);
    f.write('other/web.config', webConfig);
    const cs = f.system();
    const err = failed(cs.resolve(1, '/'));
    assert.equal(err.code, 'CFG_LOCKED');
    assert.equal(err.hresult, HRESULT.lockViolation);
    assert.equal(err.position?.file, locked);
    assert.match(err.message, /^This configuration section cannot be used at this path\./);
    const handlers = ok(cs.resolve(2, '/index.php')).section('system.webServer/handlers');
    assert.deepEqual(handlers.items.map((i: ConfigElement) => i.str('name')), ['php']);
  });

  it('allows MachineToApplication sections only at an application root', () => {
    const f = fixture('', '<location path="Site" overrideMode="Allow"><system.webServer><modules /></system.webServer></location>');
    f.write('appdir/web.config', ws('<modules runAllManagedModulesForAllRequests="true" />'));
    f.write('root/sub/web.config', ws('<modules runAllManagedModulesForAllRequests="true" />'));
    const cs = f.system();
    assert.equal(ok(cs.resolve(1, '/app/x')).section('system.webServer/modules').bool('runAllManagedModulesForAllRequests'), true);
    const err = failed(cs.resolve(1, '/sub/x'));
    assert.equal(err.code, 'CFG_WRONG_LEVEL');
    assert.equal(err.position?.file, join(f.dir, 'root/sub/web.config'));
  });

  it('rejects AppHostOnly sections in a web.config', () => {
    const f = fixture();
    f.write('root/web.config', '<configuration><system.applicationHost><sites /></system.applicationHost></configuration>');
    assert.equal(failed(f.system().resolve(1, '/')).code, 'CFG_WRONG_LEVEL');
  });

  it('lets a web.config register new sections but not redefine existing ones', () => {
    const f = fixture();
    f.write('root/web.config', '<configuration><configSections><section name="myCompany" /></configSections><myCompany setting="1" /></configuration>');
    f.write('root/sub/web.config', '<configuration><configSections><sectionGroup name="system.webServer"><section name="staticContent" overrideModeDefault="Deny" /></sectionGroup></configSections></configuration>');
    const cs = f.system();
    ok(cs.resolve(1, '/'));
    assert.deepEqual(f.reports.map((u) => u.section), ['myCompany']);
    const err = failed(cs.resolve(1, '/sub/x'));
    assert.equal(err.code, 'CFG_DUPLICATE_SECTION');
    assert.equal(err.position?.file, join(f.dir, 'root/sub/web.config'));
  });

  it('does not let a web.config re-register a built-in section to unlock it', () => {
    // applicationHost.config here registers no directoryBrowse/httpLogging: Wharf's schema does.
    const f = fixture();
    f.write(
      'root/web.config',
      '<configuration><configSections><sectionGroup name="system.webServer"><section name="httpLogging" overrideModeDefault="Allow" /></sectionGroup></configSections><system.webServer><httpLogging dontLog="true" /></system.webServer></configuration>',
    );
    const err = failed(f.system().resolve(1, '/'));
    assert.equal(err.code, 'CFG_DUPLICATE_SECTION');
  });

  it('reports an unreadable web.config as CFG_READ (0x80070005)', () => {
    const f = fixture();
    mkdirSync(join(f.dir, 'root/sub/web.config'));
    const err = failed(f.system().resolve(1, '/sub/a'));
    assert.equal(err.code, 'CFG_READ');
    assert.equal(err.hresult, HRESULT.accessDenied);
    assert.equal(err.position?.file, join(f.dir, 'root/sub/web.config'));
  });
});

describe('ConfigSystem: caching and live changes', () => {
  it('answers a repeated URL with the cached result, without looking at the disk', () => {
    const f = fixture();
    f.write('root/web.config', ws('<httpRedirect enabled="true" />'));
    const cs = f.system();
    const first = cs.resolve(1, '/a');
    f.remove('root/web.config');
    f.clock.t += 999;
    const second = cs.resolve(1, '/a');
    assert.equal(second, first, 'the very same result object');
    assert.equal(redirect(ok(second)), true);
  });

  it('applies an edit, a new file and a deletion within a second', () => {
    const f = fixture();
    f.write('root/sub/web.config', ws('<directoryBrowse enabled="true" />'));
    const cs = f.system();
    const browse = (url: string): boolean => ok(cs.resolve(1, url)).section('system.webServer/directoryBrowse').bool('enabled');
    assert.equal(browse('/sub/a'), true);

    f.write('root/sub/web.config', ws('<directoryBrowse enabled="false" showFlags="Date" />'));
    assert.equal(browse('/sub/a'), true, 'not re-checked within the second');
    f.clock.t += 1000;
    assert.equal(browse('/sub/a'), false, 'edit picked up');

    f.write('root/sub/deeper/web.config', ws('<directoryBrowse enabled="true" />'));
    assert.equal(browse('/sub/deeper/a'), true, 'a URL seen for the first time reads the new file');
    f.write('root/web.config', ws('<httpRedirect enabled="true" />'));
    assert.equal(redirect(ok(cs.resolve(1, '/sub/a'))), false);
    f.clock.t += 1000;
    assert.equal(redirect(ok(cs.resolve(1, '/sub/a'))), true, 'creation picked up');

    f.remove('root/sub/deeper/web.config');
    f.clock.t += 1000;
    assert.equal(browse('/sub/deeper/a'), false, 'deletion picked up');
  });

  it('recovers once a broken web.config is fixed', () => {
    const f = fixture();
    f.write('root/web.config', '<configuration><system.webServer>');
    const cs = f.system();
    assert.equal(failed(cs.resolve(1, '/x')).code, 'CFG_XML');
    f.write('root/web.config', ws('<httpRedirect enabled="true" />'));
    f.clock.t += 1000;
    assert.equal(redirect(ok(cs.resolve(1, '/x'))), true);
  });

  it('reports each unsupported section once per file', () => {
    const f = fixture('<asp />');
    f.write('root/web.config', '<configuration><system.web><compilation /></system.web><system.webServer><rewrite><outboundRules /></rewrite></system.webServer></configuration>');
    f.write('root/sub/web.config', '<configuration><system.web><compilation /></system.web></configuration>');
    const cs = f.system();
    for (const url of ['/', '/a', '/sub/a', '/sub/b']) ok(cs.resolve(1, url));
    f.write('root/web.config', '<configuration><system.web><compilation debug="true" /></system.web></configuration>');
    f.clock.t += 1000;
    ok(cs.resolve(1, '/'));
    assert.deepEqual(
      f.reports.map((u) => `${u.position.file.slice(f.dir.length)}:${u.position.line} ${u.section}`),
      [
        '/applicationHost.config:29 system.webServer/asp',
        '/root/web.config:1 system.web/compilation',
        '/root/web.config:1 system.webServer/rewrite/outboundRules',
        '/root/sub/web.config:1 system.web/compilation',
      ],
    );
  });
});

describe('ConfigSystem: work per URL is bounded by what exists', () => {
  const add = (name: string): string => `<httpProtocol><customHeaders><add name="${name}" value="1" /></customHeaders></httpProtocol>`;

  it('reads the web.config files of existing folders however many segments follow, and only those', () => {
    const f = fixture();
    f.write('root/sub/web.config', ws(add('H-sub')));
    f.write('root/sub/deeper/web.config', ws(add('H-deeper')));
    const cs = f.system();
    const c = ok(cs.resolve(1, '/sub/deeper/' + 'q/'.repeat(20_000) + 'end.txt'));
    assert.deepEqual(headers(c), ['H-sub', 'H-deeper']);
    // root, sub, deeper, and the first folder that does not exist: not one per segment.
    assert.deepEqual(c.configFiles, ['root', 'root/sub', 'root/sub/deeper', 'root/sub/deeper/q'].map((d) => join(f.dir, d, 'web.config')));
    assert.equal(c.physicalPath, join(f.dir, 'root/sub/deeper', 'q/'.repeat(20_000) + 'end.txt'));
  });

  it('still applies <location>s that name URLs below folders that do not exist', () => {
    const f = fixture('', `<location path="Site/nothere/deep">${ws(add('H-apphost-location')).replace(/<\/?configuration>/g, '')}</location>`);
    f.write('root/web.config', `<configuration><location path="missing/x"><system.webServer>${add('H-web-location')}</system.webServer></location></configuration>`);
    const cs = f.system();
    assert.deepEqual(headers(ok(cs.resolve(1, '/nothere/deep/' + 'z/'.repeat(1000)))), ['H-apphost-location']);
    assert.deepEqual(headers(ok(cs.resolve(1, '/MISSING/x/y'))), ['H-web-location']);
    assert.deepEqual(headers(ok(cs.resolve(1, '/missing/y'))), []);
  });

  it('notices a folder created later, with its web.config, within a second', () => {
    const f = fixture();
    const cs = f.system();
    assert.deepEqual(headers(ok(cs.resolve(1, '/later/a/b'))), []);
    f.write('root/later/a/web.config', ws(add('H-later')));
    f.clock.t += 1001;
    assert.deepEqual(headers(ok(cs.resolve(1, '/later/a/b'))), ['H-later']);
  });

  it('treats a name or path the file system cannot hold, and a symlink loop, as no folder (not a 500.19), reporting ENAMETOOLONG once', () => {
    const f = fixture();
    symlinkSync('.', join(f.dir, 'root/loop'));
    const tooLong: string[] = [];
    const cs = f.system((folder) => tooLong.push(folder));
    const name = '\u00e9'.repeat(200); // 400 bytes of UTF-8: over NAME_MAX
    const c = ok(cs.resolve(1, `/${name}/x.txt`));
    assert.equal(c.physicalPath, join(f.dir, 'root', name, 'x.txt'));
    assert.deepEqual(tooLong, [join(f.dir, 'root', name)]);
    ok(cs.resolve(1, '/loop'.repeat(100) + '/x.txt'));
  });
});
