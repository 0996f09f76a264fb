import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DIRECTIVE_BYTES, parseParameters, parseSsi, type SsiSegment } from './ssi-parser.js';

/** Segments with text ranges turned into their text, for readable assertions. */
function parse(text: string): Array<string | Exclude<SsiSegment, { kind: 'text' }>> {
  const source = Buffer.from(text, 'utf8');
  return [...parseSsi(source)].map((s) => (s.kind === 'text' ? source.toString('utf8', s.start, s.end) : s));
}

test('text and directives in order; names and tags in any case, blanks around = and before -->', () => {
  assert.deepEqual(parse('a<!--#include file="x.inc"-->b<!-- #CONFIG TIMEFMT = "%m/%d/%y" -->c'), [
    'a',
    { kind: 'directive', name: 'include', parameters: [{ name: 'file', value: 'x.inc' }] },
    'b',
    { kind: 'directive', name: 'config', parameters: [{ name: 'timefmt', value: '%m/%d/%y' }] },
    'c',
  ]);
});

test('values: double quotes, single quotes, a bare word; several tags; no tag at all', () => {
  assert.deepEqual(parse(`<!--#echo var='A "B"' var=C var="-->" -->`), [
    { kind: 'directive', name: 'echo', parameters: [{ name: 'var', value: 'A "B"' }, { name: 'var', value: 'C' }, { name: 'var', value: '-->' }] },
  ]);
  assert.deepEqual(parse('<!--#include-->'), [{ kind: 'directive', name: 'include', parameters: [] }]);
});

test('ordinary comments stay text: no #, a blank before an unknown name, or a name not followed by a blank', () => {
  const page = '<!-- plain --><!-- #region x --><!-- #includes --><!--#--><!--#1-->';
  assert.deepEqual(parse(page), [page]);
});

test('an unknown or misspelt directive right after <!-- is an error in place', () => {
  assert.deepEqual(parse('x<!--#inlcude file="a"-->y'), ['x', { kind: 'malformed', reason: 'unknown directive #inlcude' }, 'y']);
  assert.deepEqual(parse('<!--#include"a"-->'), [{ kind: 'malformed', reason: '#include: a blank must follow the directive name' }]);
});

test('broken tags: no value, no closing quote, junk', () => {
  assert.deepEqual(parse('<!--#include file-->'), [{ kind: 'malformed', reason: '#include: the tag \'file\' has no value (expected file="…")' }]);
  assert.deepEqual(parse('<!--#echo var="x -->after'), [{ kind: 'malformed', reason: 'the directive #echo is not closed with --> (or a quote in it is left open)' }, 'after']);
  assert.deepEqual(parseParameters(' =x'), "unexpected '=' where a tag name should be");
  assert.deepEqual(parseParameters('a= '), "the tag 'a' has no value");
});

test('an unterminated directive eats the rest; one longer than the bound is an error up to its -->', () => {
  assert.deepEqual(parse('a<!--#echo var="x"'), ['a', { kind: 'malformed', reason: 'the directive #echo is not closed with --> (or a quote in it is left open)' }]);
  const long = `<!--#echo var="${'x'.repeat(MAX_DIRECTIVE_BYTES)}"-->tail`;
  assert.deepEqual(parse(long), [{ kind: 'malformed', reason: `the directive #echo is longer than ${MAX_DIRECTIVE_BYTES} bytes` }, 'tail']);
});

test('text keeps its bytes whatever the encoding; values are read as UTF-8', () => {
  const source = Buffer.concat([Buffer.from([0xe9, 0xff]), Buffer.from('<!--#echo var="é"-->'), Buffer.from([0x80])]);
  const segs = [...parseSsi(source)];
  assert.deepEqual(segs[0], { kind: 'text', start: 0, end: 2 });
  assert.deepEqual(segs[1], { kind: 'directive', name: 'echo', parameters: [{ name: 'var', value: 'é' }] });
  assert.deepEqual(segs[2], { kind: 'text', start: source.length - 1, end: source.length });
});

test('the generator stops when the caller does (a million directives cost what was pulled)', () => {
  const source = Buffer.from('<!--#echo var="x"-->'.repeat(1_000_000));
  const it = parseSsi(source);
  let n = 0;
  for (const s of it) {
    assert.equal(s.kind, 'directive');
    if (++n === 3) break;
  }
  assert.equal(n, 3);
});
