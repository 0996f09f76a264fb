import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolSupportModule, HTTP_PROTOCOL_SECTION } from './index.js';
import { REQUEST_FILTERING_SECTION } from '../request-filtering/index.js';
import { TestContext, makeTempDir, removeDir, runNotification, runHandler, type ElementSpec } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
after(() => removeDir(root));

const headers = (...pairs: [string, string][]): ElementSpec => ({ items: pairs.map(([name, value]) => ({ attributes: { name, value } })) });

const verbHandler = { name: 'OPTIONSVerbHandler', modules: ['ProtocolSupportModule'] };

function protocol(spec: ElementSpec): Record<string, ElementSpec> {
  return { [HTTP_PROTOCOL_SECTION]: spec };
}

test('customHeaders are added to every response, in order', async () => {
  const ctx = new TestContext({
    root,
    sections: protocol({ children: { customHeaders: headers(['X-Powered-By', 'ASP.NET'], ['X-Frame-Options', 'DENY']) } }),
  });
  ctx.response.statusCode = 404;
  await runNotification(ctx, ProtocolSupportModule, 'SendResponse');
  assert.equal(ctx.response.header('X-Powered-By'), 'ASP.NET');
  assert.equal(ctx.response.header('X-Frame-Options'), 'DENY');
  assert.deepEqual(ctx.response.headerNames(), ['X-Powered-By', 'X-Frame-Options']);
  assert.equal(ctx.response.getHeader('Connection'), undefined);
});

test('a custom header the application already set is appended to, as IIS does', async () => {
  const ctx = new TestContext({ root, sections: protocol({ children: { customHeaders: headers(['X-Frame-Options', 'SAMEORIGIN']) } }) });
  ctx.response.setHeader('X-Frame-Options', 'DENY');
  await runNotification(ctx, ProtocolSupportModule, 'SendResponse');
  assert.equal(ctx.response.header('X-Frame-Options'), 'DENY, SAMEORIGIN');
});

test('redirectHeaders only on redirects (not 200, not 304)', async () => {
  const sections = protocol({ children: { redirectHeaders: headers(['X-Redirected-By', 'Wharf']) } });
  for (const [status, expected] of [[302, 'Wharf'], [301, 'Wharf'], [200, undefined], [304, undefined]] as const) {
    const ctx = new TestContext({ root, sections });
    ctx.response.statusCode = status;
    await runNotification(ctx, ProtocolSupportModule, 'SendResponse');
    assert.equal(ctx.response.header('X-Redirected-By'), expected, `status ${status}`);
  }
});

test('allowKeepAlive=false → Connection: close', async () => {
  const ctx = new TestContext({ root, sections: protocol({ attributes: { allowKeepAlive: false } }) });
  await runNotification(ctx, ProtocolSupportModule, 'SendResponse');
  assert.equal(ctx.response.header('Connection'), 'close');
  assert.equal(ctx.response.closeRequested, true);
});

test('OPTIONS → 200 with Allow and Public, Content-Length 0, no body', async () => {
  const ctx = new TestContext({ root, method: 'OPTIONS', url: '/x', handler: { name: 'OPTIONSVerbHandler', modules: ['ProtocolSupportModule'] } });
  await runHandler(ctx, [ProtocolSupportModule]);
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.response.header('Allow'), 'OPTIONS, TRACE, GET, HEAD, POST');
  assert.equal(ctx.response.header('Public'), 'OPTIONS, TRACE, GET, HEAD, POST');
  assert.equal(ctx.response.header('Content-Length'), '0');
  assert.equal(ctx.response.bodyLength, 0);
  assert.equal(ctx.finished, true);
});

test('OPTIONS leaves out verbs request filtering denies', async () => {
  const ctx = new TestContext({
    root,
    method: 'OPTIONS',
    handler: verbHandler,
    sections: { [REQUEST_FILTERING_SECTION]: { children: { verbs: { items: [{ attributes: { verb: 'TRACE', allowed: false } }] } } } },
  });
  await runHandler(ctx, [ProtocolSupportModule]);
  assert.equal(ctx.response.header('Allow'), 'OPTIONS, GET, HEAD, POST');
});

test('TRACE echoes the request as message/http without credential headers', async () => {
  const ctx = new TestContext({
    root,
    method: 'TRACE',
    url: '/echo?x=1',
    handler: verbHandler,
    headers: { 'X-Test': 'yes', Cookie: 'session=secret', Authorization: 'Basic Zm9vOmJhcg==' },
  });
  await runHandler(ctx, [ProtocolSupportModule]);
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.response.header('Content-Type'), 'message/http');
  const body = ctx.response.text();
  assert.equal(body, 'TRACE /echo?x=1 HTTP/1.1\r\nHost: localhost\r\nx-test: yes\r\n\r\n');
  assert.equal(ctx.response.header('Content-Length'), String(Buffer.byteLength(body)));
  assert.doesNotMatch(body, /secret|Zm9v/);
});

test('another verb mapped to the module → 405.0 with Allow', async () => {
  const ctx = new TestContext({ root, method: 'GET', handler: verbHandler });
  await runHandler(ctx, [ProtocolSupportModule]);
  assert.equal(ctx.response.statusCode, 405);
  assert.equal(ctx.response.subStatus, 0);
  assert.equal(ctx.response.header('Allow'), 'OPTIONS, TRACE');
});
