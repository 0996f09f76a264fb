import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedFormatLogFile, type FixedFormatLogOptions } from './fixed-format-log.js';
import { NO_HEADERS, type LogRecord } from './log-record.js';
import { rmSync } from 'node:fs';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    time: Date.UTC(2024, 4, 1, 0, 0, 3, 250),
    siteId: 1,
    siteName: 'Default Web Site',
    computerName: 'WEB01',
    serverIp: '10.0.0.4',
    method: 'GET',
    uriStem: '/index.html',
    uriQuery: '',
    serverPort: 80,
    username: '',
    clientIp: '203.0.113.9',
    clientPort: 51234,
    protocolVersion: 'HTTP/1.1',
    secure: false,
    userAgent: 'curl/8.0',
    cookie: '',
    referer: '',
    host: 'www.example.com',
    status: 200,
    subStatus: 0,
    win32Status: 0,
    bytesSent: 5120,
    bytesReceived: 410,
    timeTakenMs: 12,
    appPoolId: 'DefaultAppPool',
    requestHeaders: NO_HEADERS,
    responseHeaders: NO_HEADERS,
    ...overrides,
  };
}

/** Both formats record local time: pin the zone (Berlin, UTC+02:00 in May). */
function berlin(t: TestContext): void {
  const saved = process.env.TZ;
  process.env.TZ = 'Europe/Berlin';
  t.after(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
}

async function write(options: Partial<FixedFormatLogOptions> & Pick<FixedFormatLogOptions, 'format'>, records: LogRecord[]): Promise<string> {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-fixed-')));
  const log = new FixedFormatLogFile({ directory: dir, siteId: 1, period: 'Daily', flushIntervalMs: 60_000, ...options });
  for (const r of records) log.write(r);
  await log.close();
  return join(dir, 'W3SVC1');
}

test('IIS format: fixed comma-separated fields, local time, no header, trailing comma', async (t) => {
  berlin(t);
  const folder = await write({ format: 'IIS' }, [
    record(),
    record({ username: 'alice', uriStem: '/search', uriQuery: 'q=a b', status: 404, subStatus: 2, win32Status: 2, method: 'POST', timeTakenMs: 4502.4 }),
  ]);
  assert.deepEqual(await readdir(folder), ['u_in240501.log']);
  assert.equal(
    await readFile(join(folder, 'u_in240501.log'), 'utf8'),
    '203.0.113.9, -, 5/1/2024, 2:00:03, W3SVC1, WEB01, 10.0.0.4, 12, 410, 5120, 200, 0, GET, /index.html, -,\r\n' +
      '203.0.113.9, alice, 5/1/2024, 2:00:03, W3SVC1, WEB01, 10.0.0.4, 4502, 410, 5120, 404, 2, POST, /search, q=a+b,\r\n',
  );
});

test('NCSA common: host - user [local time +offset] "request line" status bytes', async (t) => {
  berlin(t);
  const folder = await write({ format: 'NCSA' }, [
    record(),
    record({ username: 'CONTOSO\\bob', uriStem: '/a "b"', uriQuery: 'x=1', protocolVersion: 'HTTP/1.0', status: 304, bytesSent: 180, time: Date.UTC(2024, 4, 1, 21, 5, 9) }),
  ]);
  // 21:05 UTC is 23:05 in Berlin: still 1 May locally.
  assert.deepEqual(await readdir(folder), ['u_nc240501.log']);
  assert.equal(
    await readFile(join(folder, 'u_nc240501.log'), 'utf8'),
    '203.0.113.9 - - [01/May/2024:02:00:03 +0200] "GET /index.html HTTP/1.1" 200 5120\r\n' +
      '203.0.113.9 - CONTOSO\\bob [01/May/2024:23:05:09 +0200] "GET /a+%22b%22?x=1 HTTP/1.0" 304 180\r\n',
  );
});

test('IIS and NCSA files are named and rolled by local time', async (t) => {
  berlin(t);
  // 22:30 UTC on 30 April is 00:30 on 1 May in Berlin.
  const late = Date.UTC(2024, 3, 30, 22, 30, 0);
  const early = Date.UTC(2024, 3, 30, 21, 59, 0);
  const folder = await write({ format: 'IIS', period: 'Hourly' }, [record({ time: early }), record({ time: late })]);
  assert.deepEqual((await readdir(folder)).sort(), ['u_in24043023.log', 'u_in24050100.log']);
  const weekly = await write({ format: 'NCSA', period: 'Weekly' }, [record({ time: late })]);
  assert.deepEqual(await readdir(weekly), ['u_nc240501.log']);
  const monthly = await write({ format: 'NCSA', period: 'Monthly' }, [record({ time: late })]);
  assert.deepEqual(await readdir(monthly), ['u_nc2405.log']);
});

test('MaxSize names: u_inetsvN.log and u_ncsaN.log; logInUTF8 off drops the u_', async (t) => {
  berlin(t);
  assert.deepEqual(await readdir(await write({ format: 'IIS', period: 'MaxSize' }, [record()])), ['u_inetsv1.log']);
  assert.deepEqual(await readdir(await write({ format: 'NCSA', period: 'MaxSize' }, [record()])), ['u_ncsa1.log']);
  assert.deepEqual(await readdir(await write({ format: 'NCSA', utf8: false }, [record()])), ['nc240501.log']);
});

test('NCSA: a negative UTC offset', async (t) => {
  const saved = process.env.TZ;
  process.env.TZ = 'America/New_York'; // UTC-04:00 in May
  t.after(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
  const log = new FixedFormatLogFile({ format: 'NCSA', directory: '/nonexistent', siteId: 1, period: 'Daily', enabled: false });
  assert.equal(log.formatLine(record()), '203.0.113.9 - - [30/Apr/2024:20:00:03 -0400] "GET /index.html HTTP/1.1" 200 5120\r\n');
});
