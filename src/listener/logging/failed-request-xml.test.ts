import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TraceRecordMessage } from '../../ipc/messages.js';
import { needs, tool } from '../../../test/helpers/skip.js';
import { renderTrace, validateTraceRecord } from './failed-request-xml.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 11, 5, 14, 0, 0, 123) + 0.4567;

function record(over: Partial<TraceRecordMessage> = {}): TraceRecordMessage {
  return {
    siteId: 3,
    url: 'http://localhost:8080/missing.htm?a=1&b=<2>',
    verb: 'GET',
    userName: '',
    authenticationType: 'anonymous',
    activityId: '{0A1B2C3D-0000-4000-8000-00000000ABCD}',
    failureReason: 'STATUS_CODE',
    statusCode: '404',
    triggerStatusCode: '404',
    timeTaken: 15,
    events: [
      { opcode: 'GENERAL_REQUEST_START', area: 'General', level: 0, time: T0, data: [['SiteId', '3', ''], ['RequestURL', '/missing.htm?a=1&b=<2>', '']] },
      { opcode: 'NOTIFY_MODULE_START', area: 'RequestNotifications', level: 5, time: T0 + 1, data: [['ModuleName', 'StaticFileModule', ''], ['Notification', '128', 'EXECUTE_REQUEST_HANDLER']] },
      {
        opcode: 'MODULE_SET_RESPONSE_ERROR_STATUS',
        area: 'RequestNotifications',
        level: 3,
        time: T0 + 2,
        data: [['ModuleName', 'StaticFileModule', ''], ['HttpStatus', '404', ''], ['ErrorCode', '2147942402', '0x80070002']],
      },
      { opcode: 'GENERAL_REQUEST_END', area: 'General', level: 0, time: T0 + 3, data: [['HttpStatus', '404', '']] },
    ],
    ...over,
  };
}

const context = { appPoolId: 'Pool "A"', processId: 4321, computer: 'web01', maxBytes: 1024 * 1024 };

test('a trace renders as IIS writes it: stylesheet, failedRequest attributes, one Event per event', () => {
  const xml = renderTrace(record(), context);
  assert.ok(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet type='text/xsl' href='freb.xsl'?>\n<!-- saved from url=(0014)about:internet -->\n<failedRequest `));
  assert.match(xml, /url="http:\/\/localhost:8080\/missing\.htm\?a=1&amp;b=&lt;2&gt;"/);
  assert.match(xml, /siteId="3"/);
  assert.match(xml, /appPoolId="Pool &quot;A&quot;"/, 'the pool name comes from the main process, escaped');
  assert.match(xml, /processId="4321"/);
  assert.match(xml, /failureReason="STATUS_CODE"/);
  assert.match(xml, /statusCode="404"/);
  assert.match(xml, /timeTaken="15"/);
  assert.match(xml, /xmlns:freb="http:\/\/schemas\.microsoft\.com\/win\/2006\/06\/iis\/freb"/);
  assert.equal(xml.match(/<Event xmlns="http:\/\/schemas\.microsoft\.com\/win\/2004\/08\/events\/event">/g)?.length, 4);
  assert.match(xml, /<TimeCreated SystemTime="2026-12-05T14:00:00\.1234567Z"\/>/);
  assert.match(xml, /<Data Name="ContextId">\{0A1B2C3D-0000-4000-8000-00000000ABCD\}<\/Data>/);
  assert.match(xml, /<Level>3<\/Level>[\s\S]*<Keywords>0x100<\/Keywords>/);
  assert.match(xml, /<Opcode>MODULE_SET_RESPONSE_ERROR_STATUS<\/Opcode>\n  <Level>Warning<\/Level>\n  <Keywords>\n   <Keyword>RequestNotifications<\/Keyword>/);
  assert.match(xml, /<freb:Description Data="Notification">EXECUTE_REQUEST_HANDLER<\/freb:Description>/);
  assert.match(xml, /<Computer>web01<\/Computer>/);
  assert.ok(xml.endsWith('</failedRequest>\n'));
});

test('every trace is well-formed XML (xmllint), whatever the URL and data carry', (t) => {
  if (!needs(t, tool('xmllint', 'libxml2-utils'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'wharf-freb-xml-'));
  dirs.push(dir);
  const nasty = 'a\u0000b\u0007c\ud800d]]>e<!--f-->&g;"\'\r\n\t😀';
  const xml = renderTrace(
    record({ url: 'http://h:1/' + nasty, userName: nasty, events: [{ opcode: 'X', area: 'General', level: 0, time: T0, data: [['Weird', nasty, nasty]] }] }),
    context,
  );
  const file = join(dir, 'fr000001.xml');
  writeFileSync(file, xml);
  const r = spawnSync('xmllint', ['--noout', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(xml.includes('😀'), 'characters XML can carry are kept');
  assert.ok(!xml.includes('\u0000'));
});

test('maxLogFileSizeKB: events past the limit are left out and the file stays well-formed', () => {
  const many = Array.from({ length: 200 }, (_, i) => ({ opcode: 'NOTIFY_MODULE_START', area: 'RequestNotifications', level: 5, time: T0 + i, data: [['ModuleName', `M${i}`, ''] as const] }));
  const xml = renderTrace(record({ events: many }), { ...context, maxBytes: 8 * 1024 });
  assert.ok(Buffer.byteLength(xml) <= 8 * 1024);
  const count = xml.match(/<Event /g)?.length ?? 0;
  assert.ok(count > 3 && count < 200, `${count} events fit`);
  assert.ok(xml.endsWith('</failedRequest>\n'));
  assert.equal(renderTrace(record({ events: many }), { ...context, maxBytes: 0 }).match(/<Event /g)?.length, 200, '0: no limit');
});

test('a record from a worker is checked field by field before anything is written', () => {
  const good = JSON.parse(JSON.stringify(record())) as Record<string, unknown>;
  const ok = validateTraceRecord(good);
  assert.equal(typeof ok, 'object');
  assert.deepEqual(ok, record());
  const bad = (change: (r: Record<string, unknown>) => void): string => {
    const r = JSON.parse(JSON.stringify(record())) as Record<string, unknown>;
    change(r);
    const v = validateTraceRecord(r);
    assert.equal(typeof v, 'string', JSON.stringify(r).slice(0, 200));
    return v as string;
  };
  assert.equal(validateTraceRecord(null), 'not an object');
  assert.match(bad((r) => (r.siteId = '3')), /siteId/);
  assert.match(bad((r) => (r.siteId = 0)), /siteId/);
  assert.match(bad((r) => (r.activityId = '<script>')), /activityId/);
  assert.match(bad((r) => (r.failureReason = 'BECAUSE')), /failureReason/);
  assert.match(bad((r) => (r.statusCode = '404"><x')), /statusCode/);
  assert.match(bad((r) => (r.timeTaken = -1)), /timeTaken/);
  assert.match(bad((r) => (r.events = {})), /events/);
  assert.match(bad((r) => ((r.events as { opcode: string }[])[0]!.opcode = 'A B')), /opcode/);
  assert.match(bad((r) => ((r.events as { area: string }[])[0]!.area = 'Elsewhere')), /area/);
  assert.match(bad((r) => ((r.events as { level: number }[])[0]!.level = 9)), /level/);
  assert.match(bad((r) => ((r.events as { data: unknown[] }[])[0]!.data = [['a b', 'x', '']])), /data item/);
  assert.match(bad((r) => ((r.events as { data: unknown[] }[])[0]!.data = [['Name', 5, '']])), /data item/);
});
