import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpErrLog, type HttpErrEntry } from './httperr-log.js';
import type { ListenerError } from '../../errors.js';
import { rmSync } from 'node:fs';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const HEADER_START = '#Software: Microsoft HTTP API 2.0\r\n#Version: 1.0\r\n';
const FIELDS =
  '#Fields: date time c-ip c-port s-ip s-port cs-version cs-method cs-uri streamid sc-status s-siteid s-reason s-queuename\r\n';

function entry(overrides: Partial<HttpErrEntry> = {}): HttpErrEntry {
  return {
    time: Date.UTC(2024, 4, 1, 10, 0, 0, 500),
    clientIp: '203.0.113.9',
    clientPort: 51234,
    serverIp: '10.0.0.4',
    serverPort: 80,
    protocolVersion: 'HTTP/1.1',
    method: 'GET',
    uri: '/',
    status: 400,
    siteId: undefined,
    reason: 'Hostname',
    queueName: undefined,
    ...overrides,
  };
}

test('header block and lines are byte-for-byte what HTTP.sys writes', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-httperr-')));
  const log = new HttpErrLog({ directory: dir, flushIntervalMs: 60_000 });
  log.write(entry());
  log.write(entry({ uri: '/a b?x=1', status: 503, siteId: 2, reason: 'QueueFull', queueName: 'My Pool' }));
  log.write(
    entry({
      protocolVersion: '-',
      method: '',
      uri: '',
      status: undefined,
      siteId: 1,
      reason: 'Timer_ConnectionIdle',
      queueName: 'DefaultAppPool',
    }),
  );
  await log.close();
  assert.deepEqual(await readdir(dir), ['httperr1.log']);
  assert.equal(
    await readFile(join(dir, 'httperr1.log'), 'utf8'),
    HEADER_START +
      '#Date: 2024-05-01 10:00:00\r\n' +
      FIELDS +
      '2024-05-01 10:00:00 203.0.113.9 51234 10.0.0.4 80 HTTP/1.1 GET / - 400 - Hostname -\r\n' +
      '2024-05-01 10:00:00 203.0.113.9 51234 10.0.0.4 80 HTTP/1.1 GET /a+b?x=1 - 503 2 QueueFull My+Pool\r\n' +
      '2024-05-01 10:00:00 203.0.113.9 51234 10.0.0.4 80 - - - - - 1 Timer_ConnectionIdle DefaultAppPool\r\n',
  );
});

test('the URL is cut to 4096 bytes without splitting a character; odd versions become HTTP/?.?', () => {
  const log = new HttpErrLog({ directory: '/nonexistent' });
  const long = '/' + 'a'.repeat(4094) + '\u00e9\u00e9'; // 4095 ASCII bytes, then two 2-byte characters
  const line = log.formatLine(entry({ uri: long }));
  const uri = line.split(' ')[8];
  assert.equal(uri, '/' + 'a'.repeat(4094));
  assert.equal(log.formatLine(entry({ uri: '/' + 'a'.repeat(4093) + '\u00e9' })).split(' ')[8].length, 4095);
  assert.equal(log.formatLine(entry({ protocolVersion: 'HTTP/10.1' })).split(' ')[6], 'HTTP/?.?');
  assert.equal(log.formatLine(entry({ protocolVersion: 'HTTP/1.0' })).split(' ')[6], 'HTTP/1.0');
  assert.equal(
    log.formatLine(entry({ uri: '/x\r\ny', method: 'G\tT' })),
    '2024-05-01 10:00:00 203.0.113.9 51234 10.0.0.4 80 HTTP/1.1 G+T /x++y - 400 - Hostname -\r\n',
  );
});

test('httperrN.log rolls at truncateSize and a restart continues the highest number', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-httperr-')));
  const header = HEADER_START + '#Date: 2024-05-01 10:00:00\r\n' + FIELDS;
  const line = '2024-05-01 10:00:00 203.0.113.9 51234 10.0.0.4 80 HTTP/1.1 GET / - 400 - Hostname -\r\n';
  const truncateSize = header.length + 2 * line.length;
  const log = new HttpErrLog({ directory: dir, truncateSize });
  for (let i = 0; i < 5; i++) log.write(entry());
  await log.close();
  assert.deepEqual((await readdir(dir)).sort(), ['httperr1.log', 'httperr2.log', 'httperr3.log']);
  assert.equal(await readFile(join(dir, 'httperr1.log'), 'utf8'), header + line + line);
  assert.equal(await readFile(join(dir, 'httperr3.log'), 'utf8'), header + line);

  const restarted = new HttpErrLog({ directory: dir, truncateSize: 1024 * 1024 });
  restarted.write(entry());
  await restarted.close();
  assert.equal(await readFile(join(dir, 'httperr3.log'), 'utf8'), header + line + header + line);
});

test('an unwritable directory: no throw, one onError, entries written once the directory is valid', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-httperr-')));
  const blocker = join(dir, 'HTTPERR');
  await writeFile(blocker, 'not a folder');
  const errors: ListenerError[] = [];
  const log = new HttpErrLog({ directory: blocker, now: () => 5_000, onError: (err) => errors.push(err) });
  assert.doesNotThrow(() => log.write(entry()));
  await log.flush();
  log.write(entry({ reason: 'BadRequest' }));
  await log.flush();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'LSN_LOG_WRITE');
  assert.match(errors[0].message, /^HTTP error log: cannot write to .*HTTPERR: /);

  await rm(blocker);
  await log.close();
  const text = await readFile(join(blocker, 'httperr1.log'), 'utf8');
  assert.match(text, / Hostname -\r\n.* BadRequest -\r\n$/s);
  assert.equal(log.droppedRecords, 0);
});
