import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsError } from '../errors.js';
import { entryFromAddArguments, formatShow, IIS_APPID, parseHostnamePort, parseIpPort, SslBindingTable } from './ssl-bindings.js';

const HASH = 'DB8983A6B3127150C03D61ABA45B7828F3A14E4D';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TlsError, String(err));
    return err.code;
  }
  assert.fail('no error');
}

test('ipport: IPv4, the wildcards 0.0.0.0 and [::], IPv6 in brackets (canonical form); anything else is Error 87', () => {
  assert.deepEqual(parseIpPort('0.0.0.0:443'), { host: '0.0.0.0', port: 443, key: '0.0.0.0:443' });
  assert.deepEqual(parseIpPort('[::]:443'), { host: '::', port: 443, key: '[::]:443' });
  assert.deepEqual(parseIpPort('[FE80:0:0::1]:8443'), { host: 'fe80::1', port: 8443, key: '[fe80::1]:8443' });
  for (const bad of ['0.0.0.0', '::1:443', '1.2.3.256:443', '1.2.3.4:0', '1.2.3.4:70000', 'example.com:443']) {
    assert.equal(code(() => parseIpPort(bad)), 'TLS_SSLCERT_PARAMETER', bad);
  }
});

test('hostnameport: a host name (lower-cased) and port', () => {
  assert.deepEqual(parseHostnamePort('WWW.Example.com:443'), { host: 'www.example.com', port: 443, key: 'www.example.com:443' });
  assert.equal(code(() => parseHostnamePort('www.example.com')), 'TLS_SSLCERT_PARAMETER');
  assert.equal(code(() => parseHostnamePort('a/b:443')), 'TLS_SSLCERT_PARAMETER');
});

test('add parameters as netsh takes them: tags in any case, appid defaults to IIS\'s, certstorename required for hostnameport', () => {
  const e = entryFromAddArguments(['IPPORT=0.0.0.0:443', `certhash=${HASH.toLowerCase()}`]);
  assert.equal(e.kind, 'ipport');
  assert.equal(e.certhash, HASH);
  assert.equal(e.certstorename, 'My');
  assert.equal(e.certstorenameGiven, false);
  assert.equal(e.appid, IIS_APPID);
  const h = entryFromAddArguments(['hostnameport=www.example.com:443', `certhash=${HASH}`, 'certstorename=MY', 'appid={00112233-4455-6677-8899-AABBCCDDEEFF}', 'clientcertnegotiation=enable', 'disablehttp2=enable']);
  assert.equal(h.certstorename, 'My');
  assert.equal(h.appid, '{00112233-4455-6677-8899-aabbccddeeff}');
  assert.deepEqual(h.options, { clientcertnegotiation: 'enable', disablehttp2: 'enable' });
  for (const bad of [
    ['hostnameport=www.example.com:443', `certhash=${HASH}`], // no certstorename
    ['ipport=0.0.0.0:443'], // no certhash
    ['ipport=0.0.0.0:443', 'certhash=1234'],
    ['ipport=0.0.0.0:443', 'hostnameport=a:443', `certhash=${HASH}`],
    ['ipport=0.0.0.0:443', `certhash=${HASH}`, 'bogus=1'],
    ['ipport=0.0.0.0:443', `certhash=${HASH}`, 'disablehttp2=yes'],
    ['ipport=0.0.0.0:443', `certhash=${HASH}`, 'appid=nope'],
    ['ccs=443', `certhash=${HASH}`],
    ['0.0.0.0:443'],
  ]) {
    assert.equal(code(() => entryFromAddArguments(bad)), 'TLS_SSLCERT_PARAMETER', bad.join(' '));
  }
});

test('show prints netsh\'s layout: header, labels padded to 28 then " : ", lower-case hash, defaults for what Linux does not use', () => {
  const e = entryFromAddArguments(['ipport=0.0.0.0:443', `certhash=${HASH}`]);
  const h = entryFromAddArguments(['hostnameport=www.example.com:443', `certhash=${HASH}`, 'certstorename=My', 'disablelegacytls=enable', 'clientcertnegotiation=enable']);
  const text = formatShow([e, h]);
  const expected = [
    '',
    'SSL Certificate bindings:',
    '-------------------------',
    '',
    '    IP:port                      : 0.0.0.0:443',
    '    Certificate Hash             : db8983a6b3127150c03d61aba45b7828f3a14e4d',
    '    Application ID               : {4dc3e181-e14b-4a21-b022-59fc669b0914}',
    '    Certificate Store Name       : (null)',
    '    Verify Client Certificate Revocation : Enabled',
    '    Verify Revocation Using Cached Client Certificate Only : Disabled',
    '    Usage Check                  : Enabled',
    '    Revocation Freshness Time    : 0',
    '    URL Retrieval Timeout        : 0',
    '    Ctl Identifier               : (null)',
    '    Ctl Store Name               : (null)',
    '    DS Mapper Usage              : Disabled',
    '    Negotiate Client Certificate : Disabled',
    '    Reject Connections           : Disabled',
    '    Disable HTTP2                : Not Set',
    '    Disable QUIC                 : Not Set',
    '    Disable TLS1.2               : Not Set',
    '    Disable TLS1.3               : Not Set',
    '    Disable OCSP Stapling        : Not Set',
    '    Enable Token Binding         : Not Set',
    '    Log Extended Events          : Not Set',
    '    Disable Legacy TLS Versions  : Not Set',
    '    Enable Session Ticket        : Not Set',
    '',
    '    Hostname:port                : www.example.com:443',
  ];
  assert.deepEqual(text.split('\n').slice(0, expected.length), expected);
  assert.match(text, /\n {4}Hostname:port[^\n]*\n(?:[^\n]+\n)*? {4}Certificate Store Name {7}: My\n/);
  assert.match(text, /Negotiate Client Certificate : Enabled\n(?:.*\n)*    Disable Legacy TLS Versions  : Set\n/);
});

test('the table file: add, duplicate (Error 183), delete, missing (Error 2), written atomically with mode 0644', async () => {
  const sd = mkdtempSync(join(tmpdir(), 'wharf-ssltable-'));
  try {
    const table = new SslBindingTable(sd);
    assert.deepEqual(table.read(), []);
    const e = entryFromAddArguments(['ipport=0.0.0.0:443', `certhash=${HASH}`]);
    await table.add(e);
    await assert.rejects(table.add(e), (err: TlsError) => err.code === 'TLS_SSLCERT_EXISTS');
    await table.add(entryFromAddArguments(['ipport=[::]:443', `certhash=${HASH}`]));
    assert.deepEqual(table.read().map((x) => x.key), ['0.0.0.0:443', '[::]:443']);
    assert.equal(statSync(table.file).mode & 0o777, 0o644);
    await table.delete('ipport', '0.0.0.0:443');
    await assert.rejects(table.delete('ipport', '0.0.0.0:443'), (err: TlsError) => err.code === 'TLS_SSLCERT_NOT_FOUND');
    assert.deepEqual(table.read().map((x) => x.key), ['[::]:443']);
    // Concurrent edits (two wharf commands at once) both land: the lock serialises them.
    await Promise.all([1, 2, 3, 4].map((i) => table.add(entryFromAddArguments([`ipport=10.0.0.${i}:443`, `certhash=${HASH}`]))));
    assert.equal(table.read().length, 5);
  } finally {
    rmSync(sd, { recursive: true, force: true });
  }
});

test('a damaged table file is TLS_TABLE_INVALID, naming the file', () => {
  const sd = mkdtempSync(join(tmpdir(), 'wharf-ssltable-'));
  try {
    const table = new SslBindingTable(sd);
    mkdirSync(join(sd, 'wharf', 'http'), { recursive: true });
    writeFileSync(table.file, '{"version": 1, "entries": [');
    assert.throws(() => table.read(), (err: TlsError) => err.code === 'TLS_TABLE_INVALID' && err.message.includes(table.file));
    writeFileSync(table.file, '{"version": 1, "entries": [{"kind": "ipport"}]}');
    assert.throws(() => table.read(), (err: TlsError) => err.code === 'TLS_TABLE_INVALID' && /entry 1/.test(err.message));
  } finally {
    rmSync(sd, { recursive: true, force: true });
  }
});
