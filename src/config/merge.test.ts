import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, HRESULT } from '../errors.js';
import { parseConfigFile } from './config-file.js';
import { mergeSection, MergedElement, resolvePathAttribute, SECTION_LOCKED_MESSAGE, ValueContext } from './merge.js';
import type { Contribution, EffectiveRegistration } from './merge.js';
import { SECTIONS } from './schema.js';

interface Level {
  readonly text: string;
  readonly kind?: 'appHost' | 'web';
  readonly file?: string;
  readonly atApplicationRoot?: boolean;
}

const SC = 'system.webServer/staticContent';
const VARIABLES = { IIS_BIN: '/opt/wharf' };
/** handlers and modules are Deny by default; IIS's shipped file delegates them. */
const ALLOW = { overrideModeDefault: 'Allow' } as const;

/** Merges `path` over files given shallow → deep; every block of each file contributes in file order. */
function merge(path: string, levels: readonly Level[], registration?: Partial<EffectiveRegistration>): MergedElement {
  const schema = SECTIONS.get(path)!;
  const contributions: Contribution[] = [];
  levels.forEach((level, i) => {
    const kind = level.kind ?? (i === 0 ? 'appHost' : 'web');
    const file = level.file ?? (kind === 'appHost' ? '/etc/wharf/applicationHost.config' : `/site/level${i}/web.config`);
    const parsed = parseConfigFile(file, level.text, { kind, variables: VARIABLES });
    for (const block of parsed.blocks) {
      const use = block.sections.get(path);
      if (use) contributions.push({ use, block, fromAppHost: kind === 'appHost', atApplicationRoot: level.atApplicationRoot ?? true });
    }
  });
  const reg: EffectiveRegistration = {
    overrideModeDefault: registration?.overrideModeDefault ?? schema.overrideModeDefault,
    allowDefinition: registration?.allowDefinition ?? schema.allowDefinition,
    allowLocation: registration?.allowLocation ?? true,
  };
  return mergeSection(schema, reg, contributions, new ValueContext(VARIABLES));
}

function ws(inner: string): string {
  return `<configuration>\n<system.webServer>\n${inner}\n</system.webServer>\n</configuration>`;
}

function mergeFails(path: string, levels: readonly Level[], registration?: Partial<EffectiveRegistration>): ConfigError {
  try {
    merge(path, levels, registration);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

function mimeMaps(e: MergedElement): string[] {
  return e.items.map((i) => `${i.str('fileExtension')}=${i.str('mimeType')}`);
}

describe('attributes', () => {
  it('resolve independently: the deepest level that sets one wins, else the schema default', () => {
    const e = merge(SC, [
      { text: ws('<staticContent enableDocFooter="true"><clientCache cacheControlMode="UseMaxAge" cacheControlMaxAge="7.00:00:00" /></staticContent>') },
      { text: ws('<staticContent><clientCache cacheControlMaxAge="01:00:00" /></staticContent>') },
    ]);
    assert.equal(e.bool('enableDocFooter'), true);
    assert.equal(e.isSet('enableDocFooter'), true);
    assert.equal(e.bool('isDocFooterFileName'), false);
    assert.equal(e.isSet('isDocFooterFileName'), false);
    const cc = e.child('clientCache');
    assert.equal(cc.enumName('cacheControlMode'), 'UseMaxAge');
    assert.equal(cc.num('cacheControlMaxAge'), 3_600_000);
    assert.equal(cc.attributeSource('cacheControlMaxAge')?.file, '/site/level1/web.config');
    assert.equal(cc.bool('setEtag'), true, 'schema default');
    assert.equal(e.source?.file, '/site/level1/web.config');
  });

  it('exposes typed accessors and refuses names outside the schema', () => {
    const e = merge('system.webServer/directoryBrowse', [{ text: ws('<directoryBrowse showFlags="Date, LongDate" />') }]);
    assert.equal(e.get('enabled'), false);
    assert.deepEqual([...e.flagNames('showFlags')].sort(), ['Date', 'LongDate']);
    assert.equal(e.num('showFlags'), 34);
    assert.throws(() => e.get('enable'), TypeError);
    assert.throws(() => e.str('enabled'), TypeError);
    assert.throws(() => e.child('files'), TypeError);
    const none = merge('system.webServer/directoryBrowse', [{ text: ws('<directoryBrowse showFlags="None" />') }]);
    assert.deepEqual([...none.flagNames('showFlags')], ['None']);
  });

  it('expands the defaults of expanded attributes when read', () => {
    const e = merge('system.webServer/httpCompression', [{ text: ws('<httpCompression />') }]);
    assert.equal(e.str('directory'), 'C:\\inetpub\\temp\\IIS Temporary Compressed Files');
    assert.equal(resolvePathAttribute(e, 'directory', { systemDrive: '/srv/w', baseDir: '/etc/wharf' }), '/srv/w/inetpub/temp/IIS Temporary Compressed Files');
  });

  it('maps relative path attributes against the folder of the file that set them', () => {
    const e = merge('system.webServer/httpErrors', [
      { text: ws('<httpErrors />') },
      { text: ws('<httpErrors><error statusCode="404" prefixLanguageFilePath="errors" path="404.htm" /></httpErrors>'), file: '/var/www/shop/web.config' },
    ]);
    assert.equal(resolvePathAttribute(e.items[0]!, 'prefixLanguageFilePath', { systemDrive: '/srv/w', baseDir: '/etc/wharf' }), '/var/www/shop/errors');
  });
});

describe('collections', () => {
  const base = ws('<staticContent><mimeMap fileExtension=".css" mimeType="text/css" /><mimeMap fileExtension=".json" mimeType="application/json" /><mimeMap fileExtension=".js" mimeType="application/javascript" /></staticContent>');

  it('append this level after the inherited items', () => {
    const e = merge(SC, [{ text: base }, { text: ws('<staticContent><mimeMap fileExtension=".webp" mimeType="image/webp" /></staticContent>') }]);
    assert.deepEqual(mimeMaps(e), ['.css=text/css', '.json=application/json', '.js=application/javascript', '.webp=image/webp']);
    assert.equal(e.items[3]!.name, 'mimeMap');
    assert.equal(e.items[3]!.source?.file, '/site/level1/web.config');
  });

  it('reject a duplicate key like IIS, at the duplicate <add>, comparing keys case-insensitively', () => {
    const err = mergeFails(SC, [{ text: base }, { text: ws('<staticContent>\n  <mimeMap fileExtension=".JSON" mimeType="application/json" />\n</staticContent>') }]);
    assert.equal(err.code, 'CFG_DUPLICATE_ENTRY');
    assert.equal(err.hresult, HRESULT.alreadyExists);
    assert.equal(err.message, "Cannot add duplicate collection entry of type 'mimeMap' with unique key attribute 'fileExtension' set to '.JSON'");
    assert.deepEqual(err.position, { file: '/site/level1/web.config', line: 4, column: 3 });
    const sameFile = mergeFails(SC, [{ text: ws('<staticContent><mimeMap fileExtension=".a" mimeType="a/a" /><mimeMap fileExtension=".a" mimeType="a/b" /></staticContent>') }]);
    assert.equal(sameFile.code, 'CFG_DUPLICATE_ENTRY');
  });

  it('name every attribute of a combined key in the duplicate message', () => {
    const err = mergeFails('system.webServer/httpErrors', [
      { text: ws('<httpErrors><error statusCode="404" path="404.htm" /></httpErrors>') },
      { text: ws('<httpErrors><error statusCode="404" subStatusCode="-1" path="/nf" responseMode="ExecuteURL" /></httpErrors>') },
    ]);
    assert.equal(err.message, "Cannot add duplicate collection entry of type 'error' with combined key attributes 'statusCode, subStatusCode' respectively set to '404, -1'");
    const ok = merge('system.webServer/httpErrors', [
      { text: ws('<httpErrors><error statusCode="404" path="404.htm" /></httpErrors>') },
      { text: ws('<httpErrors><error statusCode="404" subStatusCode="2" path="404-2.htm" /></httpErrors>') },
    ]);
    assert.deepEqual(ok.items.map((i) => `${i.num('statusCode')}.${i.num('subStatusCode')}`), ['404.-1', '404.2']);
  });

  it('remove an inherited item (ignoring a missing key) and clear everything inherited', () => {
    const removed = merge(SC, [
      { text: base },
      { text: ws('<staticContent><remove fileExtension=".Json" /><remove fileExtension=".nope" /><mimeMap fileExtension=".json" mimeType="application/json; charset=utf-8" /></staticContent>') },
    ]);
    assert.deepEqual(mimeMaps(removed), ['.css=text/css', '.js=application/javascript', '.json=application/json; charset=utf-8']);
    const cleared = merge(SC, [{ text: base }, { text: ws('<staticContent><clear /><mimeMap fileExtension=".txt" mimeType="text/plain" /></staticContent>') }]);
    assert.deepEqual(mimeMaps(cleared), ['.txt=text/plain']);
  });

  it('put this level first for mergeAppend="false" collections (defaultDocument files, handlers)', () => {
    const e = merge('system.webServer/defaultDocument', [
      { text: ws('<defaultDocument><files><add value="Default.htm" /><add value="index.html" /></files></defaultDocument>') },
      { text: ws('<defaultDocument><files><add value="home.html" /><remove value="Default.htm" /><add value="index.php" /></files></defaultDocument>') },
    ]);
    assert.deepEqual(e.child('files').items.map((i) => i.str('value')), ['home.html', 'index.php', 'index.html']);
    const h = merge('system.webServer/handlers', [
      { text: ws('<handlers accessPolicy="Read, Script"><add name="StaticFile" path="*" verb="*" modules="StaticFileModule" /></handlers>') },
      { text: ws('<handlers><add name="php" path="*.php" verb="*" modules="FastCgiModule" scriptProcessor="%IIS_BIN%\\php-cgi" /></handlers>') },
    ], ALLOW);
    assert.deepEqual(h.items.map((i) => i.str('name')), ['php', 'StaticFile']);
    assert.equal(h.items[0]!.str('scriptProcessor'), '/opt/wharf\\php-cgi');
    assert.equal(h.items[1]!.str('modules'), 'StaticFileModule');
    assert.equal(h.items[0]!.enumName('requireAccess'), 'Script');
  });
});

describe('granular locks', () => {
  const modules = ws('<modules><add name="StaticFileModule" lockItem="true" /><add name="Session" type="S" /></modules>');

  it('lockItem items cannot be removed, cleared or re-added below', () => {
    const remove = mergeFails('system.webServer/modules', [{ text: modules }, { text: ws('<modules><remove name="StaticFileModule" /></modules>') }], ALLOW);
    assert.equal(remove.code, 'CFG_LOCKED');
    assert.equal(remove.hresult, HRESULT.lockViolation);
    assert.match(remove.message, /entry of type 'add' with unique key attribute 'name' set to 'StaticFileModule' is locked at a parent level \(lockItem\)/);
    assert.equal(remove.position?.file, '/site/level1/web.config');
    assert.match(mergeFails('system.webServer/modules', [{ text: modules }, { text: ws('<modules><clear /></modules>') }], ALLOW).message, /<clear\/> cannot remove/);
    assert.match(mergeFails('system.webServer/modules', [{ text: modules }, { text: ws('<modules><add name="StaticFileModule" /></modules>') }], ALLOW).message, /lockItem/);
    // Items without lockItem may still go.
    const ok = merge('system.webServer/modules', [{ text: modules }, { text: ws('<modules><remove name="Session" /></modules>') }], ALLOW);
    assert.deepEqual(ok.items.map((i) => i.str('name')), ['StaticFileModule']);
  });

  it('lockAttributes and lockAllAttributesExcept bind lower levels, not the level that sets them', () => {
    const top = ws('<httpErrors lockAttributes="allowAbsolutePathsWhenDelegated,defaultPath" defaultPath="C:\\e.htm" />');
    const err = mergeFails('system.webServer/httpErrors', [{ text: top }, { text: ws('<httpErrors\n defaultPath="x.htm" />') }]);
    assert.equal(err.code, 'CFG_LOCKED');
    assert.equal(err.message, "Lock violation: attribute 'defaultPath' of element 'httpErrors' is locked at a parent level (lockAttributes)");
    assert.deepEqual([err.position?.line, err.position?.column], [4, 2]);
    assert.equal(merge('system.webServer/httpErrors', [{ text: top }, { text: ws('<httpErrors errorMode="Custom" />') }]).enumName('errorMode'), 'Custom');
    const except = ws('<staticContent><clientCache lockAllAttributesExcept="cacheControlMode" /></staticContent>');
    assert.equal(merge(SC, [{ text: except }, { text: ws('<staticContent><clientCache cacheControlMode="DisableCache" /></staticContent>') }]).child('clientCache').enumName('cacheControlMode'), 'DisableCache');
    assert.equal(mergeFails(SC, [{ text: except }, { text: ws('<staticContent><clientCache setEtag="false" /></staticContent>') }]).code, 'CFG_LOCKED');
    assert.equal(mergeFails(SC, [{ text: ws('<staticContent lockAttributes="*" />') }, { text: ws('<staticContent enableDocFooter="true" />') }]).code, 'CFG_LOCKED');
  });

  it('lockElements and lockAllElementsExcept forbid child elements and directives below', () => {
    const noClear = ws('<staticContent lockElements="clear"><mimeMap fileExtension=".a" mimeType="a/a" /></staticContent>');
    const err = mergeFails(SC, [{ text: noClear }, { text: ws('<staticContent><clear /></staticContent>') }]);
    assert.equal(err.message, "Lock violation: element 'clear' of 'staticContent' is locked at a parent level (lockElements)");
    assert.equal(merge(SC, [{ text: noClear }, { text: ws('<staticContent><remove fileExtension=".a" /></staticContent>') }]).items.length, 0);
    const onlyAdd = ws('<staticContent lockAllElementsExcept="mimeMap" />');
    assert.equal(merge(SC, [{ text: onlyAdd }, { text: ws('<staticContent><mimeMap fileExtension=".b" mimeType="b/b" /></staticContent>') }]).items.length, 1);
    assert.equal(mergeFails(SC, [{ text: onlyAdd }, { text: ws('<staticContent><clientCache setEtag="false" /></staticContent>') }]).code, 'CFG_LOCKED');
  });
});

describe('section locking and allowed levels', () => {
  it('a Deny section in a web.config is CFG_LOCKED with IIS text', () => {
    const err = mergeFails('system.webServer/handlers', [{ text: ws('<handlers />') }, { text: ws('<handlers>\n<clear />\n</handlers>') }]);
    assert.equal(err.code, 'CFG_LOCKED');
    assert.equal(err.hresult, HRESULT.lockViolation);
    assert.equal(err.message, SECTION_LOCKED_MESSAGE);
    assert.equal(
      err.message,
      'This configuration section cannot be used at this path. This happens when the section is locked at a parent level. Locking is either by default (overrideModeDefault="Deny"), or set explicitly by a location tag with overrideMode="Deny" or the legacy allowOverride="false".',
    );
    assert.deepEqual(err.position, { file: '/site/level1/web.config', line: 3, column: 1 });
  });

  it('<location overrideMode="Allow"> unlocks for levels below; Deny and allowOverride="false" lock', () => {
    const unlocked = `<configuration><location path="" overrideMode="Allow">${ws('<handlers accessPolicy="Read" />').replace(/<\/?configuration>/g, '')}</location></configuration>`;
    const e = merge('system.webServer/handlers', [{ text: unlocked }, { text: ws('<handlers accessPolicy="Read, Script" />') }]);
    assert.deepEqual([...e.flagNames('accessPolicy')].sort(), ['Read', 'Script']);
    const locked = '<configuration><location path="" overrideMode="Deny"><system.webServer><staticContent /></system.webServer></location></configuration>';
    assert.equal(mergeFails(SC, [{ text: locked }, { text: ws('<staticContent />') }]).code, 'CFG_LOCKED');
    const legacy = '<configuration><location allowOverride="false"><system.webServer><staticContent /></system.webServer></location></configuration>';
    assert.equal(mergeFails(SC, [{ text: legacy }, { text: ws('<staticContent />') }]).code, 'CFG_LOCKED');
    // A web.config may lock for the levels below it.
    const webLock = '<configuration><location path="." overrideMode="Deny"><system.webServer><staticContent /></system.webServer></location></configuration>';
    assert.equal(mergeFails(SC, [{ text: ws('<staticContent />') }, { text: webLock }, { text: ws('<staticContent />') }]).position?.file, '/site/level2/web.config');
  });

  it('applicationHost.config itself is never locked by its own defaults', () => {
    const appHost = `<configuration>${ws('<handlers />').replace(/<\/?configuration>/g, '')}<location path="Site/app"><system.webServer><handlers><clear /></handlers></system.webServer></location></configuration>`;
    assert.equal(merge('system.webServer/handlers', [{ text: appHost }]).items.length, 0);
  });

  it('enforces allowDefinition and allowLocation', () => {
    const gm = mergeFails('system.webServer/globalModules', [{ text: ws('<globalModules />') }, { text: ws('<globalModules />') }], { overrideModeDefault: 'Allow' });
    assert.equal(gm.code, 'CFG_WRONG_LEVEL');
    assert.match(gm.message, /can only be set in applicationHost\.config \(allowDefinition="AppHostOnly"\)/);
    const modules = mergeFails('system.webServer/modules', [{ text: ws('<modules />') }, { text: ws('<modules />'), atApplicationRoot: false }], { overrideModeDefault: 'Allow' });
    assert.equal(modules.code, 'CFG_WRONG_LEVEL');
    assert.match(modules.message, /allowDefinition='MachineToApplication' beyond application level/);
    assert.equal(merge('system.webServer/modules', [{ text: ws('<modules />') }, { text: ws('<modules runAllManagedModulesForAllRequests="true" />') }], { overrideModeDefault: 'Allow' }).bool('runAllManagedModulesForAllRequests'), true);
    const inLocation = '<configuration><location path="Site"><system.applicationHost><sites /></system.applicationHost></location></configuration>';
    assert.equal(mergeFails('system.applicationHost/sites', [{ text: inLocation }]).code, 'CFG_WRONG_LEVEL');
    const noLocation = '<configuration><location path="a"><system.webServer><staticContent /></system.webServer></location></configuration>';
    assert.equal(mergeFails(SC, [{ text: noLocation }], { allowLocation: false }).code, 'CFG_WRONG_LEVEL');
  });
});

describe('collection default elements', () => {
  it('fill item attributes that the item does not set, before the schema default', () => {
    const pools = merge('system.applicationHost/applicationPools', [
      {
        text: `<configuration><system.applicationHost><applicationPools>
  <add name="A" />
  <add name="B" queueLength="200"><processModel idleTimeout="00:05:00" /></add>
  <applicationPoolDefaults queueLength="4000" managedRuntimeVersion="">
    <processModel idleTimeout="01:00:00" maxProcesses="2" />
    <recycling><periodicRestart><schedule><add value="03:00:00" /></schedule></periodicRestart></recycling>
  </applicationPoolDefaults>
</applicationPools></system.applicationHost></configuration>`,
      },
    ]);
    const [a, b] = pools.items;
    assert.equal(a!.num('queueLength'), 4000);
    assert.equal(a!.isSet('queueLength'), true);
    assert.equal(b!.num('queueLength'), 200);
    assert.equal(a!.child('processModel').num('idleTimeout'), 3_600_000);
    assert.equal(b!.child('processModel').num('idleTimeout'), 300_000);
    assert.equal(b!.child('processModel').num('maxProcesses'), 2);
    assert.equal(a!.enumName('startMode'), 'OnDemand');
    assert.deepEqual(a!.child('recycling').child('periodicRestart').child('schedule').items.map((i) => i.num('value')), [3 * 3_600_000]);
    assert.equal(a!.child('cpu').enumName('action'), 'NoAction');
  });
});
