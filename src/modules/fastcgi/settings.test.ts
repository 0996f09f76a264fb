import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitWords } from '../cgi/command-line.js';
import { parseAddress, splitScriptProcessor } from './settings.js';

test('scriptProcessor halves: fullPath|arguments, quotes around the path', () => {
  assert.deepEqual(splitScriptProcessor('C:\\PHP\\php-cgi.exe|-d host=x'), { fullPath: 'C:\\PHP\\php-cgi.exe', arguments: '-d host=x' });
  assert.deepEqual(splitScriptProcessor('"/usr/bin/php-cgi"'), { fullPath: '/usr/bin/php-cgi', arguments: '' });
});

test('arguments split like a command line', () => {
  assert.deepEqual(splitWords('-d "error_log=/var/log/php errors.log"  -c /etc/php.ini'), ['-d', 'error_log=/var/log/php errors.log', '-c', '/etc/php.ini']);
  assert.deepEqual(splitWords('""'), ['']);
  assert.deepEqual(splitWords(''), []);
  assert.throws(() => splitWords('-d "x'), /unclosed quote/);
});

test('FastCGI server addresses', () => {
  assert.deepEqual(parseAddress('tcp:127.0.0.1:9000'), { kind: 'tcp', host: '127.0.0.1', port: 9000 });
  assert.deepEqual(parseAddress('tcp:[::1]:9000'), { kind: 'tcp', host: '::1', port: 9000 });
  assert.deepEqual(parseAddress('unix:/run/php/php8.2-fpm.sock'), { kind: 'unix', path: '/run/php/php8.2-fpm.sock' });
  assert.equal(parseAddress('unix:relative.sock'), undefined);
  assert.equal(parseAddress('tcp:host:70000'), undefined);
  assert.equal(parseAddress('/usr/bin/php-cgi'), undefined);
});
