import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, HRESULT } from '../errors.js';
import { attributeOf, decodeConfigBytes, parseXml } from './xml-document.js';

function expectXmlError(text: string): ConfigError {
  try {
    parseXml('/site/web.config', text);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err;
  }
  assert.fail('expected CFG_XML');
}

describe('parseXml', () => {
  it('builds the element tree with 1-based positions of elements and attribute names', () => {
    const doc = parseXml(
      '/site/web.config',
      '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <!-- ignored -->\n  <system.webServer>\n    <directoryBrowse   enabled="true" showFlags="Date, Size" />\n  </system.webServer>\n</configuration>\n',
    );
    assert.equal(doc.file, '/site/web.config');
    assert.equal(doc.root.name, 'configuration');
    assert.deepEqual([doc.root.line, doc.root.column], [2, 1]);
    assert.equal(doc.root.children.length, 1, 'comments are not elements');
    const ws = doc.root.children[0]!;
    assert.deepEqual([ws.name, ws.line, ws.column], ['system.webServer', 4, 3]);
    const db = ws.children[0]!;
    assert.deepEqual([db.name, db.line, db.column], ['directoryBrowse', 5, 5]);
    assert.deepEqual(
      db.attributes.map((a) => [a.name, a.value, a.line, a.column]),
      [
        ['enabled', 'true', 5, 24],
        ['showFlags', 'Date, Size', 5, 39],
      ],
    );
    assert.equal(attributeOf(db, 'showFlags')?.value, 'Date, Size');
    assert.equal(attributeOf(db, 'ShowFlags'), undefined, 'attribute names are case-sensitive');
  });

  it('accepts a UTF-8 byte order mark and CRLF line ends', () => {
    const doc = parseXml('/w.config', '\uFEFF<?xml version="1.0"?>\r\n<configuration>\r\n  <a x="1&amp;2"/>\r\n</configuration>');
    const a = doc.root.children[0]!;
    assert.deepEqual([a.line, a.column], [3, 3]);
    assert.equal(a.attributes[0]!.value, '1&2');
    assert.deepEqual([a.attributes[0]!.line, a.attributes[0]!.column], [3, 6]);
  });

  it('finds attributes of tags that span several lines', () => {
    const doc = parseXml('/w.config', '<configuration>\n<add name="x"\n     type="y" /></configuration>');
    const add = doc.root.children[0]!;
    assert.deepEqual(
      add.attributes.map((a) => [a.name, a.line, a.column]),
      [
        ['name', 2, 6],
        ['type', 3, 6],
      ],
    );
  });

  it('reports malformed XML as CFG_XML with file, line and column', () => {
    const err = expectXmlError('<configuration>\n  <system.webServer>\n  </system.webserver>\n</configuration>');
    assert.equal(err.code, 'CFG_XML');
    assert.equal(err.hresult, HRESULT.invalidData);
    assert.equal(err.position?.file, '/site/web.config');
    assert.equal(err.position?.line, 3);
    assert.ok(err.position!.column > 1);
    assert.match(err.message, /^Configuration file is not well-formed XML: /);
    assert.doesNotMatch(err.message, /\/site\/web\.config:/, 'the position is not repeated in the message');
  });

  it('rejects unclosed documents, empty documents and "--" inside comments', () => {
    assert.equal(expectXmlError('<configuration>').code, 'CFG_XML');
    assert.equal(expectXmlError('').code, 'CFG_XML');
    const comment = expectXmlError('<configuration>\n<!-- start with --config -->\n</configuration>');
    assert.equal(comment.position?.line, 2);
  });
});

describe('decodeConfigBytes', () => {
  it('decodes UTF-8 (with or without BOM) and UTF-16 by byte order mark', () => {
    assert.equal(decodeConfigBytes(Buffer.from('<a/>', 'utf8')), '<a/>');
    assert.equal(decodeConfigBytes(Buffer.from('\uFEFF<é/>', 'utf8')), '<é/>', 'the BOM is dropped');
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<é/>', 'utf16le')]);
    assert.equal(decodeConfigBytes(le), '<é/>');
    const be = Buffer.from(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('<a/>', 'utf16le').swap16()]));
    assert.equal(decodeConfigBytes(be), '<a/>');
  });
});
