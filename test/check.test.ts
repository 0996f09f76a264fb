/**
 * `wharf check`: validates applicationHost.config and every web.config its sites reach without
 * serving, prints `file:line:column: severity: message`, exits 0 or 1 (as `nginx -t`). Run as a
 * user runs it: the real CLI on real files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FIXTURES, REPO_ROOT, WHARF_BIN, run } from './helpers/wharf.js';

const compatDir = resolve(REPO_ROOT, '../shared/compat');

async function check(configFile: string | undefined, systemDrive: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const args = [WHARF_BIN, 'check', '--system-drive', systemDrive];
  if (configFile !== undefined) args.push('--config', configFile);
  return run(process.execPath, args);
}

/** Lines of `wharf check` output that report a problem of this severity. */
function lines(out: string, severity: 'error' | 'warning' | 'note'): string[] {
  return out.split('\n').filter((l) => l.includes(`: ${severity}: `));
}

/** A site folder with an applicationHost.config built from the `static` fixture's sections. */
function site(options: { appHost?: (text: string) => string; files?: Record<string, string> } = {}): { dir: string; config: string; root: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-check-'));
  const root = join(dir, 'wwwroot');
  mkdirSync(root);
  let text = readFileSync(join(FIXTURES, 'static', 'applicationHost.config'), 'utf8').replace('{{PORT}}', '8123');
  if (options.appHost) text = options.appHost(text);
  const config = join(dir, 'applicationHost.config');
  writeFileSync(config, text);
  writeFileSync(join(root, 'index.html'), '<p>hi</p>\n');
  for (const [name, content] of Object.entries(options.files ?? {})) {
    const file = join(root, name);
    mkdirSync(resolve(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
  return { dir, config, root };
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} is in the file`);
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${before[before.length - 1]!.length + 1}`;
}

test('wharf check on a good configuration exits 0 and says the test is successful', async () => {
  const s = site({ files: { 'sub/web.config': '<configuration><system.webServer><defaultDocument enabled="false" /></system.webServer></configuration>\n' } });
  const r = await check(s.config, join(s.dir, 'sd'));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(lines(r.stdout, 'error'), []);
  assert.deepEqual(lines(r.stdout, 'warning'), []);
  assert.match(r.stdout, new RegExp(`wharf: configuration ${s.config.replace(/[.]/g, '\\.')} test is successful \\(0 errors, 0 warning\\(s\\), 0 note\\(s\\); 1 web\\.config file checked\\)`));
  // Without --config: the embedded default, which must itself be clean.
  const d = await check(undefined, join(s.dir, 'sd'));
  assert.equal(d.code, 0, d.stdout);
  assert.deepEqual(lines(d.stdout, 'warning'), []);
  assert.match(d.stdout, /assets\/default\/applicationHost\.config test is successful/);
});

test('wharf check on a broken applicationHost.config exits 1 with file:line:column of the bad attribute', async () => {
  const s = site({ appHost: (t) => t.replace('<directoryBrowse enabled="false" />', '<directoryBrowse enabled="maybe" />') });
  const r = await check(s.config, join(s.dir, 'sd'));
  assert.equal(r.code, 1, r.stdout);
  const at = positionOf(readFileSync(s.config, 'utf8'), 'enabled="maybe"');
  assert.deepEqual(lines(r.stdout, 'error'), [`${s.config}:${at}: error: Invalid value 'maybe' for attribute 'enabled' of element 'directoryBrowse': expected true or false`]);
  assert.match(r.stdout, /test failed \(1 error,/);
  // Not well-formed XML: the position of the parse error.
  const x = site({ appHost: (t) => t.replace('<directoryBrowse enabled="false" />', '<directoryBrowse enabled="false">') });
  const rx = await check(x.config, join(x.dir, 'sd'));
  assert.equal(rx.code, 1);
  assert.match(lines(rx.stdout, 'error')[0] ?? '', new RegExp(`^${x.config.replace(/[.]/g, '\\.')}:\\d+:\\d+: error: `));
});

test('wharf check finds a broken web.config deep in a site and names its line and column; siblings still checked', async () => {
  const bad = '<configuration>\n  <system.webServer>\n    <staticContent>\n      <mimeMap fileExtension=".txt" mimeType="text/plain" />\n      <mimeMap fileExtension=".txt" mimeType="text/x" />\n    </staticContent>\n  </system.webServer>\n</configuration>\n';
  const unknown = '<configuration>\n  <system.webServer>\n    <defaultDocument enabled="true" bogus="1" />\n  </system.webServer>\n</configuration>\n';
  const s = site({ files: { 'a/b/c/web.config': bad, 'other/web.config': unknown } });
  const r = await check(s.config, join(s.dir, 'sd'));
  assert.equal(r.code, 1, r.stdout);
  const errors = lines(r.stdout, 'error');
  assert.equal(errors.length, 2, r.stdout);
  const file = join(s.root, 'a', 'b', 'c', 'web.config');
  // The server level already maps .txt: the web.config's first .txt entry is the duplicate.
  assert.ok(errors.includes(`${file}:${positionOf(bad, '<mimeMap fileExtension=".txt" mimeType="text/plain"')}: error: Cannot add duplicate collection entry of type 'mimeMap' with unique key attribute 'fileExtension' set to '.txt'`), r.stdout);
  const other = join(s.root, 'other', 'web.config');
  assert.ok(errors.includes(`${other}:${positionOf(unknown, 'bogus')}: error: Unrecognized attribute 'bogus'. Note that attribute names are case-sensitive.`), r.stdout);
  assert.match(r.stdout, /test failed \(2 errors, .*; 2 web\.config files checked\)/);
});

test('a missing configuration file is reported as file: message, never file:0:0 (check and start)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-check-missing-'));
  const missing = join(dir, 'nope.config');
  const r = await check(missing, join(dir, 'sd'));
  assert.equal(r.code, 1);
  assert.deepEqual(lines(r.stdout, 'error'), [`${missing}: error: Cannot read the configuration file: the file does not exist (ENOENT)`]);
  assert.doesNotMatch(r.stdout + r.stderr, /:0:0/);
  const s = await run(process.execPath, [WHARF_BIN, 'start', '--config', missing, '--system-drive', join(dir, 'sd')]);
  assert.equal(s.code, 1);
  // The error is the one `wharf:` line, and the last; timestamped info lines (such as descriptors
  // closed at start) may come before it.
  const errorLines = s.stderr.split('\n').filter((l) => l.startsWith('wharf:'));
  assert.deepEqual(errorLines, [`wharf: ${missing}: Cannot read the configuration file: the file does not exist (ENOENT)`]);
  assert.ok(s.stderr.endsWith(`${errorLines[0]}\n`), s.stderr);
});

test('wharf check reports unenforced security settings with file:line:column, security first; harmless defaults are silent', async () => {
  const webConfig = [
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
    '      <deny users="?" />',
    '    </authorization>',
    '  </system.web>',
    '</configuration>',
    '',
  ].join('\n');
  const s = site({
    files: { 'admin/web.config': webConfig },
    appHost: (t) =>
      t.replace(
        '<security>',
        '<security>\n      <authentication>\n        <anonymousAuthentication enabled="true" />\n        <windowsAuthentication enabled="false" />\n        <basicAuthentication enabled="true" />\n      </authentication>\n      <authorization>\n        <add accessType="Allow" users="*" />\n      </authorization>\n      <ipSecurity allowUnlisted="true" />',
      ),
  });
  const r = await check(s.config, join(s.dir, 'sd'));
  assert.equal(r.code, 0, `warnings do not fail the check:\n${r.stdout}`);
  const warnings = lines(r.stdout, 'warning');
  const appHostText = readFileSync(s.config, 'utf8');
  const web = join(s.root, 'admin', 'web.config');
  assert.deepEqual(warnings, [
    // The fixture's <modules> lists neither BasicAuthenticationModule nor UrlAuthorizationModule.
    `${s.config}:${positionOf(appHostText, '<basicAuthentication enabled="true" />')}: warning: SECURITY: system.webServer/security/authentication/basicAuthentication: this setting is not enforced: BasicAuthenticationModule is not in <modules>: no Basic challenge is sent and Basic credentials are ignored`,
    `${web}:12:7: warning: SECURITY: system.web/authorization: <deny users="?"/> is not enforced: ASP.NET URL authorization is not applied (Wharf hosts no .NET): every request is allowed`,
    `${web}:6:9: warning: SECURITY: system.webServer/security/authorization: this rule is not enforced: UrlAuthorizationModule is not in <modules>: every request is allowed`,
  ]);
  // Security warnings come before everything else the check prints.
  const first = r.stdout.split('\n')[0]!;
  assert.match(first, /SECURITY: .*basicAuthentication/);
});

test('wharf check says when a configuration cannot serve: no handler mappings (404.4), a handler whose module is not in <modules> (500.21)', async () => {
  const noHandlers = site({ appHost: (t) => t.replace(/<modules>[\s\S]*<\/handlers>/, '') });
  const r = await check(noHandlers.config, join(noHandlers.dir, 'sd'));
  assert.equal(r.code, 0);
  const w = lines(r.stdout, 'warning');
  assert.equal(w.length, 1, r.stdout);
  assert.match(w[0]!, new RegExp(`^${noHandlers.config.replace(/[.]/g, '\\.')}:2:1: warning: no handler mappings: every request will get 404\\.4`));
  const noStaticModule = site({ appHost: (t) => t.replace('<add name="StaticFileModule" lockItem="true" />', '') });
  const r2 = await check(noStaticModule.config, join(noStaticModule.dir, 'sd'));
  const text = readFileSync(noStaticModule.config, 'utf8');
  assert.deepEqual(lines(r2.stdout, 'warning'), [
    `${noStaticModule.config}:${positionOf(text, '<add name="StaticFile" ')}: warning: handler StaticFile names StaticFileModule, which is not in <modules>: requests it maps (path="*") will get 500.21`,
  ]);
});

test('wharf check on every configuration in shared/compat: each loads, and what it reports is what Wharf does not do', async (t) => {
  let names: string[];
  try {
    names = readdirSync(compatDir).filter((n) => n.endsWith('.config'));
  } catch {
    if (process.env['CI'] === 'true') assert.fail(`${compatDir} is missing`);
    t.skip(`${compatDir} not found`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'wharf-check-compat-'));
  const outputs = new Map<string, string>();
  for (const name of names) {
    let config = join(compatDir, name);
    if (name.endsWith('.web.config')) {
      // A web.config is checked as the root web.config of the embedded default's site, with every
      // section delegated to it (as these files' hosts do).
      const root = join(dir, name.replace(/\.web\.config$/, ''));
      mkdirSync(root, { recursive: true });
      writeFileSync(join(root, 'web.config'), readFileSync(config));
      config = join(root, 'applicationHost.config');
      const appHost = readFileSync(join(REPO_ROOT, 'assets', 'default', 'applicationHost.config'), 'utf8')
        .replace('physicalPath="%WHARF_WWWROOT%"', `physicalPath="${root}"`)
        // These files write their own compression type lists (`<add mimeType="text/*"/>`): they were
        // made for servers whose applicationHost.config has none (a duplicate key is 500.19, in IIS too).
        .replace(/<httpCompression[\s\S]*?<\/httpCompression>/, '')
        .replace(/overrideModeDefault="Deny"/g, 'overrideModeDefault="Allow"');
      writeFileSync(config, appHost);
    }
    const r = await check(config, join(dir, 'sd'));
    outputs.set(name, r.stdout);
    console.log(`[check] ${name}: exit ${r.code}\n${r.stdout.split('\n').filter((l) => !l.includes(': note: section ')).join('\n')}`);
    assert.equal(r.code, 0, `${name}:\n${r.stdout}`);
    assert.deepEqual(lines(r.stdout, 'error'), [], name);
    for (const l of r.stdout.split('\n')) {
      if (l === '' || l.startsWith('wharf: ')) continue;
      assert.match(l, /^\/\S+(:\d+:\d+)?: (warning|note): /, `${name}: every line names a file (and a position when it has one)`);
    }
  }
  // The IIS Express default: IIS's shipped security settings are defaults, so nothing is flagged.
  assert.doesNotMatch(outputs.get('iisexpress-default-applicationhost.config') ?? '', /SECURITY/);
  // …but its NTLM provider is named: Wharf offers Negotiate only.
  assert.match(outputs.get('iisexpress-default-applicationhost.config') ?? '', /note: system\.webServer\/security\/authentication\/windowsAuthentication: entry <add value="NTLM"\/> has no effect in Wharf: only Negotiate/);
  // What the real files ask for and Wharf does not do, each with its line.
  const ancm = outputs.get('aspnetcore-ancm-windows-auth-url-authorization.web.config') ?? '';
  // Windows authentication (Negotiate) and URL authorization are enforced: neither is reported.
  assert.doesNotMatch(ancm, /windowsAuthentication/);
  assert.doesNotMatch(ancm, /security\/authorization/);
  const forms = outputs.get('aspnet-webforms-forms-auth-location-authorization.web.config') ?? '';
  assert.equal(lines(forms, 'warning').filter((l) => l.includes('system.web/authorization: <deny')).length, 4, forms);
  assert.doesNotMatch(outputs.get('static-site-h5bp.web.config') ?? '', /SECURITY/);
});
