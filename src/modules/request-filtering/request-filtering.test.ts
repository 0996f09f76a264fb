import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RequestFilteringModule, REMOVE_SERVER_HEADER_ITEM, REQUEST_FILTERING_SECTION } from './index.js';
import { TestContext, makeTempDir, removeDir, runNotification, type ElementSpec, type TestContextOptions } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
after(() => removeDir(root));

function section(spec: ElementSpec): Record<string, ElementSpec> {
  return { [REQUEST_FILTERING_SECTION]: spec };
}

async function begin(options: TestContextOptions): Promise<TestContext> {
  const ctx = new TestContext({ root, ...options });
  await runNotification(ctx, RequestFilteringModule, 'BeginRequest');
  return ctx;
}

async function assertRejected(options: TestContextOptions, sub: number): Promise<void> {
  const ctx = await begin(options);
  assert.equal(ctx.response.statusCode, 404, `expected 404.${sub}`);
  assert.equal(ctx.response.subStatus, sub);
  assert.equal(ctx.finished, true);
  assert.equal(ctx.errorDetail?.module, 'RequestFilteringModule');
  assert.equal(ctx.errorDetail?.notification, 'BeginRequest');
  assert.notEqual(ctx.errorDetail?.description, '');
}

async function assertPassed(options: TestContextOptions): Promise<void> {
  const ctx = await begin(options);
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.finished, false);
}

test('plain request passes with the schema defaults', async () => {
  await assertPassed({ url: '/index.html?a=1' });
});

test('hidden segment web.config anywhere in the path, any case → 404.8', async () => {
  await assertRejected({ url: '/web.config' }, 8);
  await assertRejected({ url: '/sub/WEB.CONFIG' }, 8);
  await assertRejected({ url: '/a/bin/x.dll', sections: section({ children: { hiddenSegments: { items: [{ attributes: { segment: 'bin' } }] } } }) }, 8);
  // Checked before fileExtensions: with .config denied too, web.config is still 404.8 as on IIS.
  await assertRejected({ url: '/web.config', sections: section({ children: { fileExtensions: { items: [{ attributes: { fileExtension: '.config', allowed: false } }] } } }) }, 8);
  // A segment that merely contains the name is fine.
  await assertPassed({ url: '/binary/web.configs' });
});

test('denyUrlSequences scan the path as sent too: dot segments and escapes the decoded path no longer has', async () => {
  const spec: ElementSpec = { children: { denyUrlSequences: { items: [{ attributes: { sequence: '..' } }, { attributes: { sequence: '%' } }] } } };
  // The listener resolved '/a/../b.htm' to '/b.htm'; the client sent '..'.
  await assertRejected({ url: '/a/../b.htm', path: '/b.htm', sections: section(spec) }, 5);
  await assertRejected({ url: '/a%20b.htm', sections: section(spec) }, 5);
  await assertRejected({ url: 'http://localhost/a/%2e%2e/b.htm', path: '/b.htm', sections: section(spec) }, 5);
  // The scheme and host of an absolute-form target are not part of the path (':' is not scanned).
  await assertPassed({ url: 'http://localhost/b.htm', path: '/b.htm', sections: section({ children: { denyUrlSequences: { items: [{ attributes: { sequence: ':' } }] } } }) });
  await assertPassed({ url: '/a/b.htm', sections: section(spec) });
});

test('denyUrlSequences → 404.5, case-insensitive; alwaysAllowedUrls bypasses it', async () => {
  const spec: ElementSpec = {
    children: {
      denyUrlSequences: { items: [{ attributes: { sequence: '&' } }, { attributes: { sequence: 'Admin' } }] },
      alwaysAllowedUrls: { items: [{ attributes: { url: '/ok&fine.htm' } }] },
    },
  };
  await assertRejected({ url: '/a&b.htm', sections: section(spec) }, 5);
  await assertRejected({ url: '/ADMIN/x', sections: section(spec) }, 5);
  await assertPassed({ url: '/OK&fine.htm', sections: section(spec) });
});

test('fileExtensions: denied extension → 404.7; allowUnlisted=false denies others, "." is extension-less', async () => {
  const deny: ElementSpec = { children: { fileExtensions: { items: [{ attributes: { fileExtension: '.config', allowed: false } }] } } };
  await assertRejected({ url: '/app.Config', sections: section(deny) }, 7);
  await assertPassed({ url: '/app.json', sections: section(deny) });
  const allowList: ElementSpec = {
    children: {
      fileExtensions: {
        attributes: { allowUnlisted: false },
        items: [{ attributes: { fileExtension: '.html', allowed: true } }, { attributes: { fileExtension: '.', allowed: true } }],
      },
    },
  };
  await assertPassed({ url: '/a/page.html', sections: section(allowList) });
  await assertPassed({ url: '/a/extensionless', sections: section(allowList) });
  await assertRejected({ url: '/a/page.php', sections: section(allowList) }, 7);
  // The extension is the last segment's: a dot in a folder name does not count.
  await assertPassed({ url: '/v1.2/readme', sections: section(allowList) });
});

test('verbs → 404.6 (denied verb, or unlisted when allowUnlisted=false); verbs are case-sensitive', async () => {
  const deny: ElementSpec = { children: { verbs: { items: [{ attributes: { verb: 'TRACE', allowed: false } }] } } };
  await assertRejected({ method: 'TRACE', sections: section(deny) }, 6);
  await assertPassed({ method: 'GET', sections: section(deny) });
  const only: ElementSpec = { children: { verbs: { attributes: { allowUnlisted: false }, items: [{ attributes: { verb: 'GET', allowed: true } }] } } };
  await assertPassed({ method: 'GET', sections: section(only) });
  await assertRejected({ method: 'POST', sections: section(only) }, 6);
  await assertRejected({ method: 'get', sections: section(only) }, 6);
});

test('maxAllowedContentLength → 404.13 on Content-Length; a chunked body is capped as it streams', async () => {
  const spec: ElementSpec = { children: { requestLimits: { attributes: { maxAllowedContentLength: 100 } } } };
  await assertRejected({ method: 'POST', contentLength: 101, sections: section(spec) }, 13);
  const exact = await begin({ method: 'POST', contentLength: 100, sections: section(spec) });
  assert.equal(exact.finished, false);
  assert.equal(exact.bodyLimit, undefined, 'an announced length was judged already');
  // Chunked (unknown length): passes BeginRequest, with the body capped at the limit.
  const chunked = await begin({ method: 'POST', contentLength: -1, sections: section(spec) });
  assert.equal(chunked.finished, false);
  assert.equal(chunked.bodyLimit, 100);
  // A request rejected for another reason sets no cap.
  const rejected = await begin({ method: 'POST', url: '/web.config', contentLength: -1, sections: section(spec) });
  assert.equal(rejected.response.subStatus, 8);
  assert.equal(rejected.bodyLimit, undefined);
});

test('maxUrl → 404.14 on the path length (UTF-8 bytes), query excluded', async () => {
  const spec: ElementSpec = { children: { requestLimits: { attributes: { maxUrl: 10 } } } };
  await assertPassed({ url: '/123456789?' + 'q'.repeat(50), sections: section(spec) });
  await assertRejected({ url: '/1234567890', sections: section(spec) }, 14);
  await assertRejected({ url: '/%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9', sections: section(spec) }, 14);
});

test('maxQueryString → 404.15 (bytes of the query string as sent)', async () => {
  const spec: ElementSpec = { children: { requestLimits: { attributes: { maxQueryString: 5 } } } };
  await assertPassed({ url: '/a?12345', sections: section(spec) });
  await assertRejected({ url: '/a?123456', sections: section(spec) }, 15);
  await assertRejected({ url: '/a?\u00e9\u00e9\u00e9', sections: section(spec) }, 15); // 6 UTF-8 bytes
});

test('headerLimits → 404.10 when a header value is longer than its sizeLimit', async () => {
  const spec: ElementSpec = {
    children: { requestLimits: { children: { headerLimits: { items: [{ attributes: { header: 'X-Token:', sizeLimit: 4 } }] } } } },
  };
  await assertPassed({ headers: { 'x-token': 'abcd' }, sections: section(spec) });
  await assertRejected({ headers: { 'x-token': 'abcde' }, sections: section(spec) }, 10);
});

test('allowDoubleEscaping=false → 404.11 when the decoded path still holds an escape or a plus', async () => {
  await assertRejected({ url: '/a%252e.txt' }, 11); // decodes once to '/a%2e.txt'
  await assertRejected({ url: '/a+b.txt' }, 11);
  await assertPassed({ url: '/a%20b.txt' });
  await assertPassed({ url: '/100%.txt', path: '/100%.txt' }); // a lone '%' does not decode again
  await assertPassed({ url: '/a+b.txt', sections: section({ attributes: { allowDoubleEscaping: true } }) });
});

test('allowHighBitCharacters=false → 404.12 for non-ASCII in the URL', async () => {
  const spec = section({ attributes: { allowHighBitCharacters: false } });
  await assertRejected({ url: '/caf%C3%A9.html', sections: spec }, 12);
  await assertPassed({ url: '/cafe.html', sections: spec });
  await assertPassed({ url: '/caf%C3%A9.html' });
});

test('denyQueryStringSequences → 404.18 on raw or decoded query; alwaysAllowedQueryStrings bypasses', async () => {
  const spec: ElementSpec = {
    children: {
      denyQueryStringSequences: { items: [{ attributes: { sequence: '<script' } }] },
      alwaysAllowedQueryStrings: { items: [{ attributes: { queryString: 'x=%3Cscript' } }] },
    },
  };
  await assertRejected({ url: '/a?q=<SCRIPT>', sections: section(spec) }, 18);
  await assertRejected({ url: '/a?q=%3Cscript%3E', sections: section(spec) }, 18);
  await assertPassed({ url: '/a?x=%3Cscript', sections: section(spec) });
  // An always-allowed entry matches the query string as sent or decoded, never a part of it.
  await assertPassed({ url: '/a?x=<script', sections: section(spec) });
  await assertRejected({ url: '/a?x=%3Cscript&y=1', sections: section(spec) }, 18);
  // unescapeQueryString=false: only the raw form is scanned.
  await assertPassed({
    url: '/a?q=%3Cscript%3E',
    sections: section({ ...spec, attributes: { unescapeQueryString: false } }),
  });
});

test('filteringRules → 404.19 (scanUrl, scanQueryString, scanHeaders, appliesTo)', async () => {
  const spec: ElementSpec = {
    children: {
      filteringRules: {
        items: [
          {
            attributes: { name: 'SQL', scanUrl: true, scanQueryString: true },
            children: {
              scanHeaders: { items: [{ attributes: { requestHeader: 'User-Agent' } }] },
              appliesTo: { items: [{ attributes: { fileExtension: '.asp' } }] },
              denyStrings: { items: [{ attributes: { string: 'drop table' } }] },
            },
          },
        ],
      },
    },
  };
  await assertRejected({ url: '/x.asp?q=DROP%20TABLE', sections: section(spec) }, 19);
  await assertRejected({ url: '/x.asp', headers: { 'user-agent': 'drop table bot' }, sections: section(spec) }, 19);
  await assertPassed({ url: '/x.html?q=drop%20table', sections: section(spec) });
  // denyUnescapedPercent: a '%' that is not an escape in a scanned query string or URL.
  await assertRejected({ url: '/x.asp?q=100%', sections: section(spec) }, 19);
  await assertRejected({ url: '/100%.asp', path: '/100%.asp', sections: section({ attributes: { allowDoubleEscaping: true }, ...spec }) }, 19);
  await assertPassed({ url: '/x.asp?q=100%25&u=%u0041', sections: section(spec) });
});

test('filteringRules: denyUnescapedPercent="false", scanAllRaw scans every header line, scanHeaders only its headers', async () => {
  const rule = (attributes: Record<string, boolean | string>, header?: string): ElementSpec => ({
    children: {
      filteringRules: {
        items: [
          {
            attributes: { name: 'r', ...attributes },
            children: {
              scanHeaders: { items: header !== undefined ? [{ attributes: { requestHeader: header } }] : [] },
              appliesTo: { items: [] },
              denyStrings: { items: [{ attributes: { string: 'evil' } }] },
            },
          },
        ],
      },
    },
  });
  await assertPassed({ url: '/x?q=100%', sections: section(rule({ scanQueryString: true, denyUnescapedPercent: false })) });
  const raw = section(rule({ scanAllRaw: true }));
  await assertRejected({ headers: { 'x-anything': 'so EVIL' }, sections: raw }, 19);
  await assertRejected({ headers: { 'x-evil-name': '1' }, sections: raw }, 19);
  await assertPassed({ url: '/evil.htm', sections: raw });
  const named = section(rule({}, 'Referer'));
  await assertRejected({ headers: { referer: 'http://evil/' }, sections: named }, 19);
  await assertPassed({ headers: { 'user-agent': 'evil' }, sections: named });
});

test('which sub-status wins when a request breaks several rules', async () => {
  const spec: ElementSpec = {
    children: {
      requestLimits: { attributes: { maxQueryString: 10 } },
      verbs: { items: [{ attributes: { verb: 'DELETE', allowed: false } }] },
      fileExtensions: { items: [{ attributes: { fileExtension: '.bak', allowed: false } }] },
      hiddenSegments: { items: [{ attributes: { segment: 'secret' } }] },
      denyUrlSequences: { items: [{ attributes: { sequence: 'old' } }] },
      denyQueryStringSequences: { items: [{ attributes: { sequence: 'x=' } }] },
    },
  };
  const s = section(spec);
  await assertRejected({ url: '/secret/old.bak?' + 'x='.repeat(10), method: 'DELETE', sections: s }, 15);
  await assertRejected({ url: '/secret/a+old.bak', method: 'DELETE', sections: s }, 11);
  await assertRejected({ url: '/secret/old.bak', method: 'DELETE', sections: s }, 6);
  await assertRejected({ url: '/secret/old.bak', sections: s }, 8);
  await assertRejected({ url: '/old.bak?x=1', sections: s }, 7);
  await assertRejected({ url: '/old.txt?x=1', sections: s }, 5);
  await assertRejected({ url: '/new.txt?x=1', sections: s }, 18);
});

test('maxUrlSegments from the site limits → 404.20', async () => {
  await assertPassed({ url: '/a/b/c', limits: { attributes: { maxUrlSegments: 3 } } });
  await assertRejected({ url: '/a/b/c/d', limits: { attributes: { maxUrlSegments: 3 } } }, 20);
});

test('removeServerHeader: SendResponse blanks the Server header and marks ctx.items', async () => {
  const ctx = new TestContext({ root, sections: section({ attributes: { removeServerHeader: true } }) });
  await runNotification(ctx, RequestFilteringModule, 'SendResponse');
  assert.equal(ctx.response.getHeader('Server'), '');
  assert.equal(ctx.items.get(REMOVE_SERVER_HEADER_ITEM), true);

  const plain = new TestContext({ root });
  await runNotification(plain, RequestFilteringModule, 'SendResponse');
  assert.equal(plain.response.getHeader('Server'), undefined);
  assert.equal(plain.items.has(REMOVE_SERVER_HEADER_ITEM), false);
});
