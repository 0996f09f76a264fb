import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAppHost, siteLevelSection } from '../config/application-host.js';
import type { SiteConfig } from '../config/types.js';
import { parseAddress } from './ip-address.js';
import { compileDynamicIpSecurity, compileIpSecurity, dynamicClient, requestVerdict, type IpSecurityPolicy } from './ip-security-rules.js';
import { addressKey } from './ip-address.js';

const IP = 'system.webServer/security/ipSecurity';
const DYN = 'system.webServer/security/dynamicIpSecurity';

/** A site "S" (id 1) with `server` at the server level and `locations` after it, parsed for real. */
function site(server: string, locations = ''): SiteConfig {
  const text = `<configuration>
  <system.applicationHost>
    <applicationPools><add name="P" /></applicationPools>
    <sites><site name="S" id="1"><application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="/tmp" /></application>
      <bindings><binding protocol="http" bindingInformation="*:80:" /></bindings></site></sites>
  </system.applicationHost>
  <system.webServer><security>${server}</security></system.webServer>
  ${locations}
</configuration>`;
  return loadAppHost('/etc/wharf/applicationHost.config', text, { systemDrive: '/tmp' }).sites[0]!;
}

function policy(s: SiteConfig): IpSecurityPolicy {
  const p = compileIpSecurity(siteLevelSection(s, IP)!.element);
  assert.equal(p.kind, 'ipSecurity');
  return p as IpSecurityPolicy;
}
const verdict = (p: IpSecurityPolicy, ip: string, host?: string | null, xff?: string): number => requestVerdict(p, parseAddress(ip)!, host, xff);

test('the first entry matching the client decides, else allowUnlisted', () => {
  const p = policy(site(`<ipSecurity allowUnlisted="false">
      <add ipAddress="10.0.0.5" allowed="false" />
      <add ipAddress="10.0.0.0" subnetMask="255.0.0.0" allowed="true" />
      <add ipAddress="127.0.0.1" allowed="true" />
    </ipSecurity>`));
  assert.equal(verdict(p, '10.0.0.5'), 503, 'the deny entry comes first');
  assert.equal(verdict(p, '10.9.9.9'), 0);
  assert.equal(verdict(p, '127.0.0.1'), 0);
  assert.equal(verdict(p, '127.0.0.2'), 503, 'unlisted, allowUnlisted false');
  assert.equal(p.inert, false);
  // Written the other way round the subnet wins for 10.0.0.5 too.
  const q = policy(site(`<ipSecurity><add ipAddress="10.0.0.0" subnetMask="8" allowed="true" /><add ipAddress="10.0.0.5" /></ipSecurity>`));
  assert.equal(verdict(q, '10.0.0.5'), 0);
});

test('domain entries: only with enableReverseDns, exact or *. names, 504; no name matches nothing', () => {
  const off = policy(site(`<ipSecurity><add domainName="bad.example" /></ipSecurity>`));
  assert.equal(off.needsHostName, false);
  assert.equal(verdict(off, '192.0.2.1', 'bad.example'), 0);
  const on = policy(site(`<ipSecurity enableReverseDns="true" denyAction="NotFound"><add domainName="Bad.Example" /><add domainName="*.worse.example" /></ipSecurity>`));
  assert.equal(on.needsHostName, true);
  assert.equal(on.denyAction, 'NotFound');
  assert.equal(verdict(on, '192.0.2.1', 'bad.example'), 504);
  assert.equal(verdict(on, '192.0.2.1', 'a.b.worse.example'), 504);
  assert.equal(verdict(on, '192.0.2.1', 'worse.example'), 0, '*.x does not match x itself');
  assert.equal(verdict(on, '192.0.2.1', 'notbad.example'), 0);
  assert.equal(verdict(on, '192.0.2.1', null), 0);
});

test('proxy mode: any denied address of X-Forwarded-For denies; without it the header is ignored', () => {
  const rules = '<add ipAddress="203.0.113.0" subnetMask="24" />';
  const plain = policy(site(`<ipSecurity>${rules}</ipSecurity>`));
  assert.equal(verdict(plain, '127.0.0.1', undefined, '203.0.113.7'), 0);
  const proxy = policy(site(`<ipSecurity enableProxyMode="true">${rules}</ipSecurity>`));
  assert.equal(verdict(proxy, '127.0.0.1', undefined, '203.0.113.7'), 503);
  assert.equal(verdict(proxy, '127.0.0.1', undefined, '198.51.100.1, 203.0.113.9'), 503);
  assert.equal(verdict(proxy, '127.0.0.1', undefined, '198.51.100.1'), 0);
  assert.equal(verdict(proxy, '203.0.113.1', undefined, '198.51.100.1'), 503, 'the proxy itself still counts');
});

test('an open section is inert; a bad entry is a problem with its position', () => {
  assert.equal(policy(site('<ipSecurity />')).inert, true);
  assert.equal(policy(site('<ipSecurity><add ipAddress="10.0.0.1" allowed="true" /></ipSecurity>')).inert, true);
  const bad = compileIpSecurity(siteLevelSection(site('<ipSecurity>\n<add ipAddress="10.0.0.300" /></ipSecurity>'), IP)!.element);
  assert.equal(bad.kind, 'problem');
  if (bad.kind === 'problem') {
    assert.match(bad.message, /10\.0\.0\.300/);
    assert.equal(bad.source?.line, 8);
  }
});

test('dynamicIpSecurity: limits only when enabled; proxy mode counts the original client', () => {
  assert.equal(compileDynamicIpSecurity(siteLevelSection(site('<dynamicIpSecurity />'), DYN)!.element).inert, true);
  const d = compileDynamicIpSecurity(
    siteLevelSection(site('<dynamicIpSecurity enableProxyMode="true" denyAction="AbortRequest"><denyByRequestRate enabled="true" maxRequests="3" requestIntervalInMilliseconds="1000" /></dynamicIpSecurity>'), DYN)!.element,
  );
  assert.deepEqual([d.maxConcurrent, d.maxRequests, d.intervalMs, d.denyAction, d.inert], [0, 3, 1000, 'AbortRequest', false]);
  assert.equal(addressKey(dynamicClient(d, parseAddress('127.0.0.1')!, '198.51.100.4, 10.0.0.1')), '198.51.100.4');
  assert.equal(addressKey(dynamicClient(d, parseAddress('127.0.0.1')!, 'garbage')), '127.0.0.1');
});

test('siteLevelSection: final when locked and no deeper <location> writes it', () => {
  const server = '<ipSecurity allowUnlisted="false" />';
  assert.equal(siteLevelSection(site(server), IP)!.final, true);
  const siteLoc = site('', '<location path="S"><system.webServer><security><ipSecurity allowUnlisted="false" /></security></system.webServer></location>');
  assert.equal(siteLevelSection(siteLoc, IP)!.final, true);
  assert.equal(siteLevelSection(siteLoc, IP)!.element.bool('allowUnlisted'), false);
  const deeper = site(server, '<location path="S/admin"><system.webServer><security><ipSecurity allowUnlisted="true" /></security></system.webServer></location>');
  assert.equal(siteLevelSection(deeper, IP)!.final, false, 'a folder has its own rules: the module judges');
  const unlocked = site('', '<location path="S" overrideMode="Allow"><system.webServer><security><ipSecurity allowUnlisted="false" /></security></system.webServer></location>');
  assert.equal(siteLevelSection(unlocked, IP)!.final, false, 'web.config files may change it');
});
