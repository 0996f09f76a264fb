/** Wharf's embedded assets/default/applicationHost.config: what a first run without --config serves. */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HRESULT } from '../errors.js';
import { loadAppHostFile } from './application-host.js';
import { ConfigSystem } from './config-system.js';
import { resolvePathAttribute } from './merge.js';
import type { ResolvedConfig } from './types.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// Compiled to dist/src/config/: the repository root is three folders up.
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const assets = join(repoRoot, 'assets/default');
const systemDrive = tracked(mkdtempSync(join(tmpdir(), 'wharf-default-')));
after(() => rmSync(systemDrive, { recursive: true, force: true }));
// The server sets WHARF_WWWROOT to the bundled welcome site (or to `wharf start --root <dir>`).
const OPTS = { systemDrive, variables: { IIS_BIN: '/opt/wharf', WHARF_WWWROOT: join(assets, 'wwwroot') } };

const appHost = loadAppHostFile(join(assets, 'applicationHost.config'), OPTS);

function root(system = new ConfigSystem(appHost, OPTS)): ResolvedConfig {
  const r = system.resolve(1, '/');
  if (!r.ok) assert.fail(r.error.describe());
  return r.config;
}

describe('the embedded applicationHost.config', () => {
  it('defines Default Web Site on *:8080 (and https on *:8443) serving assets/default/wwwroot with DefaultAppPool', () => {
    assert.deepEqual(appHost.unsupported, [], 'no section Wharf would have to warn about');
    assert.equal(appHost.sites.length, 1);
    const site = appHost.sites[0]!;
    assert.deepEqual([site.id, site.name, site.serverAutoStart], [1, 'Default Web Site', true]);
    assert.deepEqual(site.bindings.map((b) => [b.protocol, b.ip, b.port, b.host]), [['http', '*', 8080, ''], ['https', '*', 8443, '']]);
    const app = site.applications[0]!;
    assert.deepEqual([app.path, app.applicationPool], ['/', 'DefaultAppPool']);
    assert.equal(app.virtualDirectories[0]!.physicalPath, join(assets, 'wwwroot'));
    assert.match(readFileSync(join(assets, 'wwwroot/index.html'), 'utf8'), /Wharf is running/);
    assert.deepEqual(appHost.applicationPools.map((p) => [p.name, p.element.child('processModel').enumName('identityType')]), [['DefaultAppPool', 'LocalSystem']]);
    assert.equal(site.logFileDirectory, join(systemDrive, 'inetpub/logs/LogFiles'), 'the IIS default directory, mapped');
    assert.equal(site.logFile.enumName('logFormat'), 'W3C');
  });

  it("lists the modules Wharf implements, each locked, and IIS's CGI-exe, SSI and last three handlers", () => {
    const c = root();
    assert.deepEqual(appHost.section('system.webServer/globalModules').items.map((m) => m.str('name')).sort(), [
      'AnonymousAuthenticationModule',
      'BasicAuthenticationModule',
      'CgiModule',
      'CustomErrorModule',
      'DefaultDocumentModule',
      'DigestAuthenticationModule',
      'DirectoryListingModule',
      'DynamicCompressionModule',
      'DynamicIpRestrictionModule',
      'FastCgiModule',
      'HttpLoggingModule',
      'HttpRedirectionModule',
      'IISCertificateMappingAuthenticationModule',
      'IpRestrictionModule',
      'ProtocolSupportModule',
      'RequestFilteringModule',
      'RewriteModule',
      'ServerSideIncludeModule',
      'StaticCompressionModule',
      'StaticFileModule',
      'UrlAuthorizationModule',
      'WindowsAuthenticationModule',
      'iisnode',
    ]);
    const modules = c.section('system.webServer/modules').items;
    assert.equal(modules.length, 23);
    // URL Rewrite and Node.js hosting are on, unlocked, as their installers leave them.
    assert.deepEqual(modules.slice(-2).map((m) => m.str('name')), ['RewriteModule', 'iisnode']);
    const handlers = c.section('system.webServer/handlers');
    assert.deepEqual([...handlers.flagNames('accessPolicy')].sort(), ['Read', 'Script']);
    assert.deepEqual(
      handlers.items.map((h) => [h.str('name'), h.str('path'), h.str('verb'), h.str('modules'), h.enumName('resourceType'), h.enumName('requireAccess')]),
      [
        ['CGI-exe', '*.exe', '*', 'CgiModule', 'File', 'Execute'],
        ['TRACEVerbHandler', '*', 'TRACE', 'ProtocolSupportModule', 'Unspecified', 'None'],
        ['OPTIONSVerbHandler', '*', 'OPTIONS', 'ProtocolSupportModule', 'Unspecified', 'None'],
        ['SSINC-stm', '*.stm', 'GET,HEAD,POST', 'ServerSideIncludeModule', 'File', 'Script'],
        ['SSINC-shtm', '*.shtm', 'GET,HEAD,POST', 'ServerSideIncludeModule', 'File', 'Script'],
        ['SSINC-shtml', '*.shtml', 'GET,HEAD,POST', 'ServerSideIncludeModule', 'File', 'Script'],
        ['StaticFile', '*', '*', 'StaticFileModule,DefaultDocumentModule,DirectoryListingModule', 'Either', 'Read'],
      ],
    );
  });

  it('ships default documents, custom errors, request filtering and the IIS MIME map', () => {
    const c = root();
    assert.deepEqual(c.section('system.webServer/defaultDocument').child('files').items.map((i) => i.str('value')), ['Default.htm', 'Default.asp', 'index.htm', 'index.html', 'iisstart.htm']);
    assert.equal(c.section('system.webServer/directoryBrowse').bool('enabled'), false);
    const errors = c.section('system.webServer/httpErrors');
    assert.equal(errors.enumName('errorMode'), 'DetailedLocalOnly');
    assert.deepEqual(errors.items.map((e) => e.num('statusCode')), [401, 403, 404, 405, 406, 412, 500, 501, 502]);
    assert.equal(resolvePathAttribute(errors.items[2]!, 'prefixLanguageFilePath', { ...OPTS, baseDir: assets }), '/opt/wharf/custerr');
    const rf = c.section('system.webServer/security/requestFiltering');
    assert.deepEqual(rf.child('hiddenSegments').items.map((i) => i.str('segment')), ['web.config', 'bin', 'App_code', 'App_GlobalResources', 'App_LocalResources', 'App_WebReferences', 'App_Data', 'App_Browsers']);
    const config = rf.child('fileExtensions').items.find((i) => i.str('fileExtension') === '.config');
    assert.equal(config?.bool('allowed'), false);
    const mime = new Map(c.section('system.webServer/staticContent').items.map((i) => [i.str('fileExtension'), i.str('mimeType')]));
    assert.equal(mime.size, 375);
    assert.equal(mime.get('.js'), 'application/javascript');
    assert.equal(mime.get('.json'), 'application/json');
    assert.equal(mime.get('.svg'), 'image/svg+xml');
    assert.equal(mime.get('.woff'), 'font/x-woff');
    assert.equal(mime.get('.woff2'), 'application/font-woff2');
    assert.equal(mime.get('.webp'), undefined, 'IIS does not ship .webp');
    assert.equal(c.section('system.webServer/security/authentication/anonymousAuthentication').bool('enabled'), true);
    assert.equal(c.section('system.webServer/caching').bool('enableKernelCache'), true);
  });

  it('delegates handlers and modules to web.config files but keeps built-in modules and locked attributes', () => {
    const dir = tracked(mkdtempSync(join(tmpdir(), 'wharf-default-site-')));
    try {
      cpSync(join(assets, 'applicationHost.config'), join(dir, 'applicationHost.config'));
      const localOpts = { systemDrive, variables: { IIS_BIN: '/opt/wharf', WHARF_WWWROOT: join(dir, 'wwwroot') } };
      const local = loadAppHostFile(join(dir, 'applicationHost.config'), localOpts);
      const wwwroot = local.sites[0]!.applications[0]!.virtualDirectories[0]!.physicalPath;
      cpSync(join(assets, 'wwwroot'), wwwroot, { recursive: true });
      const webConfig = join(wwwroot, 'web.config');
      let t = 0;
      const system = new ConfigSystem(local, { ...localOpts, now: () => t });
      const resolve = (text: string) => {
        writeFileSync(webConfig, text);
        t += 1000;
        return system.resolve(1, '/');
      };
      const added = resolve('<configuration><system.webServer><handlers><add name="node" path="*.js" verb="*" modules="iisnode" /></handlers><modules><add name="Mine" type="x" /></modules></system.webServer></configuration>');
      assert.ok(added.ok);
      assert.deepEqual(added.config.section('system.webServer/handlers').items.map((h) => h.str('name')), ['node', 'CGI-exe', 'TRACEVerbHandler', 'OPTIONSVerbHandler', 'SSINC-stm', 'SSINC-shtm', 'SSINC-shtml', 'StaticFile']);
      assert.equal(added.config.section('system.webServer/modules').items.at(-1)!.str('name'), 'Mine');
      const removed = resolve('<configuration><system.webServer><modules><remove name="StaticFileModule" /></modules></system.webServer></configuration>');
      assert.ok(!removed.ok);
      assert.equal(removed.error.code, 'CFG_LOCKED');
      assert.equal(removed.error.hresult, HRESULT.lockViolation);
      const defaultPath = resolve('<configuration><system.webServer><httpErrors defaultPath="x.htm" /></system.webServer></configuration>');
      assert.ok(!defaultPath.ok && defaultPath.error.code === 'CFG_LOCKED');
      const serverRuntime = resolve('<configuration><system.webServer><serverRuntime enabled="false" /></system.webServer></configuration>');
      assert.ok(!serverRuntime.ok && serverRuntime.error.code === 'CFG_LOCKED', 'serverRuntime stays Deny');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
