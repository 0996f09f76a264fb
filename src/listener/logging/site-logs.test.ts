import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAppHost } from '../../config/application-host.js';
import { SiteLogs } from './site-logs.js';
import { FixedFormatLogFile } from './fixed-format-log.js';
import { W3cLogFile } from './w3c-log.js';

function config(log: string, siteLogFile: string, siteDefaults = ''): ReturnType<typeof loadAppHost> {
  const text = `<configuration><system.applicationHost>
<applicationPools><add name="P" /></applicationPools>
${log}
<sites>
  <site name="One" id="1"><application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="/srv/one" /></application>
    <bindings><binding protocol="http" bindingInformation="*:8080:one" /></bindings>${siteLogFile}</site>
  <site name="Two" id="2"><application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="/srv/two" /></application>
    <bindings><binding protocol="http" bindingInformation="*:8080:two" /></bindings><logFile enabled="false" /></site>
  <siteDefaults>${siteDefaults}</siteDefaults>
</sites>
</system.applicationHost></configuration>`;
  return loadAppHost('/etc/wharf/applicationHost.config', text, { systemDrive: '/srv/wharf', variables: {} });
}

function logs(notices: string[] = []): SiteLogs {
  return new SiteLogs({ onError: () => undefined, notice: (m) => notices.push(m) });
}

test('per-site logs by format; unchanged settings keep the same log across reconfigurations', async () => {
  const l = logs();
  l.apply(config('', '<logFile logFormat="IIS" />'));
  const iis = l.get(1);
  assert.ok(iis instanceof FixedFormatLogFile);
  assert.equal(iis.folder, '/srv/wharf/inetpub/logs/LogFiles/W3SVC1');
  l.apply(config('', '<logFile logFormat="IIS" />'));
  assert.equal(l.get(1), iis, 'same settings: same writer, no second header block');
  l.apply(config('', '<logFile logFormat="W3C"><customFields><add logFieldName="CT" sourceName="Content-Type" sourceType="ResponseHeader" /></customFields></logFile>'));
  assert.ok(l.get(1) instanceof W3cLogFile);
  assert.equal(l.needsResponseHeaders(1), true);
  assert.equal(l.needsResponseHeaders(2), false);
  await l.close();
});

test('CentralW3C: every enabled site shares one log under W3SVC; Custom and CentralBinary are reported once', async () => {
  const notices: string[] = [];
  const l = logs(notices);
  const central = '<log centralLogFileMode="CentralW3C"><centralW3CLogFile directory="C:\\logs" /></log>';
  l.apply(config(central, ''));
  const log = l.get(1);
  assert.ok(log instanceof W3cLogFile);
  assert.equal(log.folder, '/srv/wharf/logs/W3SVC');
  assert.equal(l.get(2), undefined, 'a site with logFile enabled="false" stays out of the central log');
  l.apply(config('<log centralLogFileMode="CentralBinary" />', '<logFile logFormat="Custom" />'));
  l.apply(config('<log centralLogFileMode="CentralBinary" />', '<logFile logFormat="Custom" />'));
  assert.ok(l.get(1) instanceof W3cLogFile);
  assert.equal(l.get(1)!.folder, '/srv/wharf/inetpub/logs/LogFiles/W3SVC1');
  assert.equal(notices.length, 2, notices.join('\n'));
  assert.match(notices.join('\n'), /CentralBinary/);
  assert.match(notices.join('\n'), /logFormat="Custom"/);
  await l.close();
});
