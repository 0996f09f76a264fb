import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compilePattern, expand, parseTemplate, RuleError, type RewriteMap } from './rules.js';
import { normalizePath } from './index.js';

const NO_MAPS = new Map<string, RewriteMap>();
const none = { rule: [] as string[], condition: [] as string[] };

describe('URL Rewrite patterns', () => {
  it('ECMAScript: a regular expression, case-insensitive by default, with groups', () => {
    const m = compilePattern('^article/(\\d+)$', 'ECMAScript', true);
    assert.deepEqual(m('ARTICLE/42'), ['ARTICLE/42', '42']);
    assert.equal(m('article/x'), null);
    assert.equal(compilePattern('^a$', 'ECMAScript', false)('A'), null);
    // Unanchored, as IIS reads it: "/*" (zero or more slashes) matches every URL.
    assert.ok(compilePattern('/*', 'ECMAScript', true)('users/7'));
  });

  it('Wildcard: the whole input, * captured, ? one character', () => {
    const m = compilePattern('org/*/v?', 'Wildcard', true);
    assert.deepEqual(m('org/apache/v1'), ['org/apache/v1', 'apache']);
    assert.equal(m('xorg/apache/v1'), null);
    assert.equal(m('org/apache/v10'), null);
    assert.deepEqual(compilePattern('Artifactory/*', 'Wildcard', true)('artifactory/7.1'), ['artifactory/7.1', '7.1']);
  });

  it('ExactMatch compares the whole string', () => {
    assert.ok(compilePattern('robots.txt', 'ExactMatch', true)('ROBOTS.TXT'));
    assert.equal(compilePattern('robots.txt', 'ExactMatch', false)('ROBOTS.TXT'), null);
  });

  it('an invalid pattern is a RuleError that names it', () => {
    assert.throws(() => compilePattern('(open', 'ECMAScript', true), (e: unknown) => e instanceof RuleError && /"\(open" is not a valid ECMAScript pattern/.test(e.message));
  });
});

describe('URL Rewrite substitutions', () => {
  const vars: Record<string, string> = { HTTPS: 'on', HTTP_HOST: 'Example.com' };
  const variable = (n: string): string => vars[n] ?? '';

  it('expands server variables, back-references and functions', () => {
    const parts = parseTemplate('https://{ToLower:{HTTP_HOST}}/{R:1}?c={C:1}&u={UrlEncode:{R:2}}', NO_MAPS);
    assert.equal(expand(parts, { rule: ['x', 'a', 'b c/d'], condition: ['y', 'z'] }, variable), 'https://example.com/a?c=z&u=b%20c%2Fd');
    assert.equal(expand(parseTemplate('{UrlDecode:a%20b+c}', NO_MAPS), none, variable), 'a b c');
    // An unset variable and a missing group read as ''.
    assert.equal(expand(parseTemplate('[{NOT_SET}{R:5}]', NO_MAPS), none, variable), '[]');
  });

  it('looks up rewrite maps, nested, with their default value', () => {
    const map: RewriteMap = { name: 'MapProtocol', defaultValue: 'http://', ignoreCase: true, entries: new Map([['on', 'https://']]) };
    const maps = new Map([['mapprotocol', map]]);
    const parts = parseTemplate('{MapProtocol:{HTTPS}}www.nuget.org/', maps);
    assert.equal(expand(parts, none, variable), 'https://www.nuget.org/');
    assert.equal(expand(parts, none, () => 'off'), 'http://www.nuget.org/');
  });

  it('refuses an unclosed brace and an unknown map', () => {
    assert.throws(() => parseTemplate('/{R:1', NO_MAPS), /has a "\{" without its "\}"/);
    assert.throws(() => parseTemplate('{Nope:{R:1}}', NO_MAPS), /names no rewrite map or function "Nope"/);
  });
});

describe('rewritten paths', () => {
  it('resolves dot segments and backslashes, and refuses climbing above the root', () => {
    assert.equal(normalizePath('/public/./css/../site.css'), '/public/site.css');
    assert.equal(normalizePath('/a\\b'), '/a/b');
    assert.equal(normalizePath('/a//b/'), '/a/b/');
    assert.equal(normalizePath('/../etc/passwd'), undefined);
    assert.equal(normalizePath('/a\nb'), undefined);
  });
});
