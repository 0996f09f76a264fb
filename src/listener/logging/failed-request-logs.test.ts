import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppHost } from '../../config/index.js';
import type { ListenerError } from '../../errors.js';
import type { TraceRecordMessage } from '../../ipc/messages.js';
import { FailedRequestLogs } from './failed-request-logs.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(logging: string, prepare?: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-freb-logs-'));
  dirs.push(dir);
  prepare?.(dir);
  mkdirSync(join(dir, 'www'));
  const text = `<?xml version="1.0"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="Shop" /><add name="Other" /></applicationPools>
    <sites>
      <site name="S" id="7">
        <application path="/" applicationPool="Shop"><virtualDirectory path="/" physicalPath="www" /></application>
        <bindings><binding protocol="http" bindingInformation="*:8080:" /></bindings>
        ${logging}
      </site>
      <site name="Off" id="8">
        <application path="/" applicationPool="Other"><virtualDirectory path="/" physicalPath="www" /></application>
        <bindings><binding protocol="http" bindingInformation="*:8081:" /></bindings>
      </site>
    </sites>
  </system.applicationHost>
</configuration>`;
  const file = join(dir, 'applicationHost.config');
  writeFileSync(file, text);
  const errors: ListenerError[] = [];
  const logs = new FailedRequestLogs({ computerName: 'web01', onError: (e) => errors.push(e), xsl: '<xsl:stylesheet/>' });
  logs.apply(loadAppHost(file, text, { systemDrive: dir }));
  return { dir, logs, errors };
}

function record(n: number, over: Partial<TraceRecordMessage> = {}): Buffer {
  const r: TraceRecordMessage = {
    siteId: 7,
    url: `http://localhost:8080/missing-${n}`,
    verb: 'GET',
    userName: '',
    authenticationType: 'anonymous',
    activityId: '{0A1B2C3D-0000-4000-8000-00000000ABCD}',
    failureReason: 'STATUS_CODE',
    statusCode: '404',
    triggerStatusCode: '404',
    timeTaken: n,
    events: [{ opcode: 'GENERAL_REQUEST_START', area: 'General', level: 0, time: Date.now(), data: [['RequestURL', `/missing-${n}`, '']] }],
    ...over,
  };
  return Buffer.from(JSON.stringify(r));
}

test('traces are numbered fr000001.xml … in W3SVC<id>, with freb.xsl beside them; maxLogFiles keeps the newest', async () => {
  // A file from an earlier run: listed, and numbering goes on after it.
  const { dir, logs, errors } = setup(`<traceFailedRequestsLogging enabled="true" directory="${'%SystemDrive%'}\\traces" maxLogFiles="3" />`, (d) => {
    mkdirSync(join(d, 'traces', 'W3SVC7'), { recursive: true });
    writeFileSync(join(d, 'traces', 'W3SVC7', 'fr000041.xml'), '<?xml version="1.0"?>\n<failedRequest url="http://localhost/a&amp;b" siteId="7" processId="12" failureReason="TIME_TAKEN" statusCode="200" timeTaken="31000">\n</failedRequest>\n');
  });
  const folder = join(dir, 'traces', 'W3SVC7');
  await logs.flush();
  assert.deepEqual(logs.list().map((t) => [t.file, t.url, t.statusCode, t.processId, t.failureReason, t.timeTaken]), [['fr000041.xml', 'http://localhost/a&b', '200', 12, 'TIME_TAKEN', 31000]]);
  for (let n = 1; n <= 5; n++) logs.accept('shop', 555, record(n));
  await logs.flush();
  assert.deepEqual(errors, []);
  assert.deepEqual(readdirSync(folder).sort(), ['fr000044.xml', 'fr000045.xml', 'fr000046.xml', 'freb.xsl']);
  assert.match(readFileSync(join(folder, 'fr000046.xml'), 'utf8'), /url="http:\/\/localhost:8080\/missing-5"[\s\S]*appPoolId="shop"[\s\S]*processId="555"/);
  assert.equal(readFileSync(join(folder, 'freb.xsl'), 'utf8'), '<xsl:stylesheet/>');
  assert.equal(statSync(join(folder, 'fr000046.xml')).mode & 0o777, 0o640, 'a log file: not readable by others');
  assert.equal(statSync(folder).mode & 0o777, 0o750);
  assert.deepEqual(logs.list().map((t) => [t.file, t.url, t.statusCode, t.processId]), [
    ['fr000044.xml', 'http://localhost:8080/missing-3', '404', 555],
    ['fr000045.xml', 'http://localhost:8080/missing-4', '404', 555],
    ['fr000046.xml', 'http://localhost:8080/missing-5', '404', 555],
  ]);
});

test('a trace is refused (and reported once) when malformed, too large, or for a site the pool does not serve', async () => {
  const { dir, logs, errors } = setup(`<traceFailedRequestsLogging enabled="true" directory="${'%SystemDrive%'}\\traces" maxLogFileSizeKB="1" />`);
  logs.accept('Other', 9, record(1));
  logs.accept('Shop', 9, Buffer.from('{not json'));
  logs.accept('Shop', 9, record(2, { siteId: 8 }));
  logs.accept('Shop', 9, record(3, { events: [{ opcode: 'X', area: 'General', level: 0, time: 1, data: [['Big', 'x'.repeat(2000), '']] }] }));
  logs.accept('Shop', 9, record(4, { failureReason: 'NOPE' as 'STATUS_CODE' }));
  await logs.flush();
  assert.equal(errors.length, 2, 'once a minute per pool: Other, then Shop');
  assert.ok(errors.every((e) => e.code === 'LSN_TRACE_REJECTED'));
  assert.match(errors[0]!.message, /application pool "Other" serves no application of site 7/);
  assert.match(errors[1]!.message, /not JSON/);
  assert.deepEqual(readdirSync(join(dir)).includes('traces'), false, 'nothing written');
  assert.deepEqual(logs.list(), []);
});
