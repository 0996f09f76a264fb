import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppHost } from '../config/index.js';
import type { AppHostConfig } from '../config/index.js';
import { AdminError } from '../errors.js';
import { formatDetail, formatSummary, parseAdminArgs, renderList, type ListCommand } from './appcmd.js';
import { adminDone, adminNotFound, appObjects, appPoolObjects, formatTimeSpan, requestObjects, siteObjects, vdirObjects, workerObjects } from './objects.js';
import type { AdminObject } from './types.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function load(): { config: AppHostConfig; dir: string } {
  const dir = tracked(mkdtempSync(join(tmpdir(), 'wharf-admin-objects-')));
  const text = `<configuration><system.applicationHost>
    <applicationPools>
      <add name="DefaultAppPool" managedRuntimeVersion="v4.0" />
      <add name="Intranet" managedPipelineMode="Classic" queueLength="2000">
        <processModel idleTimeout="00:10:00" maxProcesses="2" />
        <recycling logEventOnRecycle="Time, Memory, PrivateMemory"><periodicRestart time="02:00:00" /></recycling>
        <cpu limit="50000" />
      </add>
      <applicationPoolDefaults><processModel identityType="ApplicationPoolIdentity" /></applicationPoolDefaults>
    </applicationPools>
    <sites>
      <site name="Default Web Site" id="1">
        <application path="/"><virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" /></application>
        <bindings><binding protocol="http" bindingInformation="*:80:" /></bindings>
      </site>
      <site name="Intranet" id="2" serverAutoStart="false">
        <application path="/" applicationPool="Intranet">
          <virtualDirectory path="/" physicalPath="intranet" />
          <virtualDirectory path="/docs" physicalPath="C:\\Docs" />
        </application>
        <application path="/api" applicationPool="DefaultAppPool"><virtualDirectory path="/" physicalPath="api" /></application>
        <bindings>
          <binding protocol="http" bindingInformation="*:81:" />
          <binding protocol="https" bindingInformation="*:443:intranet.example.com" />
        </bindings>
      </site>
      <applicationDefaults applicationPool="DefaultAppPool" />
    </sites>
  </system.applicationHost></configuration>`;
  return { config: loadAppHost(join(dir, 'applicationHost.config'), text, { systemDrive: join(dir, 'c') }), dir };
}

function listOf(...argv: string[]): ListCommand {
  const r = parseAdminArgs(['list', ...argv]);
  assert.ok(r.ok && r.command?.verb === 'list');
  return r.command as ListCommand;
}

const stateOf = (id: number): 'Started' | 'Stopped' => (id === 1 ? 'Started' : 'Stopped');

test('time spans print as IIS writes them', () => {
  assert.equal(formatTimeSpan(20 * 60000), '00:20:00');
  assert.equal(formatTimeSpan(29 * 3600000), '1.05:00:00');
  assert.equal(formatTimeSpan(90 * 1000), '00:01:30');
  assert.equal(formatTimeSpan(0), '00:00:00');
  assert.equal(formatTimeSpan(1500), '00:00:01.5000000');
  assert.equal(formatTimeSpan(120000, 'seconds'), '120');
  assert.equal(formatTimeSpan(120000, 'minutes'), '2');
});

test('SITE lines: id, protocol/bindingInformation joined with commas, state', () => {
  const { config } = load();
  assert.deepEqual(siteObjects(config, stateOf).map(formatSummary), [
    'SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)',
    'SITE "Intranet" (id:2,bindings:http/*:81:,https/*:443:intranet.example.com,state:Stopped)',
  ]);
  const [site] = siteObjects(config, stateOf);
  assert.equal(site!.properties['SITE.NAME'], 'Default Web Site');
  assert.equal(site!.properties['limits.connectionTimeout'], '00:02:00');
  assert.equal(site!.properties['serverAutoStart'], 'true');
  assert.equal(renderList(listOf('sites', '/serverAutoStart:false', '/text:name'), siteObjects(config, stateOf)).stdout, 'Intranet\n');
});

test('SITE /text:* nests the <site> element with its bindings and applications', () => {
  const { config, dir } = load();
  const lines = formatDetail(siteObjects(config, stateOf)[1]!);
  assert.deepEqual(lines.slice(0, 10), [
    'SITE',
    '  SITE.NAME:"Intranet"',
    '  SITE.ID:"2"',
    '  bindings:"http/*:81:,https/*:443:intranet.example.com"',
    '  state:"Stopped"',
    '  [site]',
    '    name:"Intranet"',
    '    id:"2"',
    '    serverAutoStart:"false"',
    '    [bindings]',
  ]);
  assert.deepEqual(lines.slice(10, 18), [
    '      [binding]',
    '        protocol:"http"',
    '        bindingInformation:"*:81:"',
    '        sslFlags:"0"',
    '      [binding]',
    '        protocol:"https"',
    '        bindingInformation:"*:443:intranet.example.com"',
    '        sslFlags:"0"',
  ]);
  const app = lines.indexOf('    [application]');
  assert.ok(app > 0);
  assert.equal(lines[app + 1], '      path:"/"');
  assert.equal(lines[app + 2], '      applicationPool:"Intranet"');
  assert.ok(lines.includes(`        physicalPath:"${join(dir, 'intranet')}"`), 'virtual directories show the Linux folder served');
});

test('APP and VDIR lines, named Site/path like appcmd; /site.name: and /app.name: filters', () => {
  const { config, dir } = load();
  assert.deepEqual(appObjects(config).map(formatSummary), [
    'APP "Default Web Site/" (applicationPool:DefaultAppPool)',
    'APP "Intranet/" (applicationPool:Intranet)',
    'APP "Intranet/api" (applicationPool:DefaultAppPool)',
  ]);
  assert.deepEqual(vdirObjects(config).map(formatSummary), [
    `VDIR "Default Web Site/" (physicalPath:${join(dir, 'c', 'inetpub', 'wwwroot')})`,
    `VDIR "Intranet/" (physicalPath:${join(dir, 'intranet')})`,
    `VDIR "Intranet/docs" (physicalPath:${join(dir, 'c', 'Docs')})`,
    `VDIR "Intranet/api/" (physicalPath:${join(dir, 'api')})`,
  ]);
  assert.equal(renderList(listOf('apps', '/site.name:intranet', '/text:APP.NAME'), appObjects(config)).stdout, 'Intranet/\nIntranet/api\n');
  assert.equal(renderList(listOf('apps', '/apppool.name:DefaultAppPool', '/text:path'), appObjects(config)).stdout, '/\n/api\n');
  assert.equal(renderList(listOf('vdirs', '/app.name:Intranet/', '/text:path'), vdirObjects(config)).stdout, '/\n/docs\n');
  const vdir = formatDetail(vdirObjects(config)[2]!);
  assert.deepEqual(vdir.slice(0, 6), ['VDIR', '  VDIR.NAME:"Intranet/docs"', '  APP.NAME:"Intranet/"', '  [virtualDirectory]', '    path:"/docs"', `    physicalPath:"${join(dir, 'c', 'Docs')}"`]);
  assert.ok(vdir.includes('    password:""'), 'an unset password prints empty');
});

test('APPPOOL lines and properties: MgdVersion, MgdMode, state; attributes with dotted sub-element paths', () => {
  const { config } = load();
  const pools = appPoolObjects(config, (name) => (name === 'Intranet' ? 'Stopped' : 'Started'));
  assert.deepEqual(pools.map(formatSummary), [
    'APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)',
    'APPPOOL "Intranet" (MgdVersion:,MgdMode:Classic,state:Stopped)',
  ]);
  const p = pools[1]!.properties;
  assert.equal(p['APPPOOL.NAME'], 'Intranet');
  assert.equal(p['queueLength'], '2000');
  assert.equal(p['processModel.identityType'], 'ApplicationPoolIdentity');
  assert.equal(p['processModel.idleTimeout'], '00:10:00');
  assert.equal(p['processModel.maxProcesses'], '2');
  assert.equal(p['recycling.periodicRestart.time'], '02:00:00');
  assert.equal(p['recycling.logEventOnRecycle'], 'Time, Memory, PrivateMemory');
  assert.equal(p['failure.rapidFailProtection'], 'true');
  assert.equal(p['cpu.limit'], '50000');
  assert.equal(p['processModel.password'], '', 'secrets never cross the admin socket');
  assert.equal(pools[0]!.properties['recycling.periodicRestart.time'], '1.05:00:00');
  const lines = formatDetail(pools[0]!);
  assert.deepEqual(lines.slice(0, 8), [
    'APPPOOL',
    '  APPPOOL.NAME:"DefaultAppPool"',
    '  PipelineMode:"Integrated"',
    '  RuntimeVersion:"v4.0"',
    '  state:"Started"',
    '  [add]',
    '    name:"DefaultAppPool"',
    '    queueLength:"1000"',
  ]);
  const pm = lines.indexOf('    [processModel]');
  assert.equal(lines[pm + 1], '      identityType:"ApplicationPoolIdentity"');
  assert.ok(lines.includes('      [periodicRestart]'));
  assert.equal(
    renderList(listOf('apppools', '/processModel.maxProcesses:$>1', '/text:name'), pools).stdout,
    'Intranet\n',
  );
});

test('WP and REQUEST lines and the properties their filters use', () => {
  const wps = workerObjects([
    { pid: 3577, pool: 'DefaultAppPool', state: 'Running', startedAt: Date.UTC(2026, 0, 2, 3, 4, 5), requests: 1 },
    { pid: 3600, pool: 'Intranet', state: 'Running', startedAt: Date.UTC(2026, 0, 2, 3, 4, 6), requests: 0 },
  ]);
  assert.deepEqual(wps.map(formatSummary), ['WP "3577" (apppool:DefaultAppPool)', 'WP "3600" (apppool:Intranet)']);
  assert.deepEqual(wps[0]!.properties, { 'WP.NAME': '3577', 'APPPOOL.NAME': 'DefaultAppPool', state: 'Running', startTime: '2026-01-02T03:04:05.000Z', requests: '1' });
  assert.equal(renderList(listOf('wps', '/apppool.name:intranet'), wps).stdout, 'WP "3600" (apppool:Intranet)\n');

  const reqs: AdminObject[] = requestObjects([
    { id: 'fa00000080000004', verb: 'GET', url: '/wait.aspx', elapsedMs: 4276.4, client: 'localhost', siteId: 1, pid: 3577, pool: 'DefaultAppPool' },
    { id: 'fa00000080000005', verb: 'POST', url: '/upload', elapsedMs: 9000, client: '10.0.0.7', siteId: 2, siteName: 'Intranet', pid: 3600, pool: 'Intranet', stage: 'ExecuteRequestHandler', module: 'StaticFileModule' },
  ]);
  assert.deepEqual(reqs.map(formatSummary), [
    'REQUEST "fa00000080000004" (url:GET /wait.aspx,time:4276 msec,client:localhost)',
    'REQUEST "fa00000080000005" (url:POST /upload,time:9000 msec,client:10.0.0.7,stage:ExecuteRequestHandler,module:StaticFileModule)',
  ]);
  assert.equal(renderList(listOf('requests', '/elapsed:5000', '/text:REQUEST.NAME'), reqs).stdout, 'fa00000080000005\n');
  assert.equal(renderList(listOf('requests', '/site.id:1', '/text:url'), reqs).stdout, '/wait.aspx\n');
  assert.equal(renderList(listOf('requests', '/site.name:Intranet', '/text:url'), reqs).stdout, '/upload\n');
  assert.equal(renderList(listOf('requests', '/wp.name:3577', '/text:verb'), reqs).stdout, 'GET\n');
});

test('the target\'s answers: not found and done messages in appcmd\'s words', () => {
  const err = adminNotFound('APPPOOL', 'Nope');
  assert.ok(err instanceof AdminError);
  assert.equal(err.code, 'ADM_NOT_FOUND');
  assert.equal(err.message, 'Cannot find APPPOOL object with identifier "Nope".');
  assert.equal(adminDone('start', 'DefaultAppPool'), '"DefaultAppPool" successfully started.');
  assert.equal(adminDone('stop', 'Default Web Site'), '"Default Web Site" successfully stopped.');
  assert.equal(adminDone('recycle', 'DefaultAppPool'), '"DefaultAppPool" successfully recycled.');
});
