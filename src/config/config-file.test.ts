import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, HRESULT } from '../errors.js';
import { parseConfigFile } from './config-file.js';
import type { ConfigFile } from './config-file.js';

const FILE = '/sites/shop/web.config';

function parse(text: string, kind: 'web' | 'appHost' = 'web', variables?: Record<string, string>): ConfigFile {
  return parseConfigFile(FILE, text, { kind, variables });
}

function fails(text: string, kind: 'web' | 'appHost' = 'web'): ConfigError {
  try {
    parse(text, kind);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

function at(err: ConfigError): string {
  return `${err.code} ${err.position?.line}:${err.position?.column}`;
}

describe('configSections', () => {
  it('registers sections inside nested section groups with IIS defaults', () => {
    const f = parse(`<configuration>
  <configSections>
    <sectionGroup name="system.webServer">
      <section name="handlers" overrideModeDefault="Deny" />
      <sectionGroup name="rewrite">
        <section name="globalRules" overrideModeDefault="deny" allowDefinition="AppHostOnly" allowLocation="false" />
      </sectionGroup>
    </sectionGroup>
    <section name="entityFramework" type="Some.Type, Assembly" requirePermission="false" />
  </configSections>
</configuration>`);
    const handlers = f.registrations.get('system.webServer/handlers')!;
    assert.deepEqual(
      [handlers.overrideModeDefault, handlers.allowDefinition, handlers.allowLocation, handlers.position.line],
      ['Deny', 'Everywhere', true, 4],
    );
    const rules = f.registrations.get('system.webServer/rewrite/globalRules')!;
    assert.deepEqual([rules.overrideModeDefault, rules.allowDefinition, rules.allowLocation], ['Deny', 'AppHostOnly', false]);
    assert.equal(f.registrations.get('entityFramework')?.overrideModeDefault, 'Allow');
    assert.ok(f.groups.has('system.webServer/rewrite'));
  });

  it('rejects bad registration values, duplicates and a second configSections', () => {
    const bad = fails('<configuration><configSections><section name="x" allowDefinition="Anywhere"/></configSections></configuration>');
    assert.equal(bad.code, 'CFG_INVALID_VALUE');
    assert.match(bad.message, /expected one of MachineOnly, MachineToWebRoot, MachineToApplication, AppHostOnly, Everywhere/);
    const dup = fails('<configuration><configSections><section name="x"/>\n<section name="x"/></configSections></configuration>');
    assert.equal(at(dup), 'CFG_DUPLICATE_SECTION 2:1');
    const two = fails('<configuration><configSections/>\n<configSections/></configuration>');
    assert.equal(at(two), 'CFG_DUPLICATE_SECTION 2:1');
  });
});

describe('levels and locations', () => {
  it('splits root content and <location> blocks with their options', () => {
    const f = parse(`<configuration>
  <system.webServer><directoryBrowse enabled="true" /></system.webServer>
  <location path="./Admin/" overrideMode="Deny" inheritInChildApplications="false">
    <system.webServer><directoryBrowse enabled="false" /></system.webServer>
  </location>
  <location path="login.aspx" allowOverride="false"><system.webServer /></location>
  <location allowOverride="true"><system.webServer><httpRedirect enabled="true" /></system.webServer></location>
</configuration>`);
    assert.deepEqual(
      f.blocks.map((b) => [b.path, b.isRoot, b.overrideMode, b.inheritInChildApplications, [...b.sections.keys()].join()]),
      [
        ['', true, 'Inherit', true, 'system.webServer/directoryBrowse'],
        ['Admin', false, 'Deny', false, 'system.webServer/directoryBrowse'],
        ['login.aspx', false, 'Deny', true, ''],
        ['', false, 'Allow', true, 'system.webServer/httpRedirect'],
      ],
    );
    assert.equal(new Set(f.blocks.map((b) => b.id)).size, 4, 'block ids are unique');
    assert.equal(f.blocks[1]!.position.line, 3);
  });

  it('keeps applicationHost location paths that name a site', () => {
    const f = parse('<configuration><location path="Default Web Site/app"><system.webServer/></location></configuration>', 'appHost');
    assert.equal(f.blocks[1]!.path, 'Default Web Site/app');
  });

  it('rejects a location with both overrideMode and allowOverride, bad paths and nesting', () => {
    const both = fails('<configuration>\n  <location path="a" overrideMode="Allow" allowOverride="false"/></configuration>');
    assert.equal(at(both), 'CFG_INVALID_VALUE 2:43');
    assert.match(both.message, /cannot specify both 'overrideMode' and the legacy 'allowOverride'/);
    assert.equal(fails('<configuration><location path="../x"/></configuration>').code, 'CFG_INVALID_VALUE');
    assert.equal(fails('<configuration><location path="/abs"/></configuration>').code, 'CFG_INVALID_VALUE');
    assert.equal(fails('<configuration><location overrideMode="Maybe"/></configuration>').code, 'CFG_INVALID_VALUE');
    assert.equal(fails('<configuration><location><location/></location></configuration>').code, 'CFG_UNKNOWN_ELEMENT');
    assert.equal(fails('<configuration><location pth="a"/></configuration>').code, 'CFG_UNKNOWN_ATTRIBUTE');
  });

  it('reports a section used twice at one level as CFG_DUPLICATE_SECTION', () => {
    const rootAndDot = fails(`<configuration>
  <system.webServer><directoryBrowse enabled="true" /></system.webServer>
  <location path=".">
    <system.webServer><directoryBrowse enabled="false" /></system.webServer>
  </location>
</configuration>`);
    assert.equal(at(rootAndDot), 'CFG_DUPLICATE_SECTION 4:23');
    assert.equal(rootAndDot.message, "There is a duplicate 'system.webServer/directoryBrowse' section defined");
    assert.equal(rootAndDot.hresult, HRESULT.alreadyExists);
    const samePath = fails(`<configuration>
  <location path="admin"><system.webServer><httpErrors /></system.webServer></location>
  <location path="Admin"><system.webServer><httpErrors /></system.webServer></location>
</configuration>`);
    assert.equal(at(samePath), 'CFG_DUPLICATE_SECTION 3:44');
    // The same section at different paths is fine.
    parse('<configuration><system.webServer><httpErrors/></system.webServer><location path="a"><system.webServer><httpErrors/></system.webServer></location></configuration>');
  });
});

describe('sections Wharf does not implement', () => {
  it('keeps them and reports each once with its position, never failing', () => {
    const f = parse(`<configuration>
  <configSections>
    <sectionGroup name="applicationSettings"><section name="App.Settings" /></sectionGroup>
  </configSections>
  <appSettings><add key="a" value="b" /></appSettings>
  <system.web>
    <compilation debug="true" anything="goes" />
    <customErrors mode="Off" />
  </system.web>
  <system.webServer>
    <rewrite><outboundRules><rule name="r"><match pattern=".*" /></rule></outboundRules></rewrite>
    <aspNetCore processPath="dotnet" />
  </system.webServer>
  <location path="x"><system.web><compilation /></system.web></location>
  <applicationSettings><App.Settings><setting name="s"><value>v</value></setting></App.Settings></applicationSettings>
</configuration>`);
    assert.deepEqual(
      f.unsupported.map((u) => `${u.section}@${u.position.line}:${u.position.column}`),
      [
        'appSettings@5:3',
        'system.web/compilation@7:5',
        'system.web/customErrors@8:5',
        'system.webServer/rewrite/outboundRules@11:14',
        'system.webServer/aspNetCore@12:5',
        'applicationSettings/App.Settings@15:24',
      ],
    );
    assert.ok(f.unsupported.every((u) => u.position.file === FILE));
    assert.equal(f.preserved.length, 7, 'every occurrence is kept');
    assert.equal(f.preserved.find((p) => p.section === 'applicationSettings/App.Settings')!.element.children[0]!.children[0]!.text, 'v');
  });
});

describe('schema validation inside implemented sections', () => {
  it('rejects unknown elements and attributes at their position, IIS-style', () => {
    const el = fails('<configuration>\n <system.webServer>\n  <staticContent>\n   <mimemap fileExtension=".x" mimeType="a/b" />\n  </staticContent>\n </system.webServer>\n</configuration>');
    assert.equal(at(el), 'CFG_UNKNOWN_ELEMENT 4:4');
    assert.equal(el.message, "Unrecognized element 'mimemap'");
    assert.equal(el.hresult, HRESULT.invalidData);
    const attr = fails('<configuration>\n<system.webServer>\n<directoryBrowse Enabled="true" />\n</system.webServer></configuration>');
    assert.equal(at(attr), 'CFG_UNKNOWN_ATTRIBUTE 3:18');
    assert.equal(attr.message, "Unrecognized attribute 'Enabled'. Note that attribute names are case-sensitive.");
    assert.equal(attr.position?.file, FILE);
    assert.equal(fails('<configuration><system.webServer foo="1"/></configuration>').code, 'CFG_UNKNOWN_ATTRIBUTE');
    assert.equal(fails('<settings/>').code, 'CFG_UNKNOWN_ELEMENT');
  });

  it('accepts locking, xmlns and xdt attributes anywhere', () => {
    const f = parse(`<configuration xmlns:xdt="http://schemas.microsoft.com/XML-Document-Transform">
  <system.webServer xdt:Transform="Insert">
    <staticContent lockAttributes="enableDocFooter" lockElements="clear" xdt:Locator="Match(x)">
      <mimeMap fileExtension=".x" mimeType="a/b" lockItem="true" />
      <clientCache lockAllAttributesExcept="setEtag" />
    </staticContent>
  </system.webServer>
</configuration>`);
    const node = f.blocks[0]!.sections.get('system.webServer/staticContent')!.node;
    assert.deepEqual([...node.locks!.attributes!], ['enableDocFooter']);
    assert.deepEqual([...node.locks!.elements!], ['clear']);
    const add = node.directives[0]!;
    assert.ok(add.kind === 'add' && add.item.lockItem);
    assert.deepEqual([...node.children[0]!.locks!.allAttributesExcept!], ['setEtag']);
  });

  it('checks the names in locking attributes', () => {
    const e = fails('<configuration><system.webServer><staticContent lockAttributes="nope" /></system.webServer></configuration>');
    assert.equal(e.code, 'CFG_INVALID_VALUE');
    assert.match(e.message, /'nope' is not an attribute of 'staticContent'/);
    assert.equal(fails('<configuration><system.webServer><staticContent lockElements="add" /></system.webServer></configuration>').code, 'CFG_INVALID_VALUE');
    assert.equal(fails('<configuration><system.webServer><staticContent><mimeMap fileExtension=".a" mimeType="a/b" lockItem="yes"/></staticContent></system.webServer></configuration>').code, 'CFG_INVALID_VALUE');
  });

  it('types values and reports invalid ones at the attribute', () => {
    const f = parse('<configuration><system.webServer><directoryBrowse enabled="TRUE" showFlags="Date, Size" /></system.webServer></configuration>');
    const node = f.blocks[0]!.sections.get('system.webServer/directoryBrowse')!.node;
    assert.deepEqual(node.values.map((v) => v?.value), [true, 10]);
    const e = fails('<configuration>\n  <system.webServer>\n    <directoryBrowse enabled="abc" />\n  </system.webServer>\n</configuration>');
    assert.equal(at(e), 'CFG_INVALID_VALUE 3:22');
    assert.equal(e.message, "Invalid value 'abc' for attribute 'enabled' of element 'directoryBrowse': expected true or false");
  });

  it('requires required attributes and accepts only key attributes on <remove>', () => {
    const missing = fails('<configuration><system.webServer><staticContent>\n<mimeMap fileExtension=".x" /></staticContent></system.webServer></configuration>');
    assert.equal(at(missing), 'CFG_MISSING_ATTRIBUTE 2:1');
    assert.equal(missing.message, "Missing required attribute 'mimeType'");
    const remove = fails('<configuration><system.webServer><staticContent><remove fileExtension=".x" mimeType="a/b" /></staticContent></system.webServer></configuration>');
    assert.equal(remove.code, 'CFG_UNKNOWN_ATTRIBUTE');
    assert.equal(fails('<configuration><system.webServer><staticContent><clear all="true" /></staticContent></system.webServer></configuration>').code, 'CFG_UNKNOWN_ATTRIBUTE');
    assert.equal(fails('<configuration><system.webServer><staticContent><clientCache/><clientCache/></staticContent></system.webServer></configuration>').code, 'CFG_UNKNOWN_ELEMENT');
  });

  it('expands %VAR% only in expanded attributes', () => {
    const f = parse(
      `<configuration><system.webServer>
  <httpErrors defaultPath="%ERRORS%\\x.htm" detailedMoreInformationLink="%ERRORS%"><error statusCode="404" prefixLanguageFilePath="%SystemDrive%\\custerr" path="404.htm" /></httpErrors>
</system.webServer></configuration>`,
      'web',
      { ERRORS: '/errs' },
    );
    const node = f.blocks[0]!.sections.get('system.webServer/httpErrors')!.node;
    const byName = (name: string): unknown => node.values[node.schema.attributeIndex.get(name)!.index]?.value;
    assert.equal(byName('defaultPath'), '/errs\\x.htm');
    assert.equal(byName('detailedMoreInformationLink'), '%ERRORS%');
    const error = node.directives[0]!;
    assert.ok(error.kind === 'add');
    assert.equal(error.item.values[error.item.schema.attributeIndex.get('prefixLanguageFilePath')!.index]?.value, 'C:\\custerr');
    assert.equal(error.item.values[error.item.schema.attributeIndex.get('prefixLanguageFilePath')!.index]?.raw, '%SystemDrive%\\custerr');
  });
});
