import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../errors.js';
import { expandVariables, mapExpandedPath, mapWindowsPath } from './path-map.js';

const opts = { systemDrive: '/srv/wharf', baseDir: '/etc/wharf', variables: { IIS_BIN: '/opt/wharf/bin', Site_Root: 'D:\\sites' } };

describe('expandVariables', () => {
  it('expands %SystemDrive% in any case to C:', () => {
    assert.equal(expandVariables('%SystemDrive%\\inetpub', opts), 'C:\\inetpub');
    assert.equal(expandVariables('%SYSTEMDRIVE%\\x %systemdrive%', opts), 'C:\\x C:');
  });

  it('looks names up case-insensitively in the options, then in the environment', () => {
    assert.equal(expandVariables('%iis_bin%\\custerr', opts), '/opt/wharf/bin\\custerr');
    process.env['WHARF_TEST_VAR'] = '/from/env';
    try {
      assert.equal(expandVariables('%wharf_test_var%/x', opts), '/from/env/x');
      assert.equal(expandVariables('%WHARF_TEST_VAR%', { variables: { wharf_test_var: 'options win' } }), 'options win');
    } finally {
      delete process.env['WHARF_TEST_VAR'];
    }
  });

  it('leaves unknown variables and lone percent signs as written', () => {
    assert.equal(expandVariables('%NO_SUCH_VARIABLE_X%\\a', opts), '%NO_SUCH_VARIABLE_X%\\a');
    assert.equal(expandVariables('100% sure', opts), '100% sure');
  });
});

describe('mapWindowsPath', () => {
  it('maps C: to the system drive folder and other drives under drives/<letter>', () => {
    assert.equal(mapWindowsPath('%SystemDrive%\\inetpub\\wwwroot', opts), '/srv/wharf/inetpub/wwwroot');
    assert.equal(mapWindowsPath('c:/inetpub/logs/', opts), '/srv/wharf/inetpub/logs');
    assert.equal(mapWindowsPath('D:\\Sites\\Shop', opts), '/srv/wharf/drives/d/Sites/Shop');
    assert.equal(mapWindowsPath('%site_root%\\a', opts), '/srv/wharf/drives/d/sites/a');
    assert.equal(mapWindowsPath('C:', opts), '/srv/wharf');
  });

  it('never climbs above a drive root with ..', () => {
    assert.equal(mapWindowsPath('C:\\..\\..\\etc\\passwd', opts), '/srv/wharf/etc/passwd');
    assert.equal(mapWindowsPath('E:\\..\\x', opts), '/srv/wharf/drives/e/x');
  });

  it('keeps absolute Linux paths and resolves relative ones against the config folder', () => {
    assert.equal(mapWindowsPath('/var/www/site/', opts), '/var/www/site');
    assert.equal(mapWindowsPath('wwwroot', opts), '/etc/wharf/wwwroot');
    assert.equal(mapWindowsPath('..\\shared\\www', opts), '/etc/shared/www');
    assert.equal(mapWindowsPath('%IIS_BIN%\\custerr', opts), '/opt/wharf/bin/custerr');
  });

  it('reports UNC paths as CFG_INVALID_VALUE at the given position', () => {
    const at = { file: '/etc/wharf/applicationHost.config', line: 12, column: 40 };
    assert.throws(
      () => mapWindowsPath('\\\\fileserver\\share\\site', opts, at),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.code === 'CFG_INVALID_VALUE' &&
        err.position === at &&
        err.message.includes("UNC path '\\\\fileserver\\share\\site' is not supported on Linux"),
    );
    assert.throws(() => mapExpandedPath('//server/share', opts), { code: 'CFG_INVALID_VALUE' });
  });

  it('mapExpandedPath does not expand variables again', () => {
    assert.equal(mapExpandedPath('C:\\%IIS_BIN%', opts), '/srv/wharf/%IIS_BIN%');
  });
});
