/**
 * Request logging end to end: a real Wharf serves sites logging in W3C with custom fields, IIS
 * and NCSA formats, a site whose log folder cannot be created, a `logFormat="Custom"` site, and
 * (second server) central W3C logging; the tests read the files the server wrote.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { needs, tool } from './helpers/skip.js';
import { eventually, get, rawRequest, run, startWharf, type WharfProcess } from './helpers/wharf.js';

// IIS and NCSA lines carry local time: pin the server's zone (it inherits this environment).
process.env.TZ = 'Europe/Berlin';

let w: WharfProcess;

before(async () => {
  w = await startWharf({ fixture: 'logging', vars: { MODE: 'Site' } });
});
after(async () => {
  await w?.stop();
});

function siteFolder(siteId: number): string {
  return join(w.systemDrive, 'inetpub', 'logs', 'LogFiles', `W3SVC${siteId}`);
}

/** The one file in a folder (name and text), once it has `minLines` record lines. */
async function logFile(folder: string, minLines = 1): Promise<{ name: string; text: string; lines: string[] }> {
  return eventually(() => {
    if (!existsSync(folder)) return undefined;
    const names = readdirSync(folder);
    if (names.length !== 1) return undefined;
    const text = readFileSync(join(folder, names[0]!), 'utf8');
    const lines = text.split('\r\n').filter((l) => l !== '' && !l.startsWith('#'));
    return lines.length >= minLines ? { name: names[0]!, text, lines } : undefined;
  });
}

test('W3C with custom fields: _x file, configured names after the standard fields, encoded and cut values', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const r = await run('curl', [
    '-s', '-i', '--max-time', '10',
    '-H', 'Host: w3c.test',
    '-H', 'X-Forwarded-For: 203.0.113.5, ::1',
    '-H', 'X-Long: 0123456789abcdefTOO-LONG',
    `http://127.0.0.1:${w.port}/index.html?a=1`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.1 200 OK\r\n/);
  const contentType = /\r\ncontent-type: ([^\r]*)\r\n/i.exec(r.stdout)![1]!;
  const f = await logFile(siteFolder(1));
  assert.match(f.name, /^u_ex\d{6}_x\.log$/);
  assert.match(
    f.text,
    /^#Software: Microsoft Internet Information Services 10\.0\r\n#Version: 1\.0\r\n#Date: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\r\n#Fields: date time cs-method cs-uri-stem cs-uri-query cs-host sc-status X-Forwarded-For ContentType Pool Port Long\r\n/,
  );
  const fields = f.lines[0]!.split(' ');
  assert.match(fields[0]!, /^\d{4}-\d\d-\d\d$/);
  assert.deepEqual(fields.slice(2), [
    'GET', '/index.html', 'a=1', 'w3c.test', '200',
    '203.0.113.5,+::1', contentType.replace(/ /g, '+'), 'LogPool', String(w.port), '0123456789abcdef',
  ]);
});

test('IIS format: u_in file, comma-separated fixed fields in local time', async () => {
  const res = await get(w.port, '/index.html', { Host: 'iis.test' });
  assert.equal(res.status, 200);
  const f = await logFile(siteFolder(2));
  assert.match(f.name, /^u_in\d{6}\.log$/);
  assert.ok(!f.text.startsWith('#'), 'no header block');
  const now = new Date();
  const date = `${now.getMonth() + 1}/${now.getDate()}/${now.getFullYear()}`;
  const host = hostname().replace(/[\s]/g, '+');
  assert.match(
    f.lines[0]!,
    new RegExp(`^127\\.0\\.0\\.1, -, ${date.replace(/\//g, '\\/')}, \\d{1,2}:\\d\\d:\\d\\d, W3SVC2, ${host.replace(/[.+]/g, '\\$&')}, 127\\.0\\.0\\.1, \\d+, \\d+, \\d+, 200, 0, GET, /index\\.html, -,$`),
  );
  const bytesSent = Number(f.lines[0]!.split(', ')[9]);
  assert.equal(bytesSent, res.raw.length, 'bytes sent is the whole response');
});

test('NCSA format: u_nc file, common log format with the local offset', async () => {
  const raw = await rawRequest(w.port, 'GET /index.html?x=1 HTTP/1.1\r\nHost: ncsa.test\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 200 /);
  const f = await logFile(siteFolder(3));
  assert.match(f.name, /^u_nc\d{6}\.log$/);
  const m = /^127\.0\.0\.1 - - \[(\d\d)\/([A-Z][a-z]{2})\/(\d{4}):\d\d:\d\d:\d\d ([+-]\d{4})\] "GET \/index\.html\?x=1 HTTP\/1\.1" 200 (\d+)$/.exec(f.lines[0]!);
  assert.ok(m, f.lines[0]);
  const offset = -new Date().getTimezoneOffset();
  assert.equal(m[4], offset === 120 ? '+0200' : '+0100', 'Europe/Berlin');
  assert.equal(Number(m[5]), Buffer.byteLength(raw, 'latin1'));
});

test('logFormat="Custom" is reported once and the site is logged in W3C', async () => {
  assert.equal((await get(w.port, '/', { Host: 'custom.test' })).status, 200);
  const f = await logFile(siteFolder(5));
  assert.match(f.name, /^u_ex\d{6}\.log$/);
  assert.match(f.lines[0]!, / GET \/ - \d+ - 127\.0\.0\.1 /);
  assert.equal(w.output().match(/logFormat="Custom"/g)?.length, 1);
});

test('an unwritable log folder never stops serving: reported once, records kept, written once fixed', async () => {
  const statuses: number[] = [];
  // Spread over more than two flush intervals, so the writer fails (and retries) several times.
  for (let i = 0; i < 6; i++) {
    statuses.push((await get(w.port, `/index.html?n=${i}`, { Host: 'broken.test' })).status);
    await new Promise((r) => setTimeout(r, 450));
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200]);
  await w.waitForOutput(/W3C log of site 4: cannot write to \S*blocker\/logs\/W3SVC4: ENOTDIR/);
  assert.equal(w.output().match(/W3C log of site 4: cannot write/g)?.length, 1, 'reported once, not per request or per retry');

  rmSync(join(w.root, 'blocker'));
  assert.equal((await get(w.port, '/index.html?n=6', { Host: 'broken.test' })).status, 200);
  const f = await logFile(join(w.root, 'blocker', 'logs', 'W3SVC4'), 7);
  assert.deepEqual(
    f.lines.map((l) => / GET \/index\.html (n=\d) /.exec(l)?.[1]),
    ['n=0', 'n=1', 'n=2', 'n=3', 'n=4', 'n=5', 'n=6'],
  );
});

test('centralLogFileMode="CentralW3C": one file for every site under W3SVC/, no per-site files', async () => {
  const central = await startWharf({ fixture: 'logging', vars: { MODE: 'CentralW3C' } });
  try {
    assert.equal((await get(central.port, '/index.html', { Host: 'w3c.test' })).status, 200);
    assert.equal((await get(central.port, '/nothing-here', { Host: 'ncsa.test' })).status, 404);
    const folder = join(central.root, 'central', 'W3SVC');
    const f = await eventually(() => {
      if (!existsSync(folder)) return undefined;
      const names = readdirSync(folder);
      const text = names.length === 1 ? readFileSync(join(folder, names[0]!), 'utf8') : '';
      return text.includes(' W3SVC3 ') ? { names, text } : undefined;
    });
    assert.match(f.names[0]!, /^u_ex\d{6}\.log$/);
    assert.match(f.text, /\r\n#Fields: date time s-sitename cs-method cs-uri-stem sc-status\r\n/);
    const lines = f.text.split('\r\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(lines.map((l) => l.split(' ').slice(2).join(' ')), ['W3SVC1 GET /index.html 200', 'W3SVC3 GET /nothing-here 404']);
    assert.equal(existsSync(join(central.systemDrive, 'inetpub', 'logs', 'LogFiles', 'W3SVC1')), false);
    assert.equal(existsSync(join(central.systemDrive, 'inetpub', 'logs', 'LogFiles', 'W3SVC3')), false);
  } finally {
    await central.stop();
  }
});
