import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAttributeValue, parseTyped, SECTION_GROUPS, SECTIONS } from './schema.js';
import type { AttributeSchema, ElementSchema } from './schema.js';

function section(path: string): ElementSchema {
  const s = SECTIONS.get(path);
  assert.ok(s, path);
  return s;
}

function attribute(element: ElementSchema, name: string): AttributeSchema {
  const a = element.attributeIndex.get(name);
  assert.ok(a, `${element.name}/@${name}`);
  return a;
}

const IMPLEMENTED = [
  'system.applicationHost/sites',
  'system.applicationHost/applicationPools',
  'system.applicationHost/webLimits',
  'system.applicationHost/log',
  'system.applicationHost/listenerAdapters',
  'system.applicationHost/configHistory',
  'system.applicationHost/serviceAutoStartProviders',
  'system.applicationHost/customMetadata',
  'system.webServer/handlers',
  'system.webServer/modules',
  'system.webServer/globalModules',
  'system.webServer/defaultDocument',
  'system.webServer/directoryBrowse',
  'system.webServer/staticContent',
  'system.webServer/httpErrors',
  'system.webServer/httpProtocol',
  'system.webServer/httpRedirect',
  'system.webServer/iisnode',
  'system.webServer/security/requestFiltering',
  'system.webServer/serverRuntime',
  'system.webServer/serverSideInclude',
  'system.webServer/caching',
  'system.webServer/httpLogging',
  'system.webServer/urlCompression',
  'system.webServer/httpCompression',
  'system.webServer/validation',
  'system.webServer/webSocket',
  'system.webServer/applicationInitialization',
  'system.webServer/security/access',
  'system.webServer/security/authorization',
  'system.webServer/security/authentication/anonymousAuthentication',
  'system.webServer/security/authentication/basicAuthentication',
  'system.webServer/security/authentication/clientCertificateMappingAuthentication',
  'system.webServer/security/authentication/digestAuthentication',
  'system.webServer/security/authentication/iisClientCertificateMappingAuthentication',
  'system.webServer/security/authentication/windowsAuthentication',
  'system.webServer/security/ipSecurity',
  'system.webServer/security/dynamicIpSecurity',
  'system.webServer/tracing/traceFailedRequests',
  'system.webServer/fastCgi',
  'system.webServer/cgi',
  'system.webServer/security/isapiCgiRestriction',
  'system.webServer/rewrite/rules',
  'system.webServer/rewrite/globalRules',
  'system.webServer/rewrite/rewriteMaps',
  'system.webServer/rewrite/allowedServerVariables',
];

describe('the schema table', () => {
  it('holds exactly the implemented sections', () => {
    assert.deepEqual([...SECTIONS.keys()].sort(), [...IMPLEMENTED].sort());
    assert.ok(SECTION_GROUPS.has('system.webServer/security/authentication'));
    assert.ok(!SECTION_GROUPS.has('system.web'));
  });

  it('carries the delegation defaults IIS ships', () => {
    const d = (p: string): string => {
      const s = SECTIONS.get(p)!;
      return `${s.overrideModeDefault}/${s.allowDefinition}`;
    };
    assert.equal(d('system.applicationHost/sites'), 'Deny/AppHostOnly');
    assert.equal(d('system.webServer/handlers'), 'Deny/Everywhere');
    assert.equal(d('system.webServer/modules'), 'Deny/MachineToApplication');
    assert.equal(d('system.webServer/staticContent'), 'Allow/Everywhere');
    assert.equal(d('system.webServer/applicationInitialization'), 'Allow/MachineToApplication');
    assert.equal(d('system.webServer/fastCgi'), 'Deny/AppHostOnly');
    assert.equal(d('system.webServer/security/authentication/windowsAuthentication'), 'Deny/Everywhere');
    assert.equal(d('system.webServer/security/dynamicIpSecurity'), 'Deny/Everywhere');
  });

  it('flags the security sections Wharf reads but does not enforce (config-warnings.ts reports their use)', () => {
    const security = [...SECTIONS.values()].filter((s) => s.notEnforced.some((f) => f.kind === 'security')).map((s) => s.path).sort();
    assert.deepEqual(security, [
      'system.webServer/security/authentication/clientCertificateMappingAuthentication',
      'system.webServer/security/authentication/windowsAuthentication',
    ]);
    // Every attribute path a flag names exists in its section's schema.
    for (const s of SECTIONS.values()) {
      for (const path of s.notEnforced.flatMap((f) => f.attributes ?? [])) {
        let el: ElementSchema | undefined = s;
        const parts = path.split('/');
        for (const p of parts.slice(0, -1)) el = el?.children.get(p);
        assert.ok(el?.attributeIndex.has(parts[parts.length - 1]!), `${s.path}: ${path}`);
      }
    }
  });

  it('types the IIS defaults (timeSpan in milliseconds, flags as bitmasks, enums as numbers)', () => {
    const pools = section('system.applicationHost/applicationPools').collection!.item;
    const processModel = pools.children.get('processModel')!;
    assert.equal(attribute(processModel, 'idleTimeout').defaultValue, 20 * 60_000);
    assert.equal(attribute(pools.children.get('recycling')!.children.get('periodicRestart')!, 'time').defaultValue, 29 * 3_600_000);
    assert.equal(attribute(pools, 'queueLength').defaultValue, 1000);
    assert.equal(attribute(pools, 'startMode').defaultValue, 0);
    const clientCache = section('system.webServer/staticContent').children.get('clientCache')!;
    assert.equal(attribute(clientCache, 'cacheControlMaxAge').defaultValue, 86_400_000);
    const dir = section('system.webServer/directoryBrowse');
    assert.equal(attribute(dir, 'showFlags').defaultValue, 2 | 4 | 8 | 16);
    const error = section('system.webServer/httpErrors').collection!.item;
    assert.equal(attribute(error, 'subStatusCode').defaultValue, -1);
    assert.equal(attribute(section('system.webServer/httpErrors'), 'errorMode').defaultText, 'DetailedLocalOnly');
  });

  it('knows collection names, keys and merge order', () => {
    const sc = section('system.webServer/staticContent').collection!;
    assert.deepEqual([sc.addNames, sc.removeName, sc.clearName, sc.mergeAppend], [['mimeMap'], 'remove', 'clear', true]);
    assert.deepEqual(sc.keySets.map((k) => k.map((a) => a.name)), [['fileExtension']]);
    assert.equal(section('system.webServer/handlers').collection!.mergeAppend, false);
    assert.equal(section('system.webServer/defaultDocument').children.get('files')!.collection!.mergeAppend, false);
    assert.equal(section('system.webServer/caching').children.get('profiles')!.collection!.mergeAppend, false);
    const errors = section('system.webServer/httpErrors').collection!;
    assert.deepEqual(errors.keySets.map((k) => k.map((a) => a.name)), [['statusCode', 'subStatusCode']]);
    const sites = section('system.applicationHost/sites').collection!;
    assert.deepEqual(sites.keySets.map((k) => k.map((a) => a.name)), [['name'], ['id']]);
    assert.equal(sites.defaultElement, 'siteDefaults');
    assert.equal(sites.item.collection!.defaultElement, 'applicationDefaults');
    assert.ok(attribute(sites.item.collection!.item.collection!.item, 'physicalPath').expanded);
  });
});

describe('attribute values', () => {
  const directoryBrowse = section('system.webServer/directoryBrowse');
  const enabled = attribute(directoryBrowse, 'enabled');
  const showFlags = attribute(directoryBrowse, 'showFlags');
  const httpErrors = section('system.webServer/httpErrors');
  const errorMode = attribute(httpErrors, 'errorMode');

  it('reads bool case-insensitively and names the attribute and element when invalid', () => {
    assert.deepEqual(parseAttributeValue(enabled, 'directoryBrowse', 'TRUE'), { ok: true, value: true });
    assert.deepEqual(parseAttributeValue(enabled, 'directoryBrowse', 'False'), { ok: true, value: false });
    assert.deepEqual(parseAttributeValue(enabled, 'directoryBrowse', 'abc'), {
      ok: false,
      message: "Invalid value 'abc' for attribute 'enabled' of element 'directoryBrowse': expected true or false",
    });
  });

  it('reads enums by friendly name (any case) or number', () => {
    assert.deepEqual(parseTyped(errorMode, 'custom'), { ok: true, value: 1 });
    assert.deepEqual(parseTyped(errorMode, '2'), { ok: true, value: 2 });
    const bad = parseAttributeValue(errorMode, 'httpErrors', 'Verbose');
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.message, "Invalid value 'Verbose' for attribute 'errorMode' of element 'httpErrors': expected one of DetailedLocalOnly, Custom, Detailed");
    assert.equal(parseTyped(errorMode, '7').ok, false);
  });

  it('reads flags as comma-separated names or a number', () => {
    assert.deepEqual(parseTyped(showFlags, 'Date, time,Size'), { ok: true, value: 14 });
    assert.deepEqual(parseTyped(showFlags, '34'), { ok: true, value: 34 });
    assert.deepEqual(parseTyped(showFlags, 'None'), { ok: true, value: 0 });
    const bad = parseAttributeValue(showFlags, 'directoryBrowse', 'Date, Colour');
    assert.equal(!bad.ok && bad.message, "Invalid value 'Date, Colour' for attribute 'showFlags' of element 'directoryBrowse': expected a comma-separated list of None, Date, Time, Size, Extension, LongDate");
  });

  it('reads time spans as [d.]hh:mm:ss[.fff] in milliseconds, and per timeSpanFormat', () => {
    const ts = attribute(section('system.webServer/serverRuntime'), 'frequentHitTimePeriod');
    assert.deepEqual(parseTyped(ts, '00:00:10'), { ok: true, value: 10_000 });
    assert.deepEqual(parseTyped(ts, '1.02:03:04.5'), { ok: true, value: ((26 * 60 + 3) * 60 + 4) * 1000 + 500 });
    assert.deepEqual(parseTyped(ts, '29:00:00'), { ok: true, value: 29 * 3_600_000 });
    assert.equal(parseTyped(ts, '00:61:00').ok, false);
    assert.equal(parseTyped(ts, '10').ok, false);
    assert.deepEqual(parseTyped({ ...ts, timeSpanFormat: 'seconds' }, '90'), { ok: true, value: 90_000 });
    assert.deepEqual(parseTyped({ ...ts, timeSpanFormat: 'minutes' }, '20'), { ok: true, value: 1_200_000 });
    assert.equal(parseTyped({ ...ts, timeSpanFormat: 'seconds' }, '00:01:30').ok, false);
  });

  it('checks uint/int type ranges and integerRange validators (with exclude)', () => {
    const queueLength = attribute(section('system.applicationHost/applicationPools').collection!.item, 'queueLength');
    assert.deepEqual(parseAttributeValue(queueLength, 'add', '4000'), { ok: true, value: 4000 });
    const low = parseAttributeValue(queueLength, 'add', '5');
    assert.equal(!low.ok && low.message, "Invalid value '5' for attribute 'queueLength' of element 'add': expected an integer between 10 and 65535");
    assert.equal(parseAttributeValue(queueLength, 'add', '-1').ok, false);
    assert.equal(parseAttributeValue(queueLength, 'add', '1e3').ok, false);
    const limits = section('system.applicationHost/sites').collection!.item.children.get('limits')!;
    const maxBandwidth = attribute(limits, 'maxBandwidth');
    assert.equal(parseAttributeValue(maxBandwidth, 'limits', '500').ok, false, '0..1023 is excluded');
    assert.deepEqual(parseAttributeValue(maxBandwidth, 'limits', '65536'), { ok: true, value: 65536 });
    assert.equal(parseAttributeValue(maxBandwidth, 'limits', '4294967296').ok, false, 'beyond uint');
    const subStatus = attribute(section('system.webServer/httpErrors').collection!.item, 'subStatusCode');
    assert.deepEqual(parseAttributeValue(subStatus, 'error', '-1'), { ok: true, value: -1 });
  });

  it('checks timeSpanRange bounds and granularity', () => {
    const idle = attribute(section('system.applicationHost/applicationPools').collection!.item.children.get('processModel')!, 'idleTimeout');
    assert.equal(parseAttributeValue(idle, 'processModel', '00:45:00').ok, true);
    const odd = parseAttributeValue(idle, 'processModel', '00:20:30');
    assert.equal(!odd.ok && odd.message, "Invalid value '00:20:30' for attribute 'idleTimeout' of element 'processModel': expected a time span between 0 and 2592000 seconds in steps of 60 seconds");
  });

  it('applies the name and path validators', () => {
    const pools = section('system.applicationHost/applicationPools').collection!.item;
    assert.equal(parseAttributeValue(attribute(pools, 'name'), 'add', '.NET v4.5 Classic').ok, true);
    assert.equal(parseAttributeValue(attribute(pools, 'name'), 'add', 'a/b').ok, false);
    const site = section('system.applicationHost/sites').collection!.item;
    assert.equal(parseAttributeValue(attribute(site, 'name'), 'site', 'Default Web Site').ok, true);
    assert.equal(parseAttributeValue(attribute(site, 'name'), 'site', 'what?').ok, false);
    const appPath = attribute(site.collection!.item, 'path');
    for (const ok of ['/', '/app', '/a/b.c']) assert.equal(parseAttributeValue(appPath, 'application', ok).ok, true, ok);
    for (const bad of ['', 'app', '/app/', '/a/../b', '/./a']) assert.equal(parseAttributeValue(appPath, 'application', bad).ok, false, bad);
    const mimeType = attribute(section('system.webServer/staticContent').collection!.item, 'mimeType');
    const empty = parseAttributeValue(mimeType, 'mimeMap', '');
    assert.equal(!empty.ok && empty.message, "Invalid value '' for attribute 'mimeType' of element 'mimeMap': expected a non-empty string");
  });
});
