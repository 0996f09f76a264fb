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

  it('reports none of these restricting settings: access sslFlags, authentication, authorization, ipSecurity and dynamicIpSecurity are enforced', () => {
    const w = warned(
      [
        '<authentication><anonymousAuthentication enabled="false" /><digestAuthentication enabled="true" /></authentication>',
        '<authorization><remove users="*" roles="" verbs="" /></authorization>',
        '<ipSecurity allowUnlisted="false" />',
        '<dynamicIpSecurity><denyByRequestRate enabled="true" /></dynamicIpSecurity>',
        '<access sslFlags="Ssl, SslRequireCert" />',
      ].join('\n'),
    );
    assert.deepEqual(w, []);
  });

  it('URL authorization rules are enforced: none is reported', () => {
    assert.deepEqual(warned('<authorization><add accessType="Allow" users="*" verbs="GET" /></authorization>'), []);
    assert.deepEqual(warned('<authorization><clear /><add accessType="Deny" users="?" /></authorization>'), []);
  });

  it('logon types and the anonymous account\'s password have no effect (an info line each)', () => {
    assert.deepEqual(warned('<authentication><anonymousAuthentication userName="web" password="secret" /><basicAuthentication logonMethod="Network" /></authentication>'), [
      '/site/web.config:4:57: system.webServer/security/authentication/anonymousAuthentication: password="secret" has no effect in Wharf: the named account is looked up without logging on (Linux has no logon types)',
      '/site/web.config:4:98: system.webServer/security/authentication/basicAuthentication: logonMethod="Network" has no effect in Wharf: PAM has no logon types: every logon is checked the same way',
    ]);
  });

  it('reports a feature setting without effect as a note-level warning', () => {
    const text = '<configuration><system.webServer><httpRedirect enabled="true" destination="https://x/" /></system.webServer></configuration>';
    const [w] = notEnforcedWarnings(parseConfigFile('/site/web.config', text, { kind: 'web' }));
    assert.equal(w?.kind, 'feature');
    assert.equal(w?.code, 'CFG_NO_EFFECT');
    assert.match(w!.message, /^system\.webServer\/httpRedirect: enabled="true" has no effect in Wharf: no redirect is sent/);
  });
});
