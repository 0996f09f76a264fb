import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppHost } from '../config/index.js';
import { RoutingTable, normalizeHost } from './routing.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function table(sites: string): RoutingTable {
  const dir = tracked(mkdtempSync(join(tmpdir(), 'wharf-routing-')));
  const text = `<configuration><system.applicationHost>
    <applicationPools><add name="P" /><add name="Q" /></applicationPools>
    <sites>${sites}<applicationDefaults applicationPool="P" /></sites>
  </system.applicationHost></configuration>`;
  return new RoutingTable(loadAppHost(join(dir, 'applicationHost.config'), text, { systemDrive: dir }));
}

function site(id: number, name: string, bindings: string[], apps = '<application path="/"><virtualDirectory path="/" physicalPath="." /></application>', extra = ''): string {
  return `<site name="${name}" id="${id}" ${extra}>${apps}<bindings>${bindings.map((b) => `<binding protocol="http" bindingInformation="${b}" />`).join('')}</bindings></site>`;
}

test('host-name bindings beat IP-specific ones, which beat the wildcard', () => {
  const t = table(
    site(1, 'Wild', ['*:80:']) +
      site(2, 'ByIp', ['10.0.0.5:80:']) +
      site(3, 'ByHost', ['*:80:www.example.com']) +
      site(4, 'WildHost', ['*:80:*.example.com']) +
      site(5, 'HostOnIp', ['10.0.0.5:80:api.example.com']),
  );
  const name = (local: string, host: string | undefined): string | undefined => t.site(local, 80, host)?.site.name;
  assert.equal(name('10.0.0.9', 'www.example.com'), 'ByHost');
  assert.equal(name('10.0.0.9', 'WWW.Example.COM:80'), 'ByHost');
  assert.equal(name('10.0.0.5', 'other.test'), 'ByIp');
  assert.equal(name('10.0.0.9', 'other.test'), 'Wild');
  assert.equal(name('10.0.0.9', 'shop.example.com'), 'WildHost');
  assert.equal(name('10.0.0.9', 'example.com'), 'Wild', 'the wildcard host needs a label before the dot');
  assert.equal(name('10.0.0.5', 'api.example.com'), 'HostOnIp');
  assert.equal(name('10.0.0.9', 'api.example.com'), 'WildHost', 'an IP-specific host binding needs its IP');
  assert.equal(name('::ffff:10.0.0.5', 'x'), 'ByIp', 'an IPv4 client on a dual-stack socket matches IPv4 bindings');
  assert.equal(t.site('10.0.0.9', 81, 'www.example.com'), undefined, 'no binding on that port');
  // A port with a wildcard binding gets one socket for all addresses.
  assert.deepEqual(t.endpoints, [{ address: '::', port: 80, secure: false }]);
});

test('without a wildcard binding each address gets its own socket; unknown hosts find no site', () => {
  const t = table(site(1, 'A', ['127.0.0.1:8080:a.test', '127.0.0.2:8080:']));
  assert.deepEqual(
    t.endpoints.map((e) => `${e.address}:${e.port}`).sort(),
    ['127.0.0.1:8080', '127.0.0.2:8080'],
  );
  assert.equal(t.site('127.0.0.1', 8080, 'b.test'), undefined);
  assert.equal(t.site('127.0.0.1', 8080, 'a.test')?.site.name, 'A');
  assert.equal(t.site('127.0.0.2', 8080, 'anything')?.site.name, 'A');
});

test('stopped sites (serverAutoStart="false") are not routed', () => {
  const t = table(site(1, 'On', ['*:80:on.test']) + site(2, 'Off', ['*:80:off.test'], undefined, 'serverAutoStart="false"'));
  assert.equal(t.site('1.2.3.4', 80, 'on.test')?.site.name, 'On');
  assert.equal(t.site('1.2.3.4', 80, 'off.test'), undefined);
});

test('the longest application path wins, by whole segments and in any case', () => {
  const t = table(
    site(
      1,
      'S',
      ['*:80:'],
      '<application path="/"><virtualDirectory path="/" physicalPath="." /></application>' +
        '<application path="/app" applicationPool="Q"><virtualDirectory path="/" physicalPath="." /></application>' +
        '<application path="/app/deep"><virtualDirectory path="/" physicalPath="." /></application>',
    ),
  );
  const route = t.site('1.1.1.1', 80, 'x')!;
  assert.equal(RoutingTable.application(route, '/').path, '/');
  assert.equal(RoutingTable.application(route, '/APP/x').path, '/app');
  assert.equal(RoutingTable.application(route, '/app').applicationPool, 'Q');
  assert.equal(RoutingTable.application(route, '/apple').path, '/');
  assert.equal(RoutingTable.application(route, '/app/deep/er').path, '/app/deep');
});

test('Host header normalisation', () => {
  assert.equal(normalizeHost('Example.COM:8080'), 'example.com');
  assert.equal(normalizeHost('[::1]:80'), '::1');
  assert.equal(normalizeHost('example.com.'), 'example.com');
});

test('https bindings: their port speaks TLS; the SNI name picks the binding; http and https cannot share a port', () => {
  const https = (b: string, flags = 0): string => `<binding protocol="https" bindingInformation="${b}" sslFlags="${flags}" />`;
  const text = (id: number, name: string, bindings: string): string =>
    `<site name="${name}" id="${id}"><application path="/"><virtualDirectory path="/" physicalPath="." /></application><bindings>${bindings}</bindings></site>`;
  const t = table(
    text(1, 'Shop', https('*:443:shop.example.com', 1) + '<binding protocol="http" bindingInformation="*:80:shop.example.com" />') +
      text(2, 'Any', https('*:443:', 0)) +
      text(3, 'Clash', '<binding protocol="http" bindingInformation="*:443:clash.example.com" />'),
  );
  assert.deepEqual(
    t.endpoints.map((e) => `${e.port}:${e.secure}`).sort(),
    ['443:true', '80:false'],
  );
  assert.ok(t.isSecurePort(443));
  assert.ok(!t.isSecurePort(80));
  assert.equal(t.binding('10.0.0.1', 443, 'SHOP.example.com')?.sslFlags, 1);
  assert.equal(t.binding('10.0.0.1', 443, undefined)?.bindingInformation, '*:443:');
  assert.equal(t.binding('10.0.0.1', 443, 'other.test')?.bindingInformation, '*:443:');
  assert.equal(t.unserved.length, 1);
  assert.equal(t.unserved[0]!.site.name, 'Clash');
  assert.match(t.unserved[0]!.reason, /port 443 already carries https bindings/);
  assert.equal(t.site('10.0.0.1', 443, 'clash.example.com')?.site.name, 'Any');
});

test('namesMatter: a port where a TLS client\'s name can choose the binding or its certificate', () => {
  const https = (id: number, info: string, flags = 0): string =>
    `<site name="S${id}" id="${id}"><application path="/"><virtualDirectory path="/" physicalPath="." /></application><bindings><binding protocol="https" bindingInformation="${info}" sslFlags="${flags}" /></bindings></site>`;
  const t = table(https(1, '*:443:') + https(2, '127.0.0.1:444:') + https(3, '*:444:') + https(4, '*:445:www.example.com') + https(5, '*:446:', 1) + https(6, '*:447:', 2) + https(7, '*:448:', 32));
  assert.deepEqual([443, 444, 445, 446, 447, 448].map((p) => t.namesMatter(p)), [false, false, true, true, true, false]);
});
