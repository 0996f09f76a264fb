import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomErrorModule, HTTP_ERRORS_SECTION, BUILTIN_CUSTERR_DIR, configSourceExcerpt, createCustomErrorModule } from './index.js';
import { TestContext, makeTempDir, removeDir, runNotification, type ElementSpec, type TestContextOptions } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
after(() => removeDir(root));
mkdirSync(join(root, 'errors'));
writeFileSync(join(root, 'errors', 'any404.htm'), '<p>any 404</p>');
writeFileSync(join(root, 'errors', 'mime404.htm'), '<p>404.3 page</p>');
writeFileSync(join(root, 'errors', 'default.htm'), '<p>default page</p>');
mkdirSync(join(root, 'lang', 'en-US'), { recursive: true });
writeFileSync(join(root, 'lang', 'en-US', '500.htm'), '<p>localized 500</p>');

const SHIPPED_404 = readFileSync(join(BUILTIN_CUSTERR_DIR, 'en-US', '404.htm'), 'utf8');

function httpErrors(spec: ElementSpec): Record<string, ElementSpec> {
  return { [HTTP_ERRORS_SECTION]: spec };
}

function errorItem(statusCode: number, path: string, more: Record<string, string | number> = {}): ElementSpec {
  return { attributes: { statusCode, path, ...more } };
}

/**
 * The shipped configuration: each status → %IIS_BIN%\custerr. The config system expands the
 * variable but keeps the backslash, so the module sees '<assets>\custerr'.
 */
const IIS_BIN = join(BUILTIN_CUSTERR_DIR, '..');
const SHIPPED = httpErrors({
  items: [401, 403, 404, 405, 406, 412, 500, 501, 502].map((s) => errorItem(s, `${s}.htm`, { prefixLanguageFilePath: `${IIS_BIN}\\custerr` })),
});

interface ErrorOptions extends Omit<TestContextOptions, 'root'> {
  readonly status?: number;
  readonly sub?: number;
  readonly description?: string;
  readonly body?: string;
  readonly trySkip?: boolean;
}

async function send(o: ErrorOptions = {}, module = CustomErrorModule): Promise<TestContext> {
  const ctx = new TestContext({ root, url: '/missing.htm', ...o });
  ctx.notification = 'MapRequestHandler';
  if (o.status !== undefined) {
    ctx.setStatus(o.status, o.sub ?? 0, {
      module: 'IIS Web Core',
      hresult: 0x80070002,
      description: o.description ?? '',
      trySkipCustomErrors: o.trySkip ?? false,
    });
  }
  if (o.body !== undefined) ctx.response.write(o.body);
  await runNotification(ctx, module, 'SendResponse');
  return ctx;
}

test('responses below 400 are left alone', async () => {
  const ctx = await send({ body: 'fine', sections: SHIPPED });
  assert.equal(ctx.response.text(), 'fine');
  const redirect = await send({ status: 302, sections: SHIPPED });
  assert.equal(redirect.response.bodyLength, 0);
});

test('remote client, shipped config: the file under prefixLanguageFilePath/en-US is sent as text/html', async () => {
  const ctx = await send({ status: 404, sections: SHIPPED });
  const res = ctx.response;
  assert.equal(res.statusCode, 404);
  assert.equal(res.subStatus, 0);
  assert.equal(res.header('Content-Type'), 'text/html');
  assert.equal(res.text(), SHIPPED_404);
  assert.equal(res.header('Content-Length'), String(Buffer.byteLength(SHIPPED_404)));
  assert.match(res.text(), /<h2>404 - File or directory not found\.<\/h2>/);
});

test('the exact sub-status entry wins over subStatusCode -1; relative paths are under the site root', async () => {
  const sections = httpErrors({
    items: [errorItem(404, 'errors\\any404.htm'), errorItem(404, 'errors/mime404.htm', { subStatusCode: 3 })],
  });
  assert.equal((await send({ status: 404, sub: 3, sections })).response.text(), '<p>404.3 page</p>');
  assert.equal((await send({ status: 404, sub: 7, sections })).response.text(), '<p>any 404</p>');
});

test('prefixLanguageFilePath relative to the site root gets the language folder', async () => {
  const ctx = await send({ status: 500, sections: httpErrors({ items: [errorItem(500, '500.htm', { prefixLanguageFilePath: 'lang' })] }) });
  assert.equal(ctx.response.text(), '<p>localized 500</p>');
});

test('no entry: defaultResponseMode/defaultPath; neither: the built-in page for the status', async () => {
  const withDefault = await send({ status: 410, sections: httpErrors({ attributes: { defaultPath: 'errors/default.htm' } }) });
  assert.equal(withDefault.response.text(), '<p>default page</p>');
  const builtin404 = await send({ status: 404 });
  assert.equal(builtin404.response.text(), SHIPPED_404);
  const generic = await send({ status: 416 });
  assert.equal(generic.response.statusCode, 416);
  assert.match(generic.response.text(), /<h2>416 - Range Not Satisfiable\.<\/h2>/);
  assert.equal(generic.response.header('Content-Type'), 'text/html');
});

test('a missing error file: the built-in page, and one warning per file', async () => {
  const sections = httpErrors({ items: [errorItem(403, 'errors/nothere.htm')] });
  const first = await send({ status: 403, sections });
  assert.match(first.response.text(), /403 - Forbidden: Access is denied\./);
  assert.equal(first.logs.length, 1);
  assert.equal(first.logs[0]?.level, 'warn');
  assert.match(first.logs[0]?.message ?? '', /nothere\.htm/);
  const second = await send({ status: 403, sections });
  assert.equal(second.logs.length, 0);
});

test('ExecuteURL runs the URL as a child request and keeps the original status', async () => {
  const ctx = await send({
    status: 404,
    sub: 0,
    headers: { 'If-None-Match': '"abc"', Range: 'bytes=0-1', Accept: 'text/html' },
    sections: httpErrors({ items: [errorItem(404, '/errors/notfound.aspx', { responseMode: 'ExecuteURL' })] }),
    onChildRequest: async (_url, parent) => {
      parent.response.setHeader('Content-Type', 'text/html; charset=utf-8');
      parent.response.write('<p>from the child</p>');
    },
  });
  // IIS's query string for the page: the status and the URL the client asked for, port included.
  assert.deepEqual(ctx.childUrls, ['/errors/notfound.aspx?404;http://localhost:80/missing.htm']);
  const options = ctx.childOptions[0];
  assert.equal(options?.keepStatus, true);
  assert.equal(options?.ownUrl, true, 'the page sees its own URL');
  // The page is not the requested resource: the client's preconditions and ranges are not passed on.
  const names = (options?.rawHeaders ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.ok(names.includes('accept') && !names.includes('if-none-match') && !names.includes('range'), names.join(','));
  assert.equal(ctx.response.statusCode, 404);
  assert.equal(ctx.response.header('Content-Type'), 'text/html; charset=utf-8');
  assert.equal(ctx.response.text(), '<p>from the child</p>');
});

test('ExecuteURL keeps a query string written in the path', async () => {
  const ctx = await send({
    status: 500,
    sections: httpErrors({ items: [errorItem(500, '/error?code=500', { responseMode: 'ExecuteURL' })] }),
    onChildRequest: async (_url, parent) => void parent.response.write('page'),
  });
  assert.deepEqual(ctx.childUrls, ['/error?code=500']);
  assert.equal(ctx.response.statusCode, 500);
});

test('ExecuteURL page that fails or is empty: the built-in page for the original status, headers as before, one warning', async () => {
  const sections = httpErrors({ items: [errorItem(404, '/errors/gone.htm', { responseMode: 'ExecuteURL' })] });
  const failing = async (_url: string, parent: TestContext): Promise<void> => {
    parent.response.setHeader('ETag', '"child"');
    parent.setStatus(404, 0);
  };
  const first = await send({ status: 404, sub: 2, sections, onChildRequest: failing });
  assert.equal(first.response.statusCode, 404);
  assert.equal(first.response.subStatus, 2);
  assert.equal(first.response.text(), SHIPPED_404);
  assert.equal(first.response.header('ETag'), undefined, "the failed page's headers are dropped");
  assert.equal(first.logs.length, 1);
  assert.match(first.logs[0]?.message ?? '', /\/errors\/gone\.htm answered 404\.0; sending the built-in page for 404/);
  const again = await send({ status: 404, sections, onChildRequest: failing });
  assert.equal(again.logs.length, 0, 'warned once');

  const empty = await send({ status: 404, sections, onChildRequest: async () => undefined });
  assert.equal(empty.response.statusCode, 404);
  assert.equal(empty.response.text(), SHIPPED_404);
  assert.match(empty.logs[0]?.message ?? '', /answered 200\.0 with an empty body/);
});

test('ExecuteURL page in another pool: 403.18 with the built-in 403 page', async () => {
  const ctx = await send({
    status: 404,
    sections: httpErrors({ items: [errorItem(404, '/otherapp/404', { responseMode: 'ExecuteURL' })] }),
    onChildRequest: async (_url, parent) => parent.setStatus(403, 18),
  });
  assert.equal(ctx.response.statusCode, 403);
  assert.equal(ctx.response.subStatus, 18);
  assert.match(ctx.response.text(), /403 - Forbidden/);
});

test('ExecuteURL path that is not a URL of the site: no child request, the built-in page', async () => {
  for (const path of ['http://example.com/404.htm', '//example.com/404.htm', 'errors/404.htm', '~/errors/404.htm']) {
    const ctx = await send({ status: 404, sections: httpErrors({ items: [errorItem(404, path, { responseMode: 'ExecuteURL' })] }) });
    assert.deepEqual(ctx.childUrls, []);
    assert.equal(ctx.response.statusCode, 404);
    assert.equal(ctx.response.text(), SHIPPED_404);
    assert.match(ctx.logs[0]?.message ?? '', /is not a URL of this site/);
  }
});

test('Redirect → 302 with Location', async () => {
  const ctx = await send({ status: 404, sections: httpErrors({ items: [errorItem(404, 'http://example.com/oops', { responseMode: 'Redirect' })] }) });
  assert.equal(ctx.response.statusCode, 302);
  assert.equal(ctx.response.header('Location'), 'http://example.com/oops');
});

test('local client under DetailedLocalOnly: the detailed page', async () => {
  const ctx = await send({ status: 404, isLocal: true, sections: SHIPPED, description: 'No <file> here & there' });
  const res = ctx.response;
  const html = res.text();
  assert.equal(res.header('Content-Type'), 'text/html; charset=utf-8');
  assert.match(html, /<title>Wharf Detailed Error - 404\.0 - Not Found<\/title>/);
  assert.match(html, /<h2>HTTP Error 404\.0 - Not Found<\/h2>/);
  assert.match(html, /<h3>No &lt;file&gt; here &amp; there<\/h3>/);
  assert.match(html, /<th>Module<\/th><td>IIS Web Core<\/td>/);
  assert.match(html, /<th>Notification<\/th><td>MapRequestHandler<\/td>/);
  assert.match(html, /<th>Handler<\/th><td>StaticFile<\/td>/);
  assert.match(html, /<th>Error Code<\/th><td>0x80070002<\/td>/);
  assert.match(html, /<th>Requested URL<\/th><td>http:\/\/localhost:80\/missing\.htm<\/td>/);
  assert.match(html, new RegExp(`<th>Physical Path</th><td>${join(root, 'missing.htm').replace(/[/.]/g, '\\$&')}</td>`));
  assert.match(html, /<th>Logon Method<\/th><td>Anonymous<\/td>/);
  assert.match(html, /<th>Logon User<\/th><td>Anonymous<\/td>/);
  assert.match(html, /Most likely causes:/);
  assert.match(html, /Things you can try:/);
  assert.doesNotMatch(html, /<file>/);
  assert.equal(res.header('Content-Length'), String(Buffer.byteLength(html)));
});

test('errorMode Detailed applies to remote clients, Custom to local ones', async () => {
  const detailed = await send({ status: 404, sections: httpErrors({ attributes: { errorMode: 'Detailed' } }) });
  assert.match(detailed.response.text(), /Wharf Detailed Error - 404\.0/);
  const custom = await send({ status: 404, isLocal: true, sections: httpErrors({ attributes: { errorMode: 'Custom' } }) });
  assert.equal(custom.response.text(), SHIPPED_404);
});

test('500.19: the detailed page shows the config error, file and numbered source lines', async () => {
  const source = ['<configuration>', '  <system.webServer>', '    <bogus attr="<x>" />', '  </system.webServer>', '</configuration>'].join('\r\n');
  const ctx = new TestContext({ root, url: '/app/', isLocal: true });
  ctx.notification = 'BeginRequest';
  ctx.setStatus(500, 19, {
    module: 'IIS Web Core',
    hresult: 0x8007000d,
    description: 'Unrecognized configuration element "bogus".',
    configFile: '/srv/site/web.config',
    configLine: 3,
    configSource: source,
  });
  await runNotification(ctx, CustomErrorModule, 'SendResponse');
  const html = ctx.response.text();
  assert.match(html, /HTTP Error 500\.19 - Internal Server Error/);
  assert.match(html, /<th>Error Code<\/th><td>0x8007000d<\/td>/);
  assert.match(html, /<th>Notification<\/th><td>BeginRequest<\/td>/);
  assert.match(html, /<th>Config Error<\/th><td>Unrecognized configuration element &quot;bogus&quot;\.<\/td>/);
  assert.match(html, /<th>Config File<\/th><td>\/srv\/site\/web\.config<\/td>/);
  assert.match(html, /<pre>    1: &lt;configuration&gt;\n    2:   &lt;system\.webServer&gt;\n    3:     &lt;bogus attr=&quot;&lt;x&gt;&quot; \/&gt;\n/);
  assert.match(html, /<th>Logon Method<\/th><td>Not yet determined<\/td>/);
  assert.equal(configSourceExcerpt('a\nb\nc\nd\ne\nf\ng', 6), '    4: d\n    5: e\n    6: f\n    7: g');
});

test('existingResponse: Auto honours trySkipCustomErrors only with a body; PassThrough; Replace', async () => {
  const auto = (trySkip: boolean, body: string | undefined) => send({ status: 500, trySkip, ...(body === undefined ? {} : { body }) });
  assert.equal((await auto(true, 'app error page')).response.text(), 'app error page');
  assert.match((await auto(true, undefined)).response.text(), /500 - Internal server error\./);
  assert.match((await auto(false, 'app error page')).response.text(), /500 - Internal server error\./);

  const pass = httpErrors({ attributes: { existingResponse: 'PassThrough' } });
  assert.equal((await send({ status: 500, body: 'mine', sections: pass })).response.text(), 'mine');
  assert.match((await send({ status: 500, sections: pass })).response.text(), /500 - Internal server error\./);

  const replace = httpErrors({ attributes: { existingResponse: 'Replace' } });
  assert.match((await send({ status: 500, trySkip: true, body: 'mine', sections: replace })).response.text(), /500 - Internal server error\./);
});

test('an app-written error body is replaced with its encoding header removed; HEAD gets no body', async () => {
  const ctx = new TestContext({ root, url: '/x' });
  ctx.response.statusCode = 404;
  ctx.response.setHeader('Content-Encoding', 'gzip');
  ctx.response.write('compressed bytes');
  await runNotification(ctx, CustomErrorModule, 'SendResponse');
  assert.equal(ctx.response.getHeader('Content-Encoding'), undefined);
  assert.equal(ctx.response.text(), SHIPPED_404);

  const head = await send({ status: 404, method: 'HEAD' });
  assert.equal(head.response.header('Content-Length'), String(Buffer.byteLength(SHIPPED_404)));
  assert.equal(head.response.bodyLength, 0);
});

test('the detailed page without errorDetail names the handler\'s module', async () => {
  const ctx = new TestContext({ root, url: '/api', isLocal: true, handler: { name: 'iisnode', modules: ['iisnode'] } });
  ctx.response.statusCode = 502;
  await runNotification(ctx, CustomErrorModule, 'SendResponse');
  const html = ctx.response.text();
  assert.match(html, /HTTP Error 502\.0 - Bad Gateway/);
  assert.match(html, /<th>Module<\/th><td>iisnode<\/td>/);
  assert.match(html, /<th>Error Code<\/th><td>0x00000000<\/td>/);
});

test('drive-letter paths map through the worker\'s system drive; without one the built-in page is sent', async () => {
  const drive = makeTempDir();
  mkdirSync(join(drive, 'inetpub', 'custerr', 'en-US'), { recursive: true });
  writeFileSync(join(drive, 'inetpub', 'custerr', 'en-US', '404.htm'), '<p>from C:</p>');
  const sections = httpErrors({ items: [errorItem(404, '404.htm', { prefixLanguageFilePath: 'C:\\inetpub\\custerr' })] });
  try {
    const mapped = await send({ status: 404, sections }, createCustomErrorModule({ systemDrive: drive }));
    assert.equal(mapped.response.text(), '<p>from C:</p>');
    const unmapped = await send({ status: 404, sections });
    assert.equal(unmapped.response.text(), SHIPPED_404);
    assert.match(unmapped.logs[0]?.message ?? '', /C:\\inetpub\\custerr\\en-US\\404\.htm/);
  } finally {
    removeDir(drive);
  }
});
