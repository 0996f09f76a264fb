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

/** A record as an application writes it: header, content, padding. */
function record(type: number, id: number, content: Buffer, padding = 0): Buffer {
  const h = Buffer.from([1, type, id >> 8, id & 0xff, content.length >> 8, content.length & 0xff, padding, 0]);
  return Buffer.concat([h, content, Buffer.alloc(padding)]);
}

/** Each type's content joined, in arrival order of types (STDOUT pieces may come in several calls). */
function joined(records: { type: number; id: number; content: Buffer }[]): string[] {
  const out: string[] = [];
  for (const r of records) {
    const last = out[out.length - 1];
    const key = `${r.type}/${r.id}:`;
    if (last !== undefined && last.startsWith(key)) out[out.length - 1] = last + r.content.toString('latin1');
    else out.push(key + r.content.toString('latin1'));
  }
  return out;
}

test('the parser honours padding and reports a wrong version once', () => {
  const rec = Buffer.from([1, RecordType.Stdout, 0, 1, 0, 2, 3, 0, 0x68, 0x69, 0, 0, 0]);
  assert.deepEqual(parseAll(Buffer.concat([rec, rec])).map((r) => r.content.toString()), ['hi', 'hi']);
  assert.deepEqual(joined(parseAll(Buffer.concat([rec, rec]), 3)), [`${RecordType.Stdout}/1:hihi`]);
  const reasons: string[] = [];
  const p = new RecordParser({ record: () => assert.fail('no record expected'), malformed: (r) => reasons.push(r) });
  p.push(Buffer.from([2, 6, 0, 1, 0, 0, 0, 0]));
  p.push(rec);
  assert.deepEqual(reasons, ['a record with version 2 (FastCGI 1 expected)']);
});

test('a response cut anywhere: STDOUT and STDERR pieces join to what was sent, END_REQUEST comes whole', () => {
  // What php-cgi writes for a 100 KiB page: its head, 64 KiB and the rest as STDOUT records
  // (padded), a warning on STDERR, the empty STDOUT that ends the stream, then END_REQUEST.
  const body = Buffer.alloc(100 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 26);
  const head = Buffer.from('Content-type: text/html; charset=UTF-8\r\n\r\n');
  const end = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]);
  const stream = Buffer.concat([
    record(RecordType.Stdout, 1, head, 2),
    record(RecordType.Stdout, 1, body.subarray(0, 65528), 0),
    record(RecordType.Stderr, 1, Buffer.from('PHP Warning: x'), 2),
    record(RecordType.Stdout, 1, body.subarray(65528), 5),
    record(RecordType.Stdout, 1, Buffer.alloc(0)),
    record(RecordType.EndRequest, 1, end),
  ]);
  const expected = [
    `${RecordType.Stdout}/1:${head.toString('latin1')}${body.subarray(0, 65528).toString('latin1')}`,
    `${RecordType.Stderr}/1:PHP Warning: x`,
    `${RecordType.Stdout}/1:${body.subarray(65528).toString('latin1')}`,
    `${RecordType.EndRequest}/1:${end.toString('latin1')}`,
  ];
  // Cut into two pieces at every offset near a record boundary, and into reads of many sizes.
  const cuts: number[] = [];
  let at = 0;
  for (const r of [head.length + 2, 65528, 14 + 2, body.length - 65528 + 5, 0, 8]) {
    for (let d = 0; d <= 9; d++) cuts.push(at + d, at + 8 + d);
    at += 8 + r;
  }
  for (const cut of cuts) {
    const out: { type: number; id: number; content: Buffer }[] = [];
    const p = new RecordParser({ record: (type, id, content) => out.push({ type, id, content: Buffer.from(content) }), malformed: (r) => assert.fail(r) });
    p.push(stream.subarray(0, cut));
    p.push(stream.subarray(cut));
    assert.deepEqual(joined(out), expected, `cut at ${cut}`);
    assert.ok(out.every((r) => r.type !== RecordType.EndRequest || r.content.length === 8), 'END_REQUEST whole');
  }
  for (const size of [1, 7, 8, 9, 1000, 65536]) assert.deepEqual(joined(parseAll(stream, size)), expected, `reads of ${size}`);
});

test('a STDOUT record split across reads is handed on as views of the reads, not joined', () => {
  const body = Buffer.alloc(70000, 0x78);
  const stream = record(RecordType.Stdout, 3, body.subarray(0, 65000), 0);
  const reads = [stream.subarray(0, 40000), stream.subarray(40000)];
  const seen: Buffer[] = [];
  const p = new RecordParser({ record: (_type, _id, content) => seen.push(content), malformed: (r) => assert.fail(r) });
  for (const r of reads) p.push(r);
  assert.equal(seen.length, 2);
  assert.equal(seen[0]!.buffer, reads[0]!.buffer, 'the first piece is a view of the first read');
  assert.equal(seen[1]!.buffer, reads[1]!.buffer, 'the rest is a view of the second read');
  assert.equal(seen[0]!.length + seen[1]!.length, 65000);
});

test('pairs: UTF-8 names and values become their bytes, latin1 ones stay one byte per character, lengths from 127 to 4 bytes', () => {
  const pairs = ['PATH_INFO', '/ünïcødé/€', 'X', 'a'.repeat(127), 'Y', 'b'.repeat(128), 'HTTP_X', '\u00ff\u00e9'];
  const enc = encodePairs(pairs, 6);
  const decoded = decodePairs(enc);
  assert.equal(Buffer.from(decoded.get('PATH_INFO')!, 'latin1').toString('utf8'), '/ünïcødé/€');
  assert.equal(decoded.get('X')!.length, 127);
  assert.equal(decoded.get('Y')!.length, 128);
  assert.deepEqual([...Buffer.from(decoded.get('HTTP_X')!, 'latin1')], [0xff, 0xe9]);
  // 1+1+9+16 | 1+1+1+127 | 1+4+1+128 | 1+1+6+2
  assert.equal(enc.length, 27 + 130 + 134 + 10);
  assert.deepEqual(encodePairs(pairs, 6), Buffer.concat([encodePairs(pairs.slice(0, 6)), encodePairs(pairs.slice(6), 0)]), 'the latin1 part starts where it is told');
});
