import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { W3cLogFile, W3cLogFlag, W3C_DEFAULT_FLAGS, w3cField, w3cLogPeriod, type W3cLogFileOptions } from './w3c-log.js';
import type { LogRecord } from './log-record.js';
import { CustomLogFields } from './custom-log-fields.js';
import type { ListenerError } from '../../errors.js';
import { rmSync } from 'node:fs';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const ALL_FLAGS = 0x3fffff;
const SOFTWARE = '#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'wharf-w3c-')).then(tracked);
}

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
    userAgent: 'Mozilla/5.0 (Windows NT 10.0)',
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
    requestHeaders: ['Host', 'www.example.com', 'X-Forwarded-For', '198.51.100.7', 'User-Agent', 'Mozilla/5.0 (Windows NT 10.0)'],
    responseHeaders: [],
    ...overrides,
  };
}

function logFile(directory: string, options: Partial<W3cLogFileOptions> = {}): W3cLogFile {
  return new W3cLogFile({
    directory,
    siteId: 1,
    fields: W3C_DEFAULT_FLAGS,
    period: 'Daily',
    truncateSize: 20_971_520,
    localTimeRollover: false,
    logSiteId: true,
    enabled: true,
    flushIntervalMs: 60_000,
    ...options,
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

test('default fields: header block and line are byte-for-byte what IIS writes', async () => {
  const dir = await tempDir();
  const log = logFile(dir);
  log.write(record());
  await log.close();
  const text = await readFile(join(dir, 'W3SVC1', 'u_ex240501.log'), 'utf8');
  assert.equal(
    text,
    SOFTWARE +
      '#Date: 2024-05-01 00:00:03\r\n' +
      '#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n' +
      '2024-05-01 00:00:03 10.0.0.4 GET /index.html - 80 - 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 12\r\n',
  );
});

test('all flags: IIS field order, logSiteId on and off', async () => {
  const dir = await tempDir();
  const r = record({
    uriQuery: 'q=1&x=a+b',
    username: 'CONTOSO\\alice',
    cookie: 'a=1; b=2',
    referer: 'https://ref.example/',
    status: 404,
    subStatus: 3,
    win32Status: 50,
    timeTakenMs: 7.6,
  });
  const bySiteId = logFile(join(dir, 'a'), { fields: ALL_FLAGS });
  const byName = logFile(join(dir, 'b'), { fields: ALL_FLAGS, logSiteId: false });
  bySiteId.write(r);
  byName.write(r);
  await Promise.all([bySiteId.close(), byName.close()]);
  const fields =
    '#Fields: date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs-version cs(User-Agent) cs(Cookie) cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken\r\n';
  const rest =
    'WEB01 10.0.0.4 GET /index.html q=1&x=a+b 80 CONTOSO\\alice 203.0.113.9 HTTP/1.1 Mozilla/5.0+(Windows+NT+10.0) a=1;+b=2 https://ref.example/ www.example.com 404 3 50 5120 410 8\r\n';
  assert.equal(
    await readFile(join(dir, 'a', 'W3SVC1', 'u_ex240501.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 00:00:03\r\n' + fields + '2024-05-01 00:00:03 W3SVC1 ' + rest,
  );
  assert.equal(
    await readFile(join(dir, 'b', 'W3SVC1', 'u_ex240501.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 00:00:03\r\n' + fields + '2024-05-01 00:00:03 Default+Web+Site ' + rest,
  );
});

test('field order is fixed whatever subset of flags is enabled', () => {
  const log = logFile('/nonexistent', {
    fields: W3cLogFlag.TimeTaken | W3cLogFlag.Host | W3cLogFlag.Date | W3cLogFlag.SiteName,
    enabled: false,
  });
  assert.equal(log.formatLine(record()), '2024-05-01 W3SVC1 www.example.com 12\r\n');
});

test('value encoding: empty is -, spaces and control characters become +', () => {
  assert.equal(w3cField(''), '-');
  assert.equal(w3cField('a b'), 'a+b');
  assert.equal(w3cField('a\tb\r\nc\u0000d\u007fe'), 'a+b++c+d+e');
  assert.equal(w3cField('/caf\u00e9'), '/caf\u00e9');
  // Line breaks by Unicode's rules (NEL, LINE and PARAGRAPH SEPARATOR) and the other C1 controls:
  // tools that split lines that way must still see one record per line.
  assert.equal(w3cField('a\u0085b\u2028c\u2029d\u0080e\u009ff\u00a0g'), 'a+b+c+d+e+f\u00a0g');
  const log = logFile('/nonexistent', { enabled: false });
  assert.equal(
    log.formatLine(record({ userAgent: 'evil\r\n2024-01-01 fake line', uriStem: '/a b', serverIp: '' })),
    '2024-05-01 00:00:03 - GET /a+b - 80 - 203.0.113.9 evil++2024-01-01+fake+line - 200 0 0 12\r\n',
  );
});

test('file names for each period', async () => {
  const time = Date.UTC(2024, 5, 30, 13, 45, 0); // Sunday 30 June 2024: week 06 of June
  const expected = {
    Daily: 'u_ex240630.log',
    Hourly: 'u_ex24063013.log',
    Weekly: 'u_ex240606.log',
    Monthly: 'u_ex2406.log',
    MaxSize: 'u_extend1.log',
  } as const;
  for (const [period, name] of Object.entries(expected)) {
    const dir = await tempDir();
    const log = logFile(dir, { period: period as keyof typeof expected, siteId: 7, now: () => time });
    log.write(record({ time }));
    await log.close();
    assert.deepEqual(await readdir(join(dir, 'W3SVC7')), [name], period);
  }
});

test('weekly: weeks start on Sunday, numbered within the month', () => {
  const week = (y: number, m: number, d: number, h = 0, min = 0, s = 0) =>
    w3cLogPeriod('Weekly', Date.UTC(y, m - 1, d, h, min, s), false).name;
  assert.equal(week(2024, 5, 1), 'u_ex240501.log'); // Wednesday
  assert.equal(week(2024, 5, 4, 23, 59, 59), 'u_ex240501.log'); // Saturday night
  assert.equal(week(2024, 5, 5), 'u_ex240502.log'); // Sunday midnight starts week 2
  assert.equal(week(2024, 5, 31), 'u_ex240505.log');
  assert.equal(week(2024, 6, 1), 'u_ex240601.log'); // a Saturday: its own week 1
  assert.equal(week(2024, 6, 2), 'u_ex240602.log');
  const first = w3cLogPeriod('Weekly', Date.UTC(2024, 4, 1, 12), false);
  assert.equal(first.start, Date.UTC(2024, 4, 1));
  assert.equal(first.end, Date.UTC(2024, 4, 5));
  const last = w3cLogPeriod('Weekly', Date.UTC(2024, 4, 30), false);
  assert.equal(last.end, Date.UTC(2024, 5, 1), 'a week is cut at the month end');
});

test('daily files roll at midnight UTC; each new file gets its header', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { fields: W3cLogFlag.Date | W3cLogFlag.Time | W3cLogFlag.UriStem });
  log.write(record({ time: Date.UTC(2024, 4, 1, 23, 59, 59, 900), uriStem: '/before' }));
  log.write(record({ time: Date.UTC(2024, 4, 2, 0, 0, 0, 100), uriStem: '/after' }));
  await log.close();
  const folder = join(dir, 'W3SVC1');
  assert.deepEqual((await readdir(folder)).sort(), ['u_ex240501.log', 'u_ex240502.log']);
  const fields = '#Fields: date time cs-uri-stem\r\n';
  assert.equal(
    await readFile(join(folder, 'u_ex240501.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 23:59:59\r\n' + fields + '2024-05-01 23:59:59 /before\r\n',
  );
  assert.equal(
    await readFile(join(folder, 'u_ex240502.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-02 00:00:00\r\n' + fields + '2024-05-02 00:00:00 /after\r\n',
  );
});

test('hourly files roll on the hour', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { period: 'Hourly' });
  log.write(record({ time: Date.UTC(2024, 4, 1, 9, 59, 59) }));
  log.write(record({ time: Date.UTC(2024, 4, 1, 10, 0, 0) }));
  await log.close();
  assert.deepEqual((await readdir(join(dir, 'W3SVC1'))).sort(), ['u_ex24050109.log', 'u_ex24050110.log']);
});

test('a record that completed just before midnight but arrives after it stays in the new file', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { fields: W3cLogFlag.Time });
  log.write(record({ time: Date.UTC(2024, 4, 2, 0, 0, 0, 10) }));
  log.write(record({ time: Date.UTC(2024, 4, 1, 23, 59, 59, 990) }));
  await log.close();
  const folder = join(dir, 'W3SVC1');
  assert.deepEqual(await readdir(folder), ['u_ex240502.log']);
  assert.equal(
    await readFile(join(folder, 'u_ex240502.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-02 00:00:00\r\n#Fields: time\r\n00:00:00\r\n23:59:59\r\n',
  );
});

test('localTimeRollover: files roll at local midnight, timestamps stay UTC', async (t) => {
  const saved = process.env.TZ;
  process.env.TZ = 'Asia/Kolkata'; // UTC+05:30, no DST: local midnight is 18:30 UTC
  t.after(() => {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  });
  const fields = W3cLogFlag.Date | W3cLogFlag.Time;
  const before = Date.UTC(2024, 4, 1, 18, 29, 59);
  const after = Date.UTC(2024, 4, 1, 18, 30, 0);

  const localDir = await tempDir();
  const local = logFile(localDir, { fields, localTimeRollover: true });
  local.write(record({ time: before }));
  local.write(record({ time: after }));
  await local.close();
  const folder = join(localDir, 'W3SVC1');
  assert.deepEqual((await readdir(folder)).sort(), ['u_ex240501.log', 'u_ex240502.log']);
  assert.match(await readFile(join(folder, 'u_ex240501.log'), 'utf8'), /\r\n2024-05-01 18:29:59\r\n$/);
  assert.equal(
    await readFile(join(folder, 'u_ex240502.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 18:30:00\r\n#Fields: date time\r\n2024-05-01 18:30:00\r\n',
  );
  assert.equal(w3cLogPeriod('Hourly', after, true).name, 'u_ex24050200.log');

  const utcDir = await tempDir();
  const utc = logFile(utcDir, { fields, localTimeRollover: false });
  utc.write(record({ time: before }));
  utc.write(record({ time: after }));
  await utc.close();
  assert.deepEqual(await readdir(join(utcDir, 'W3SVC1')), ['u_ex240501.log']);
});

test('a restarted writer appending to an existing file repeats the header block', async () => {
  const dir = await tempDir();
  const fields = W3cLogFlag.Time | W3cLogFlag.UriStem;
  const first = logFile(dir, { fields });
  first.write(record({ time: Date.UTC(2024, 4, 1, 8, 0, 0), uriStem: '/one' }));
  await first.close();
  const second = logFile(dir, { fields });
  second.write(record({ time: Date.UTC(2024, 4, 1, 9, 30, 0), uriStem: '/two' }));
  await second.close();
  assert.equal(
    await readFile(join(dir, 'W3SVC1', 'u_ex240501.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 08:00:00\r\n#Fields: time cs-uri-stem\r\n08:00:00 /one\r\n' +
      SOFTWARE + '#Date: 2024-05-01 09:30:00\r\n#Fields: time cs-uri-stem\r\n09:30:00 /two\r\n',
  );
});

test('MaxSize: u_extendN.log rolls before truncateSize; a restart continues the highest file', async () => {
  const dir = await tempDir();
  const fields = W3cLogFlag.Date | W3cLogFlag.Time | W3cLogFlag.UriStem;
  const header = SOFTWARE + '#Date: 2024-05-01 00:00:03\r\n#Fields: date time cs-uri-stem\r\n';
  const line = '2024-05-01 00:00:03 /a\r\n';
  const truncateSize = header.length + 3 * line.length; // room for three records per file
  const log = logFile(dir, { fields, period: 'MaxSize', truncateSize });
  for (let i = 0; i < 7; i++) log.write(record({ uriStem: '/a' }));
  await log.close();
  const folder = join(dir, 'W3SVC1');
  assert.deepEqual((await readdir(folder)).sort(), ['u_extend1.log', 'u_extend2.log', 'u_extend3.log']);
  assert.equal(await readFile(join(folder, 'u_extend1.log'), 'utf8'), header + line.repeat(3));
  assert.equal(await readFile(join(folder, 'u_extend2.log'), 'utf8'), header + line.repeat(3));
  assert.equal(await readFile(join(folder, 'u_extend3.log'), 'utf8'), header + line);

  // u_extend3 has room for two more records but not for a second header plus one: next number.
  const restarted = logFile(dir, { fields, period: 'MaxSize', truncateSize });
  restarted.write(record({ uriStem: '/a' }));
  await restarted.close();
  assert.equal(await readFile(join(folder, 'u_extend4.log'), 'utf8'), header + line);

  // With room left, the restart appends to the highest file behind a repeated header.
  const roomy = logFile(dir, { fields, period: 'MaxSize', truncateSize: 10_000 });
  roomy.write(record({ uriStem: '/a' }));
  await roomy.close();
  assert.equal(await readFile(join(folder, 'u_extend4.log'), 'utf8'), header + line + header + line);
});

test('buffered records are written when the flush interval passes', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { flushIntervalMs: 30 });
  const path = join(dir, 'W3SVC1', 'u_ex240501.log');
  log.write(record());
  await tick();
  assert.equal(await exists(path), false, 'nothing is written synchronously');
  await waitFor(async () => (await exists(path)) && (await readFile(path, 'utf8')).endsWith(' 12\r\n'));
  await log.close();
});

test('64 KiB of buffered records are written without waiting for the interval', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { fields: W3cLogFlag.UserAgent, flushIntervalMs: 3_600_000 });
  const path = join(dir, 'W3SVC1', 'u_ex240501.log');
  const userAgent = 'x'.repeat(1022); // 1024-byte lines
  for (let i = 0; i < 63; i++) log.write(record({ userAgent }));
  await sleep(50);
  assert.equal(await exists(path), false, 'under 64 KiB waits for the interval');
  log.write(record({ userAgent }));
  await waitFor(async () => (await exists(path)) && (await stat(path)).size >= 64 * 1024);
  const lines = (await readFile(path, 'utf8')).split('\r\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.equal(lines.length, 64);
  await log.close();
});

test('an unwritable directory: no throw, onError once a minute, records kept and written once it is fixed', async () => {
  const dir = await tempDir();
  const blocker = join(dir, 'blocker');
  await writeFile(blocker, 'a regular file where a folder should be');
  let now = 1_000_000;
  const errors: ListenerError[] = [];
  const log = logFile(join(blocker, 'logs'), {
    fields: W3cLogFlag.Time | W3cLogFlag.UriStem,
    now: () => now,
    onError: (err) => errors.push(err),
  });

  assert.doesNotThrow(() => log.write(record({ uriStem: '/one' })));
  await log.flush();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'LSN_LOG_WRITE');
  assert.match(errors[0].message, /^W3C log of site 1: cannot write to .*blocker\/logs\/W3SVC1: ENOTDIR/);

  log.write(record({ uriStem: '/two' }));
  await log.flush();
  now += 30_000;
  await log.flush();
  assert.equal(errors.length, 1, 'repeated failures within a minute are not reported again');
  now += 31_000;
  await log.flush();
  assert.equal(errors.length, 2, 'reported again after a minute');

  await rm(blocker);
  await log.flush();
  assert.equal(errors.length, 2);
  assert.equal(
    await readFile(join(blocker, 'logs', 'W3SVC1', 'u_ex240501.log'), 'utf8'),
    SOFTWARE + '#Date: 2024-05-01 00:00:03\r\n#Fields: time cs-uri-stem\r\n00:00:03 /one\r\n00:00:03 /two\r\n',
  );
  assert.equal(log.droppedRecords, 0);
  await log.close();
});

test('disabled logging writes nothing; writes after close are counted as dropped', async () => {
  const dir = await tempDir();
  const disabled = logFile(dir, { enabled: false });
  disabled.write(record());
  await disabled.close();
  assert.deepEqual(await readdir(dir), []);

  const log = logFile(dir);
  await log.close();
  assert.doesNotThrow(() => log.write(record()));
  assert.equal(log.droppedRecords, 1);
  await log.close(); // idempotent
});

test('custom fields: named as configured after the standard fields, in a _x file', async () => {
  const dir = await tempDir();
  const customFields = new CustomLogFields([
    { logFieldName: 'X-Forwarded-For', sourceName: 'X-Forwarded-For', sourceType: 'RequestHeader' },
    { logFieldName: 'ContentType', sourceName: 'Content-Type', sourceType: 'ResponseHeader' },
    { logFieldName: 'Pool', sourceName: 'APP_POOL_ID', sourceType: 'ServerVariable' },
    { logFieldName: 'Missing', sourceName: 'X-Not-There', sourceType: 'RequestHeader' },
  ]);
  const log = logFile(dir, { customFields });
  log.write(record({ responseHeaders: ['Content-Type', 'text/html; charset=utf-8'] }));
  await log.close();
  assert.deepEqual(await readdir(join(dir, 'W3SVC1')), ['u_ex240501_x.log']);
  assert.equal(
    await readFile(join(dir, 'W3SVC1', 'u_ex240501_x.log'), 'utf8'),
    SOFTWARE +
      '#Date: 2024-05-01 00:00:03\r\n' +
      '#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken X-Forwarded-For ContentType Pool Missing\r\n' +
      '2024-05-01 00:00:03 10.0.0.4 GET /index.html - 80 - 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 12 198.51.100.7 text/html;+charset=utf-8 DefaultAppPool -\r\n',
  );
});

test('custom fields with MaxSize: u_extendN_x.log', async () => {
  const dir = await tempDir();
  const customFields = new CustomLogFields([{ logFieldName: 'XFF', sourceName: 'X-Forwarded-For', sourceType: 'RequestHeader' }]);
  const log = logFile(dir, { customFields, period: 'MaxSize' });
  log.write(record());
  await log.close();
  assert.deepEqual(await readdir(join(dir, 'W3SVC1')), ['u_extend1_x.log']);
});

test('central W3C log: one W3SVC folder, s-sitename per record', async () => {
  const dir = await tempDir();
  const log = logFile(dir, {
    central: true,
    siteId: 0,
    fields: W3cLogFlag.Date | W3cLogFlag.Time | W3cLogFlag.SiteName | W3cLogFlag.UriStem | W3cLogFlag.HttpStatus,
  });
  log.write(record({ siteId: 1, uriStem: '/one' }));
  log.write(record({ siteId: 2, uriStem: '/two', status: 404 }));
  await log.close();
  assert.deepEqual(await readdir(dir), ['W3SVC']);
  assert.equal(
    await readFile(join(dir, 'W3SVC', 'u_ex240501.log'), 'utf8'),
    SOFTWARE +
      '#Date: 2024-05-01 00:00:03\r\n#Fields: date time s-sitename cs-uri-stem sc-status\r\n' +
      '2024-05-01 00:00:03 W3SVC1 /one 200\r\n2024-05-01 00:00:03 W3SVC2 /two 404\r\n',
  );
});

test('logInUTF8="false": names without the u_ prefix', async () => {
  const dir = await tempDir();
  const log = logFile(dir, { utf8: false });
  log.write(record());
  await log.close();
  assert.deepEqual(await readdir(join(dir, 'W3SVC1')), ['ex240501.log']);
});
