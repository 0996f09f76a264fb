import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FakeConfigElement, makeTempDir, removeDir, TestContext, type TestContextOptions } from '../../../test/helpers/module-harness.js';
import { CGI_SERVER_SOFTWARE, cgiEnvironment, cgiVariables } from './environment.js';

const root = makeTempDir('wharf-cgi-env-');
after(() => removeDir(root));

/**
 * A request mapped to a CGI handler whose script is `script` (the URL up to it); the rest of the
 * path is PATH_INFO when allowPathInfo is set, as MapRequestHandler leaves the context.
 */
function context(options: TestContextOptions & { script?: string; allowPathInfo?: boolean }): TestContext {
  const ctx = new TestContext({ root, handler: { name: 'CGI', modules: ['CgiModule'] }, ...options });
  const script = options.script ?? ctx.request.path;
  Object.defineProperty(ctx, 'scriptPath', { value: script });
  ctx.physicalPath = join(root, ...script.split('/').filter((s) => s !== ''));
  Object.defineProperty(ctx, 'handler', {
    value: { ...ctx.handler!, element: new FakeConfigElement('add', { attributes: { allowPathInfo: options.allowPathInfo ?? false } }) },
  });
  return ctx;
}

describe('cgiVariables', () => {
  it('gives the CGI/1.1 variables of RFC 3875 §4.1 for a GET', () => {
    const env = cgiEnvironment(context({ url: '/cgi/test.cgi?a=1&b=%20x', headers: { Host: 'www.example.com:8080' } }));
    assert.equal(env['GATEWAY_INTERFACE'], 'CGI/1.1');
    assert.equal(env['SERVER_SOFTWARE'], CGI_SERVER_SOFTWARE);
    assert.equal(env['SERVER_PROTOCOL'], 'HTTP/1.1');
    assert.equal(env['SERVER_NAME'], 'www.example.com');
    assert.equal(env['SERVER_PORT'], '80');
    assert.equal(env['REQUEST_METHOD'], 'GET');
    assert.equal(env['QUERY_STRING'], 'a=1&b=%20x');
    assert.equal(env['REQUEST_URI'], '/cgi/test.cgi?a=1&b=%20x');
    assert.equal(env['SCRIPT_NAME'], '/cgi/test.cgi');
    assert.equal(env['SCRIPT_FILENAME'], join(root, 'cgi', 'test.cgi'));
    assert.equal(env['DOCUMENT_ROOT'], root);
    assert.equal(env['REMOTE_ADDR'], '203.0.113.9');
    assert.equal(env['REMOTE_PORT'], '50123');
    assert.equal(env['HTTPS'], 'off');
    assert.equal(env['REQUEST_SCHEME'], 'http');
    // No body: CONTENT_LENGTH is empty (unset in meaning), not "0" (§4.1.2).
    assert.equal(env['CONTENT_LENGTH'], '');
    assert.equal(env['CONTENT_TYPE'], '');
    assert.equal(env['REDIRECT_STATUS'], undefined);
    assert.equal(env['IIS_UrlRewriteModule'], undefined);
    assert.equal(env['APP_POOL_ID'], 'DefaultAppPool');
    assert.equal(env['INSTANCE_ID'], '1');
  });

  it('keeps an IPv6 Host in brackets for SERVER_NAME', () => {
    assert.equal(cgiEnvironment(context({ url: '/x.cgi', headers: { Host: '[::1]:8080' } }))['SERVER_NAME'], '[::1]');
  });

  it("PATH_INFO is what follows the script (empty when nothing does), not IIS's whole-URL variable", () => {
    const withInfo = cgiEnvironment(context({ url: '/cgi/test.cgi/extra/path', script: '/cgi/test.cgi', allowPathInfo: true }));
    assert.equal(withInfo['SCRIPT_NAME'], '/cgi/test.cgi');
    assert.equal(withInfo['PATH_INFO'], '/extra/path');
    const without = cgiEnvironment(context({ url: '/cgi/test.cgi', allowPathInfo: false }));
    assert.equal(without['PATH_INFO'], '');
    assert.equal(without['SCRIPT_NAME'], '/cgi/test.cgi');
  });

  it('passes the body length and type, a spooled length over the header, and REDIRECT_STATUS when asked', () => {
    const post = context({ url: '/form.cgi', method: 'POST', contentLength: 11, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    const env = cgiEnvironment(post, { redirectStatus: true, urlRewrite: true });
    assert.equal(env['REQUEST_METHOD'], 'POST');
    assert.equal(env['CONTENT_LENGTH'], '11');
    assert.equal(env['CONTENT_TYPE'], 'application/x-www-form-urlencoded');
    assert.equal(env['REDIRECT_STATUS'], '200');
    assert.equal(env['IIS_UrlRewriteModule'], '7,1,1993,2351');
    // Content-Length and Content-Type are not repeated as HTTP_ variables (§4.1.18).
    assert.equal(env['HTTP_CONTENT_LENGTH'], undefined);
    assert.equal(env['HTTP_CONTENT_TYPE'], undefined);
    const chunked = context({ url: '/form.cgi', method: 'POST', contentLength: -1 });
    assert.equal(cgiEnvironment(chunked, { contentLength: 4096 })['CONTENT_LENGTH'], '4096');
    assert.equal(cgiEnvironment(chunked, { scriptFilename: '/elsewhere/x.php' })['SCRIPT_FILENAME'], '/elsewhere/x.php');
  });

  it('turns headers into HTTP_ variables, leaving out Proxy (httpoxy) and names with "_" or other characters', () => {
    const env = cgiEnvironment(
      context({
        url: '/h.cgi',
        headers: { 'User-Agent': 'curl/8', 'X-Forwarded-For': '198.51.100.7', Proxy: 'http://evil:3128', X_Forwarded_For: 'forged', 'X.Dotted': 'd', Cookie: 'a=1' },
      }),
    );
    assert.equal(env['HTTP_USER_AGENT'], 'curl/8');
    assert.equal(env['HTTP_X_FORWARDED_FOR'], '198.51.100.7');
    assert.equal(env['HTTP_COOKIE'], 'a=1');
    assert.equal(env['HTTP_HOST'], 'localhost');
    assert.equal(env['HTTP_PROXY'], undefined);
    assert.deepEqual(Object.keys(env).filter((k) => k.startsWith('HTTP_')).sort(), ['HTTP_COOKIE', 'HTTP_HOST', 'HTTP_USER_AGENT', 'HTTP_X_FORWARDED_FOR']);
  });

  it('says a request came over TLS: HTTPS on, the https scheme, port 443', () => {
    const env = cgiEnvironment(context({ url: '/s.cgi', https: true }));
    assert.equal(env['HTTPS'], 'on');
    assert.equal(env['REQUEST_SCHEME'], 'https');
    assert.equal(env['SERVER_PORT'], '443');
    assert.equal(env['SERVER_PORT_SECURE'], '1');
    assert.equal(env['HTTPS_KEYSIZE'], '128');
  });

  it('marks a rewritten request (X-Original-URL) and names the user', () => {
    const ctx = context({ url: '/index.cgi', headers: { 'X-Original-URL': '/pretty/url' } });
    ctx.user = 'alice';
    ctx.authType = 'Basic';
    const env = cgiEnvironment(ctx);
    assert.equal(env['IIS_WasUrlRewritten'], '1');
    assert.equal(env['HTTP_X_ORIGINAL_URL'], '/pretty/url');
    assert.equal(env['REMOTE_USER'], 'alice');
    assert.equal(env['AUTH_USER'], 'alice');
    assert.equal(env['AUTH_TYPE'], 'Basic');
  });

  it('lists each variable once, as name/value pairs', () => {
    const list = cgiVariables(context({ url: '/x.cgi?q', headers: { Accept: '*/*' } }));
    assert.equal(list.length % 2, 0);
    const names = list.filter((_, i) => i % 2 === 0);
    assert.equal(new Set(names).size, names.length, `repeated: ${names.filter((n, i) => names.indexOf(n) !== i).join(', ')}`);
    assert.ok(list.every((v) => typeof v === 'string' && !v.includes('\0')));
  });
});
