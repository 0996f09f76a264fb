import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminError } from '../errors.js';
import {
  flattenConfig,
  formatDetail,
  formatSummary,
  isAdminInvocation,
  parseAdminArgs,
  renderList,
  runAdminCommand,
  type AdminCommand,
  type ListCommand,
} from './appcmd.js';
import type { AdminConfigElement, AdminObject, AdminRequest, AdminResponse } from './types.js';

function command(...argv: string[]): AdminCommand {
  const r = parseAdminArgs(argv);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.ok(r.command);
  return r.command;
}

function usageError(...argv: string[]): string {
  const r = parseAdminArgs(argv);
  assert.ok(!r.ok, `expected a usage error for ${argv.join(' ')}`);
  return r.error;
}

function list(...argv: string[]): ListCommand {
  const c = command('list', ...argv);
  assert.equal(c.verb, 'list');
  return c as ListCommand;
}

const POOL_CONFIG: AdminConfigElement = {
  name: 'add',
  attributes: [
    ['name', 'DefaultAppPool'],
    ['managedRuntimeVersion', 'v4.0'],
  ],
  children: [
    { name: 'processModel', attributes: [['identityType', 'ApplicationPoolIdentity'], ['idleTimeout', '00:20:00']], children: [], items: [] },
    {
      name: 'recycling',
      attributes: [['logEventOnRecycle', 'Time, Memory']],
      children: [{ name: 'periodicRestart', attributes: [['time', '1.05:00:00']], children: [], items: [] }],
      items: [],
    },
  ],
  items: [],
};

function pool(name: string, state: string, config?: AdminConfigElement): AdminObject {
  const properties = { 'APPPOOL.NAME': name, PipelineMode: 'Integrated', RuntimeVersion: 'v4.0', state, ...(config ? flattenConfig(config) : {}) };
  const summary = [['MgdVersion', 'v4.0'], ['MgdMode', 'Integrated'], ['state', state]] as const;
  return config ? { kind: 'APPPOOL', id: name, summary, properties, config } : { kind: 'APPPOOL', id: name, summary, properties };
}

const SITES: AdminObject[] = [
  {
    kind: 'SITE',
    id: 'Default Web Site',
    summary: [['id', '1'], ['bindings', 'http/*:80:'], ['state', 'Started']],
    properties: { 'SITE.NAME': 'Default Web Site', 'SITE.ID': '1', bindings: 'http/*:80:', state: 'Started', name: 'Default Web Site', id: '1', serverAutoStart: 'true' },
  },
  {
    kind: 'SITE',
    id: 'Intranet',
    summary: [['id', '2'], ['bindings', 'http/*:81:,https/*:443:intranet'], ['state', 'Stopped']],
    properties: { 'SITE.NAME': 'Intranet', 'SITE.ID': '2', bindings: 'http/*:81:,https/*:443:intranet', state: 'Stopped', name: 'Intranet', id: '2', serverAutoStart: 'false' },
  },
];

const REQUESTS: AdminObject[] = [
  {
    kind: 'REQUEST',
    id: 'fa00000080000004',
    summary: [['url', 'GET /wait.aspx'], ['time', '4276 msec'], ['client', 'localhost']],
    properties: { 'REQUEST.NAME': 'fa00000080000004', 'SITE.ID': '1', 'WP.NAME': '3577', 'APPPOOL.NAME': 'DefaultAppPool', url: '/wait.aspx', verb: 'GET', time: '4276', client: 'localhost' },
  },
  {
    kind: 'REQUEST',
    id: 'fa00000080000005',
    summary: [['url', 'POST /upload'], ['time', '12000 msec'], ['client', '10.0.0.7']],
    properties: { 'REQUEST.NAME': 'fa00000080000005', 'SITE.ID': '2', 'WP.NAME': '3600', 'APPPOOL.NAME': 'Intranet', url: '/upload', verb: 'POST', time: '12000', client: '10.0.0.7' },
  },
];

test('list accepts singular and plural objects in any case, an identifier, filters and /text', () => {
  assert.deepEqual(command('list', 'sites'), { verb: 'list', kind: 'SITE', identifier: undefined, filters: [], text: { kind: 'summary' } });
  assert.equal(list('APPPOOL').kind, 'APPPOOL');
  for (const [word, kind] of [['app', 'APP'], ['apps', 'APP'], ['vdirs', 'VDIR'], ['wp', 'WP'], ['wps', 'WP'], ['request', 'REQUEST'], ['requests', 'REQUEST']]) {
    assert.equal(list(word!).kind, kind);
  }
  const c = list('apppools', 'DefaultAppPool', '/state:Stopped', '-processModel.identityType:ApplicationPoolIdentity', '--queueLength=1000', '/text:*');
  assert.equal(c.identifier, 'DefaultAppPool');
  assert.deepEqual(c.filters, [
    { name: 'state', value: 'Stopped' },
    { name: 'processModel.identityType', value: 'ApplicationPoolIdentity' },
    { name: 'queueLength', value: '1000' },
  ]);
  assert.deepEqual(c.text, { kind: 'detail' });
  assert.deepEqual(list('sites', '/text:name').text, { kind: 'property', name: 'name' });
  assert.deepEqual(list('apps', '/site.name:"Default Web Site"').filters, [{ name: 'site.name', value: 'Default Web Site' }]);
  assert.equal(list('site', '"Default Web Site"').identifier, 'Default Web Site');
});

test('start, stop and recycle take the name positionally or as /site.name: and /apppool.name:', () => {
  assert.deepEqual(command('start', 'apppool', 'DefaultAppPool'), { verb: 'start', kind: 'APPPOOL', name: 'DefaultAppPool' });
  assert.deepEqual(command('recycle', 'apppool', '/apppool.name:DefaultAppPool'), { verb: 'recycle', kind: 'APPPOOL', name: 'DefaultAppPool' });
  assert.deepEqual(command('STOP', 'SITE', '/site.name:"Default Web Site"'), { verb: 'stop', kind: 'SITE', name: 'Default Web Site' });
  assert.deepEqual(command('start', 'sites', '-site.name:Intranet'), { verb: 'start', kind: 'SITE', name: 'Intranet' });
});

test('usage errors say what is wrong', () => {
  assert.equal(usageError('recycle', 'site', 'X'), 'the command "recycle" is not supported on object "SITE"');
  assert.equal(usageError('stop', 'wp', '1234'), 'the command "stop" is not supported on object "WP"');
  assert.equal(usageError('start', 'apppool'), 'start apppool needs the application pool name');
  assert.equal(usageError('stop', 'site'), 'stop site needs the site name');
  assert.equal(usageError('list'), 'list needs an object: site, app, vdir, apppool, wp or request');
  assert.equal(usageError('list', 'frobs'), 'unknown object "frobs" (expected site, app, vdir, apppool, wp or request)');
  assert.equal(usageError('list', 'site', 'Default', 'Web'), 'unexpected argument "Web" (quote an identifier that contains spaces)');
  assert.equal(usageError('start', 'apppool', 'A', '/state:Started'), 'unknown parameter "state" for start apppool');
  assert.equal(usageError('start', 'apppool', 'A', '/apppool.name:B'), 'two different APPPOOL names given ("A" and "B")');
  assert.equal(usageError('list', 'sites', '--config'), '--config needs a value');
  assert.equal(usageError('list', 'sites', '--port', '99999'), '--port must be a number from 1 to 65535, not "99999"');
  assert.match(usageError('list', 'sites', '--port', '8081', '-c', '/x.config'), /embedded default only/);
});

test('Wharf options go anywhere; /? and --help ask for help', () => {
  const r = parseAdminArgs(['--config', '/etc/wharf/applicationHost.config', 'list', 'sites']);
  assert.ok(r.ok);
  assert.equal(r.configFile, '/etc/wharf/applicationHost.config');
  const p = parseAdminArgs(['list', 'sites', '--port=8081']);
  assert.ok(p.ok);
  assert.equal(p.port, 8081);
  for (const h of ['/?', '-h', '--help']) {
    const help = parseAdminArgs(['list', 'sites', h]);
    assert.ok(help.ok && help.help);
  }
});

test('only list/stop/recycle, or start with an object, are admin commands; plain `wharf start` still starts the server', () => {
  assert.equal(isAdminInvocation([]), false);
  assert.equal(isAdminInvocation(['start']), false);
  assert.equal(isAdminInvocation(['start', '--config', 'x.config']), false);
  assert.equal(isAdminInvocation(['start', '-p', '8081', '--root', 'public']), false);
  assert.equal(isAdminInvocation(['-p', '8081', 'start']), false);
  assert.equal(isAdminInvocation(['frobnicate']), false);
  assert.equal(isAdminInvocation(['--help']), false);
  assert.equal(isAdminInvocation(['start', 'apppool', 'DefaultAppPool']), true);
  assert.equal(isAdminInvocation(['--config', 'x.config', 'start', 'site', 'A']), true);
  assert.equal(isAdminInvocation(['list', 'sites']), true);
  assert.equal(isAdminInvocation(['stop']), true);
  assert.equal(isAdminInvocation(['Recycle', 'apppool', 'X']), true);
});

test('one line per object exactly as appcmd prints it', () => {
  assert.equal(formatSummary(SITES[0]!), 'SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)');
  assert.equal(formatSummary(pool('DefaultAppPool', 'Started')), 'APPPOOL "DefaultAppPool" (MgdVersion:v4.0,MgdMode:Integrated,state:Started)');
  assert.equal(formatSummary(REQUESTS[0]!), 'REQUEST "fa00000080000004" (url:GET /wait.aspx,time:4276 msec,client:localhost)');
  assert.equal(formatSummary({ kind: 'WP', id: '3577', summary: [], properties: {} }), 'WP "3577"');
  const out = renderList(list('sites'), SITES);
  assert.deepEqual(out, {
    stdout: 'SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)\nSITE "Intranet" (id:2,bindings:http/*:81:,https/*:443:intranet,state:Stopped)\n',
    stderr: '',
    code: 0,
  });
});

test('/text:* prints the generated properties, then the configuration element nested', () => {
  assert.deepEqual(formatDetail(pool('DefaultAppPool', 'Started', POOL_CONFIG)), [
    'APPPOOL',
    '  APPPOOL.NAME:"DefaultAppPool"',
    '  PipelineMode:"Integrated"',
    '  RuntimeVersion:"v4.0"',
    '  state:"Started"',
    '  [add]',
    '    name:"DefaultAppPool"',
    '    managedRuntimeVersion:"v4.0"',
    '    [processModel]',
    '      identityType:"ApplicationPoolIdentity"',
    '      idleTimeout:"00:20:00"',
    '    [recycling]',
    '      logEventOnRecycle:"Time, Memory"',
    '      [periodicRestart]',
    '        time:"1.05:00:00"',
  ]);
  // Without a configuration element every property is a generated one.
  assert.deepEqual(renderList(list('requests', 'fa00000080000004', '/text:*'), REQUESTS).stdout.split('\n'), [
    'REQUEST',
    '  REQUEST.NAME:"fa00000080000004"',
    '  SITE.ID:"1"',
    '  WP.NAME:"3577"',
    '  APPPOOL.NAME:"DefaultAppPool"',
    '  url:"/wait.aspx"',
    '  verb:"GET"',
    '  time:"4276"',
    '  client:"localhost"',
    '',
  ]);
});

test('/text:<property> prints that value per object, property names case-insensitive and dotted', () => {
  const pools = [pool('DefaultAppPool', 'Started', POOL_CONFIG), pool('Other', 'Stopped', POOL_CONFIG)];
  assert.equal(renderList(list('apppools', '/text:name'), pools).stdout, 'DefaultAppPool\nDefaultAppPool\n');
  assert.equal(renderList(list('apppools', '/text:STATE'), pools).stdout, 'Started\nStopped\n');
  assert.equal(renderList(list('apppools', '/text:apppool.name'), pools).stdout, 'DefaultAppPool\nOther\n');
  assert.equal(renderList(list('apppools', '/text:recycling.periodicRestart.time'), pools).stdout, '1.05:00:00\n1.05:00:00\n');
});

test('filters: equality ignores case, range operators compare numbers, /elapsed keeps long requests', () => {
  const names = (c: ListCommand, objects: AdminObject[]): string => renderList(c, objects).stdout;
  assert.equal(names(list('sites', '/state:stopped', '/text:name'), SITES), 'Intranet\n');
  assert.equal(names(list('sites', '/serverAutoStart:false', '/state:Stopped', '/text:name'), SITES), 'Intranet\n');
  assert.equal(names(list('sites', '/id:$>1', '/text:name'), SITES), 'Intranet\n');
  assert.equal(names(list('sites', '/id:$<=1', '/text:name'), SITES), 'Default Web Site\n');
  assert.equal(names(list('sites', '/id:$<>1', '/text:name'), SITES), 'Intranet\n');
  assert.equal(names(list('sites', '/name:$=default*', '/text:name'), SITES), 'Default Web Site\n');
  assert.equal(names(list('requests', '/elapsed:5000', '/text:url'), REQUESTS), '/upload\n');
  assert.equal(names(list('requests', '/elapsed:4276', '/text:url'), REQUESTS), '/wait.aspx\n/upload\n');
  assert.equal(names(list('requests', '/apppool.name:defaultapppool', '/text:url'), REQUESTS), '/wait.aspx\n');
  assert.equal(names(list('requests', '/site.id:2', '/text:url'), REQUESTS), '/upload\n');
  assert.equal(names(list('requests', '/wp.name:3577', '/text:url'), REQUESTS), '/wait.aspx\n');
  assert.deepEqual(renderList(list('sites', '/state:Starting'), SITES), { stdout: '', stderr: '', code: 0 });
  assert.deepEqual(renderList(list('sites', '/colour:blue'), SITES), { stdout: '', stderr: 'ERROR ( message:Unknown attribute "colour". )\n', code: 1 });
});

test('an identifier matches case-insensitively; one that matches nothing is appcmd\'s error, an empty list is not', () => {
  assert.equal(renderList(list('site', 'intranet'), SITES).stdout, 'SITE "Intranet" (id:2,bindings:http/*:81:,https/*:443:intranet,state:Stopped)\n');
  assert.deepEqual(renderList(list('site', 'Nope'), SITES), { stdout: '', stderr: 'ERROR ( message:Cannot find SITE object with identifier "Nope". )\n', code: 1 });
  assert.deepEqual(renderList(list('requests'), []), { stdout: '', stderr: '', code: 0 });
});

test('runAdminCommand sends one request and prints the answer, errors as ERROR ( message:… ) with exit 1', async () => {
  const sent: AdminRequest[] = [];
  const answering = (response: AdminResponse) => async (r: AdminRequest): Promise<AdminResponse> => {
    sent.push(r);
    return response;
  };
  const listed = await runAdminCommand(command('list', 'sites', '/state:Started'), answering({ ok: true, objects: SITES }));
  assert.deepEqual(listed, { stdout: 'SITE "Default Web Site" (id:1,bindings:http/*:80:,state:Started)\n', stderr: '', code: 0 });
  assert.deepEqual(sent.pop(), { op: 'list', kind: 'SITE' });

  const recycled = await runAdminCommand(command('recycle', 'apppool', 'DefaultAppPool'), answering({ ok: true, message: '"DefaultAppPool" successfully recycled.' }));
  assert.deepEqual(recycled, { stdout: '"DefaultAppPool" successfully recycled.\n', stderr: '', code: 0 });
  assert.deepEqual(sent.pop(), { op: 'recycle', kind: 'APPPOOL', name: 'DefaultAppPool' });

  const started = await runAdminCommand(command('start', 'site', 'Intranet'), answering({ ok: true }));
  assert.equal(started.stdout, '"Intranet" successfully started.\n');
  assert.deepEqual(sent.pop(), { op: 'start', kind: 'SITE', name: 'Intranet' });

  const refused = await runAdminCommand(
    command('stop', 'apppool', 'Nope'),
    answering({ ok: false, code: 'ADM_NOT_FOUND', error: 'Cannot find APPPOOL object with identifier "Nope".' }),
  );
  assert.deepEqual(refused, { stdout: '', stderr: 'ERROR ( message:Cannot find APPPOOL object with identifier "Nope". )\n', code: 1 });

  const down = await runAdminCommand(command('list', 'wps'), async () => {
    throw new AdminError('ADM_CONNECT', 'Wharf is not running for /x.config: nothing answers on its admin socket /run/wharf/x.sock.');
  });
  assert.deepEqual(down, { stdout: '', stderr: 'ERROR ( message:Wharf is not running for /x.config: nothing answers on its admin socket /run/wharf/x.sock. )\n', code: 1 });
});
