import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigFile } from './config-file.js';
import { describeWarning, notEnforcedWarnings } from './config-warnings.js';

/** The warnings of one web.config whose <system.webServer><security> holds `security`. */
function warned(security: string): string[] {
  const text = `<configuration>\n<system.webServer>\n<security>\n${security}\n</security>\n</system.webServer>\n</configuration>\n`;
  return notEnforcedWarnings(parseConfigFile('/site/web.config', text, { kind: 'web' })).map(describeWarning);
}

describe('settings read but not enforced', () => {
  it('says nothing about IIS defaults: anonymous on, other schemes off, the allow-all rule, an open ipSecurity', () => {
    assert.deepEqual(
      warned(
        '<authentication><anonymousAuthentication enabled="true" userName="" /><basicAuthentication enabled="false" />' +
          '<windowsAuthentication enabled="false"><providers><add value="Negotiate" /></providers></windowsAuthentication></authentication>' +
          '<authorization><clear /><add accessType="Allow" users="*" /></authorization>' +
          '<ipSecurity allowUnlisted="true" denyAction="NotFound" /><dynamicIpSecurity><denyByRequestRate enabled="false" maxRequests="5" /></dynamicIpSecurity>' +
          '<access sslFlags="None" />',
      ),
      [],
    );
  });

  it('names each restricting setting at its line and column (access sslFlags, ipSecurity and dynamicIpSecurity are enforced: not reported)', () => {
    const w = warned(
      [
        '<authentication><anonymousAuthentication enabled="false" /><digestAuthentication enabled="true" /></authentication>',
        '<authorization><remove users="*" roles="" verbs="" /></authorization>',
        '<ipSecurity allowUnlisted="false" />',
        '<dynamicIpSecurity><denyByRequestRate enabled="true" /></dynamicIpSecurity>',
        '<access sslFlags="Ssl, SslRequireCert" />',
      ].join('\n'),
    );
    assert.deepEqual(w, [
      '/site/web.config:4:42: SECURITY: system.webServer/security/authentication/anonymousAuthentication: enabled="false" is not enforced: IIS would refuse anonymous requests (401.2 unless another scheme authenticates them); Wharf serves every request as anonymous',
      '/site/web.config:4:82: SECURITY: system.webServer/security/authentication/digestAuthentication: enabled="true" is not enforced: Wharf does not authenticate users yet: no 401 challenge is sent and every request is served as anonymous',
      '/site/web.config:5:16: SECURITY: system.webServer/security/authorization: <remove users="*" roles="" verbs=""/> (removing the default entry) is not enforced: Wharf does not apply URL authorization rules yet: every request is allowed',
    ]);
  });

  it('an allow rule limited to some users, roles or verbs restricts, and is reported', () => {
    assert.equal(warned('<authorization><add accessType="Allow" users="*" verbs="GET" /></authorization>').length, 1);
    assert.equal(warned('<authorization><add accessType="Allow" roles="admins" /></authorization>').length, 1);
    // A <clear/> followed by entries is reported through those entries, not twice.
    assert.equal(warned('<authorization><clear /><add accessType="Deny" users="?" /></authorization>').length, 1);
    assert.equal(warned('<authorization><clear /></authorization>').length, 1);
  });

  it('reports a feature setting without effect as a note-level warning', () => {
    const text = '<configuration><system.webServer><httpRedirect enabled="true" destination="https://x/" /></system.webServer></configuration>';
    const [w] = notEnforcedWarnings(parseConfigFile('/site/web.config', text, { kind: 'web' }));
    assert.equal(w?.kind, 'feature');
    assert.equal(w?.code, 'CFG_NO_EFFECT');
    assert.match(w!.message, /^system\.webServer\/httpRedirect: enabled="true" has no effect in Wharf: no redirect is sent/);
  });
});
