import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigElement } from '../../config/types.js';
import { FakeConfigElement } from '../../../test/helpers/module-harness.js';
import { cgiAllowed, compiledRestriction } from './cgi-restriction.js';
import { commandArguments, MAX_SEARCH_WORDS, parseScriptProcessor, programPath, restrictionKey, searchWords, splitCommandLine } from './command-line.js';

describe('scriptProcessor command lines', () => {
  it('splits like a Windows command line: quotes group and go, other backslashes stay', () => {
    assert.deepEqual(splitCommandLine('C:\\Perl\\bin\\perl.exe "%s" %s'), ['C:\\Perl\\bin\\perl.exe', '%s', '%s']);
    assert.deepEqual(splitCommandLine('"C:\\Program Files\\php\\php-cgi.exe"  -c  "C:\\my php\\php.ini"'), ['C:\\Program Files\\php\\php-cgi.exe', '-c', 'C:\\my php\\php.ini']);
    assert.deepEqual(splitCommandLine('/usr/bin/env  say=\\"hi\\"'), ['/usr/bin/env', 'say="hi"']);
    assert.deepEqual(splitCommandLine('/bin/prog ""'), ['/bin/prog', '']);
    assert.throws(() => splitCommandLine('"C:\\php\\php-cgi.exe'), /unclosed quote/);
    assert.throws(() => splitCommandLine('   '), /names no program/);
    assert.deepEqual(parseScriptProcessor('  /usr/bin/perl "%s" %s '), { program: '/usr/bin/perl', args: ['%s', '%s'] });
  });

  it('reads search words only from a query without "=" (RFC 3875 §4.4)', () => {
    assert.deepEqual(searchWords('one+two%20three+%C3%A9'), ['one', 'two three', 'é']);
    assert.deepEqual(searchWords('a=1+b'), []);
    assert.deepEqual(searchWords(''), []);
    // Anything the rule cannot read whole gives no words at all.
    assert.deepEqual(searchWords('a++b'), []);
    assert.deepEqual(searchWords('bad%E9escape'), []);
    assert.deepEqual(searchWords('nul%00byte'), []);
    assert.deepEqual(searchWords(Array(MAX_SEARCH_WORDS + 1).fill('w').join('+')), []);
    assert.equal(searchWords(Array(MAX_SEARCH_WORDS).fill('w').join('+')).length, MAX_SEARCH_WORDS);
  });

  it('puts the script at the first %s and the search words at the second', () => {
    const perl = parseScriptProcessor('/usr/bin/perl "%s" %s');
    assert.deepEqual(commandArguments(perl, '/srv/www/t.pl', 'x+y'), ['/srv/www/t.pl', 'x', 'y']);
    assert.deepEqual(commandArguments(perl, '/srv/www/t.pl', 'x=1'), ['/srv/www/t.pl']);
    // A script path with spaces or shell characters stays one argument.
    assert.deepEqual(commandArguments(perl, '/srv/my site/a;b.pl', ''), ['/srv/my site/a;b.pl']);
    const inside = parseScriptProcessor('/bin/run --file=%s --words=%s');
    assert.deepEqual(commandArguments(inside, '/s.cgi', 'a+b'), ['--file=/s.cgi', '--words=a b']);
    assert.deepEqual(commandArguments(parseScriptProcessor('/usr/bin/php-cgi'), '/x.php', 'a+b'), []);
    // A file that runs itself gets the search words.
    assert.deepEqual(commandArguments(undefined, '/x.cgi', 'a+b'), ['a', 'b']);
  });

  it('maps the program by the path rule', () => {
    const opts = { systemDrive: '/srv/wharf', baseDir: '/etc/wharf' };
    assert.equal(programPath('C:\\php\\php-cgi.exe', opts), '/srv/wharf/php/php-cgi.exe');
    assert.equal(programPath('D:\\tools\\x.exe', opts), '/srv/wharf/drives/d/tools/x.exe');
    assert.equal(programPath('/usr/bin/perl', opts), '/usr/bin/perl');
    assert.equal(programPath('bin/prog', opts), '/etc/wharf/bin/prog');
    assert.throws(() => programPath('\\\\server\\share\\x.exe', opts), /UNC/);
  });
});

describe('isapiCgiRestriction for CGI programs', () => {
  const source = { file: '/etc/wharf/applicationHost.config', line: 10, column: 5 };
  function section(notListedCgisAllowed: boolean, entries: Array<[string, boolean]>): ConfigElement {
    return new FakeConfigElement('isapiCgiRestriction', {
      attributes: { notListedCgisAllowed, notListedIsapisAllowed: false },
      items: entries.map(([path, allowed]) => ({ attributes: { path, allowed }, source })),
    });
  }
  const key = (text: string): string => {
    const t = parseScriptProcessor(text);
    return restrictionKey(programPath(t.program, { systemDrive: '/srv/wharf', baseDir: '/' }), t.args);
  };

  it('allows a program listed with allowed="true", whatever its quoting or drive form', () => {
    const r = compiledRestriction(section(false, [['C:\\Perl\\bin\\perl.exe "%s" %s', true], ['/usr/bin/php-cgi', true]]), '/srv/wharf');
    assert.equal(cgiAllowed(r, key('"C:\\Perl\\bin\\perl.exe" "%s" %s')), true);
    assert.equal(cgiAllowed(r, key('/srv/wharf/Perl/bin/perl.exe %s %s')), true);
    assert.equal(cgiAllowed(r, key('/usr/bin/php-cgi')), true);
    // Other arguments make another entry; Linux file names are case-sensitive.
    assert.equal(cgiAllowed(r, key('C:\\Perl\\bin\\perl.exe "%s"')), false);
    assert.equal(cgiAllowed(r, key('/usr/bin/PHP-cgi')), false);
    assert.equal(cgiAllowed(r, '/srv/www/unlisted.cgi'), false);
  });

  it('notListedCgisAllowed lets unlisted programs run, not those listed with allowed="false"', () => {
    const r = compiledRestriction(section(true, [['/srv/www/denied.cgi', false]]), '/srv/wharf');
    assert.equal(cgiAllowed(r, '/srv/www/other.cgi'), true);
    assert.equal(cgiAllowed(r, '/srv/www/denied.cgi'), false);
  });

  it('an entry that names no usable program allows nothing', () => {
    const r = compiledRestriction(section(false, [['"C:\\unclosed', true], ['\\\\server\\share\\x.exe', true]]), '/srv/wharf');
    assert.equal(r.entries.size, 0);
  });
});
