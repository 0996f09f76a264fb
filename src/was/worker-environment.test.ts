import { test } from 'node:test';
import assert from 'node:assert/strict';
import { referencedEnvironment, workerBaseEnvironment } from './worker-environment.js';

test('the base environment is the allow-list, the locale family and OpenTelemetry\'s OTEL_*; everything else stays behind', () => {
  const env = {
    PATH: '/usr/bin:/bin',
    LANG: 'de_DE.UTF-8',
    LC_TIME: 'C',
    LC_ALL: 'C.UTF-8',
    TZ: 'Europe/Berlin',
    HOME: '/root',
    USER: 'root',
    AWS_SECRET_ACCESS_KEY: 'x',
    GITHUB_TOKEN: 'y',
    SSH_AUTH_SOCK: '/tmp/ssh',
    NOTIFY_SOCKET: '/run/systemd/notify',
    NODE_OPTIONS: '--inspect',
    LCX: 'no',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_TRACES_SAMPLER: 'always_off',
    OTELX: 'no',
    WHARF_W3SVC_PARAMETERS: 'SSIEnableCmdDirective=1',
    WHARF_HTTP_PARAMETERS: 'MaxFieldLength=100',
  };
  assert.deepEqual(workerBaseEnvironment(env), {
    PATH: '/usr/bin:/bin',
    LANG: 'de_DE.UTF-8',
    LC_TIME: 'C',
    LC_ALL: 'C.UTF-8',
    TZ: 'Europe/Berlin',
    HOME: '/root',
    USER: 'root',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    OTEL_TRACES_SAMPLER: 'always_off',
    WHARF_W3SVC_PARAMETERS: 'SSIEnableCmdDirective=1',
  });
  assert.match(workerBaseEnvironment({})['PATH']!, /\/usr\/bin/, 'a PATH even when Wharf had none');
});

test('only the %VAR%s applicationHost.config uses travel to workers, configured variables first', () => {
  const text = '<virtualDirectory physicalPath="%Sites%\\shop" /><x a="50%" b="%HOME%" /><y c="%IIS_BIN%\\x" d="%NOPE%" e="%SystemDrive%" />';
  const env = { SITES: '/srv/sites', HOME: '/root', SECRET: 's', IIS_BIN: '/env/iis', SystemDrive: 'D:' };
  assert.deepEqual(referencedEnvironment(text, { IIS_BIN: '/opt/wharf/assets' }, env), { SITES: '/srv/sites', HOME: '/root' });
});
