import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePairs, encodePairs, encodeRequestStart, encodeStdin, RecordParser, RecordType } from './records.js';

function parseAll(buf: Buffer, chunk = buf.length): { type: number; id: number; content: Buffer }[] {
  const out: { type: number; id: number; content: Buffer }[] = [];
  const p = new RecordParser({ record: (type, id, content) => out.push({ type, id, content: Buffer.from(content) }), malformed: (r) => assert.fail(r) });
  for (let i = 0; i < buf.length; i += chunk) p.push(buf.subarray(i, i + chunk));
  return out;
}

test('name-value pairs round-trip, with 1- and 4-byte lengths', () => {
  const long = 'v'.repeat(300);
  const enc = encodePairs(['SCRIPT_NAME', '/index.php', 'LONG', long, 'EMPTY', '']);
  assert.deepEqual([...decodePairs(enc)], [['SCRIPT_NAME', '/index.php'], ['LONG', long], ['EMPTY', '']]);
  // 1 + 1 + 11 + 10 | 1 + 4 + 4 + 300 | 1 + 1 + 5 + 0
  assert.equal(enc.length, 23 + 309 + 7);
});

test('paths are UTF-8, header values keep their bytes (latin1)', () => {
  const enc = encodePairs(['SCRIPT_NAME', '/café.php', 'HTTP_X', 'caf\u00e9'], 2);
  const pairs = decodePairs(enc);
  assert.equal(Buffer.from(pairs.get('SCRIPT_NAME')!, 'latin1').toString('utf8'), '/café.php');
  assert.equal(pairs.get('HTTP_X'), 'caf\u00e9');
});

test('a request start is BEGIN_REQUEST (responder, keep-conn), PARAMS split at 65535 bytes, empty PARAMS, empty STDIN', () => {
  const params = Buffer.alloc(70000, 0x41);
  const records = parseAll(encodeRequestStart(1, true, params, true), 1000);
  assert.deepEqual(records.map((r) => [r.type, r.id, r.content.length]), [
    [RecordType.BeginRequest, 1, 8],
    [RecordType.Params, 1, 65535],
    [RecordType.Params, 1, 70000 - 65535],
    [RecordType.Params, 1, 0],
    [RecordType.Stdin, 1, 0],
  ]);
  assert.deepEqual([...records[0]!.content], [0, 1, 1, 0, 0, 0, 0, 0]);
});

test('STDIN records split a large body; an empty one ends it', () => {
  const body = Buffer.alloc(140000, 1);
  const parts = Buffer.concat(encodeStdin(7, body));
  const records = parseAll(parts, 4096);
  assert.deepEqual(records.map((r) => r.content.length), [65535, 65535, 140000 - 131070]);
  assert.ok(records.every((r) => r.type === RecordType.Stdin && r.id === 7));
  assert.equal(encodeStdin(7, Buffer.alloc(0))[0]!.length, 8);
});

test('the parser honours padding and reports a wrong version once', () => {
  const rec = Buffer.from([1, RecordType.Stdout, 0, 1, 0, 2, 3, 0, 0x68, 0x69, 0, 0, 0]);
  assert.deepEqual(parseAll(Buffer.concat([rec, rec]), 3).map((r) => r.content.toString()), ['hi', 'hi']);
  const reasons: string[] = [];
  const p = new RecordParser({ record: () => assert.fail('no record expected'), malformed: (r) => reasons.push(r) });
  p.push(Buffer.from([2, 6, 0, 1, 0, 0, 0, 0]));
  p.push(rec);
  assert.deepEqual(reasons, ['a record with version 2 (FastCGI 1 expected)']);
});
