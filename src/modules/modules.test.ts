import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_MODULES } from './index.js';
import { statusText } from './sub-status.js';

test('built-in modules carry IIS names, once each, and hook what IIS hooks', () => {
  const names = BUILTIN_MODULES.map((m) => m.name);
  assert.deepEqual(names, [
    'HttpLoggingModule',
    'DynamicCompressionModule',
    'StaticCompressionModule',
    'DefaultDocumentModule',
    'DirectoryListingModule',
    'ProtocolSupportModule',
    'HttpRedirectionModule',
    'ServerSideIncludeModule',
    'StaticFileModule',
    'AnonymousAuthenticationModule',
    'UrlAuthorizationModule',
    'BasicAuthenticationModule',
    'WindowsAuthenticationModule',
    'DigestAuthenticationModule',
    'IISCertificateMappingAuthenticationModule',
    'IpRestrictionModule',
    'DynamicIpRestrictionModule',
    'RequestFilteringModule',
    'CustomErrorModule',
    'CgiModule',
    'FastCgiModule',
    'RewriteModule',
    'iisnode',
  ]);
  const hooks = Object.fromEntries(
    BUILTIN_MODULES.map((m) => [m.name, [...Object.keys(m.notifications ?? {}), ...(m.executeHandler ? ['handler'] : [])].sort()]),
  );
  assert.deepEqual(hooks, {
    HttpLoggingModule: ['SendResponse'],
    DynamicCompressionModule: ['SendResponse'],
    StaticCompressionModule: ['MapRequestHandler'],
    DefaultDocumentModule: ['handler'],
    DirectoryListingModule: ['handler'],
    ProtocolSupportModule: ['SendResponse', 'handler'],
    HttpRedirectionModule: ['MapRequestHandler'],
    ServerSideIncludeModule: ['handler'],
    StaticFileModule: ['handler'],
    AnonymousAuthenticationModule: ['AuthenticateRequest'],
    UrlAuthorizationModule: ['AuthorizeRequest'],
    BasicAuthenticationModule: ['AuthenticateRequest', 'SendResponse'],
    DigestAuthenticationModule: ['AuthenticateRequest', 'SendResponse'],
    WindowsAuthenticationModule: ['AuthenticateRequest', 'SendResponse'],
    IISCertificateMappingAuthenticationModule: ['AuthenticateRequest'],
    IpRestrictionModule: ['BeginRequest'],
    DynamicIpRestrictionModule: ['BeginRequest', 'EndRequest'],
    RequestFilteringModule: ['BeginRequest', 'SendResponse'],
    CustomErrorModule: ['SendResponse'],
    CgiModule: ['handler'],
    FastCgiModule: ['handler'],
    RewriteModule: ['BeginRequest'],
    iisnode: ['handler'],
  });
});

test('sub-status texts: exact entry, status fallback, unknown status', () => {
  assert.equal(statusText(403, 14).description, 'The Web server is configured to not list the contents of this directory.');
  assert.equal(statusText(404, 8).reason, 'Not Found');
  assert.match(statusText(404, 99).description, /not found/);
  for (let sub = 5; sub <= 20; sub++) {
    if (sub === 9 || sub === 16 || sub === 17) continue;
    assert.match(statusText(404, sub).description, /^Request filtering denied/, `404.${sub}`);
  }
  assert.ok(statusText(500, 19).causes.length > 0);
  assert.equal(statusText(599, 0).reason, 'Error');
});
