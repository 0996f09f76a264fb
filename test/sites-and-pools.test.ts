import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'sites' });
});
after(async () => {
  await w?.stop();
});

function cmdline(pid: string): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
}

test('host names pick the site; each application runs in its own pool\'s worker', async () => {
  const alpha = await get(w.port, '/', { Host: 'alpha.test' });
  assert.equal(alpha.status, 200);
  assert.equal(alpha.body.toString(), '<h1>alpha</h1>\n');
  assert.equal(alpha.headers['x-pool'], 'AlphaPool');

  const api = await get(w.port, '/API/data.txt', { Host: 'alpha.test' });
  assert.equal(api.status, 200);
  assert.equal(api.body.toString(), 'api data\n');
  assert.equal(api.headers['x-pool'], 'ApiPool');

  const beta = await get(w.port, '/data.json', { Host: 'Beta.Test:' + w.port, 'User-Agent': 'it test/1.0' });
  assert.equal(beta.status, 200);
  assert.equal(beta.headers['content-type'], 'application/json');
  assert.equal(beta.headers['x-pool'], 'BetaPool');

  // Three pools, three processes, each named after its pool like w3wp -ap "<pool>".
  const pids = new Set([alpha.headers['x-pid'], api.headers['x-pid'], beta.headers['x-pid']]);
  assert.equal(pids.size, 3);
  assert.match(cmdline(alpha.headers['x-pid']!), /-ap "?AlphaPool"?/);
  assert.match(cmdline(api.headers['x-pid']!), /-ap "?ApiPool"?/);
  assert.match(cmdline(beta.headers['x-pid']!), /-ap "?BetaPool"?/);

  // The same worker keeps serving its pool.
  const again = await get(w.port, '/', { Host: 'alpha.test' });
  assert.equal(again.headers['x-pid'], alpha.headers['x-pid']);
});

test('an unknown host gets HTTP.sys\'s 400 Invalid Hostname and an httperr line', async () => {
  const r = await get(w.port, '/', { Host: 'gamma.test' });
  assert.equal(r.status, 400);
  assert.match(r.body.toString(), /Bad Request - Invalid Hostname/);
  assert.match(r.headers['server'] ?? '', /HTTPAPI/);
  const line = await eventually(() => w.httpErrLines().find((l) => l.includes(' Hostname')));
  const f = line.split(' ');
  // date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename
  assert.match(f[0]!, /^\d{4}-\d\d-\d\d$/);
  assert.equal(f[2], '127.0.0.1');
  assert.equal(f[5], String(w.port));
  assert.equal(f[6], 'HTTP/1.1');
  assert.equal(f[7], 'GET');
  assert.equal(f[8], '/');
  assert.equal(f[10], '400');
  assert.equal(f[12], 'Hostname');
});

test('W3C log lines are right field by field, per site', async () => {
  await get(w.port, '/data.json?x=1&y=two', { Host: 'beta.test', 'User-Agent': 'Mozilla/5.0 (X11; Linux)', Referer: 'http://ref.test/a' });
  await get(w.port, '/missing.txt', { Host: 'beta.test' });
  const lines = await eventually(() => {
    const l = w.logLines(2);
    return l.some((x) => x.includes('/missing.txt')) && l.some((x) => x.includes('x=1')) ? l : undefined;
  });
  const hit = lines.find((l) => l.includes('x=1&y=two'))!.split(' ');
  // IIS default fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip
  // cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
  assert.equal(hit.length, 15);
  assert.match(hit[0]!, /^\d{4}-\d\d-\d\d$/);
  assert.match(hit[1]!, /^\d\d:\d\d:\d\d$/);
  assert.equal(hit[2], '127.0.0.1');
  assert.equal(hit[3], 'GET');
  assert.equal(hit[4], '/data.json');
  assert.equal(hit[5], 'x=1&y=two');
  assert.equal(hit[6], String(w.port));
  assert.equal(hit[7], '-');
  assert.equal(hit[8], '127.0.0.1');
  assert.equal(hit[9], 'Mozilla/5.0+(X11;+Linux)');
  assert.equal(hit[10], 'http://ref.test/a');
  assert.equal(hit[11], '200');
  assert.equal(hit[12], '0');
  assert.equal(hit[13], '0');
  assert.match(hit[14]!, /^\d+$/);
  const miss = lines.find((l) => l.includes('/missing.txt'))!.split(' ');
  assert.equal(miss[5], '-');
  assert.equal(miss[9], '-');
  assert.equal(miss[11], '404');
  assert.equal(miss[12], '0');
  assert.equal(miss[13], '2');
  // Site 1's requests are not in site 2's log.
  assert.ok(!lines.some((l) => l.includes('/API/data.txt')));
  const headerFile = w.logLines(1);
  assert.ok(headerFile.some((l) => l.includes('/API/data.txt')));
});
