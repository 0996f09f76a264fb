import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { HTTP_REDIRECT_SECTION, HttpRedirectionModule, expandDestination, wildcardPattern } from './index.js';
import { TestContext, makeTempDir, removeDir, runNotification, type ElementSpec } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
after(() => removeDir(root));

interface Case {
  readonly url: string;
  readonly section: ElementSpec;
  /** Where the section is written (ResolvedConfig.sectionScope). */
  readonly scope?: string;
  readonly host?: string;
  readonly method?: string;
}

async function run(c: Case): Promise<TestContext> {
  const ctx = new TestContext({
    root,
    url: c.url,
    method: c.method ?? 'GET',
    headers: { host: c.host ?? 'www.example.com' },
    sections: { [HTTP_REDIRECT_SECTION]: c.section },
    sectionScopes: { [HTTP_REDIRECT_SECTION]: c.scope ?? '/' },
  });
  await runNotification(ctx, HttpRedirectionModule, 'MapRequestHandler');
  return ctx;
}

async function location(c: Case): Promise<string | undefined> {
  const ctx = await run(c);
  if (!ctx.finished) return undefined;
  return ctx.response.header('Location');
}

const on = (attributes: Record<string, string | boolean>, items?: ElementSpec[]): ElementSpec => ({
  attributes: { enabled: true, ...attributes },
  ...(items !== undefined ? { items } : {}),
});

test('disabled (the default): nothing happens', async () => {
  const ctx = await run({ url: '/a.htm', section: { attributes: { destination: 'http://new.example/' } } });
  assert.equal(ctx.finished, false);
  assert.equal(ctx.response.statusCode, 200);
});

test('302 by default with Location, IIS\'s "Document Moved" body and the rest of the path appended', async () => {
  const ctx = await run({ url: '/old/docs/a.htm?x=1', scope: '/old', section: on({ destination: 'https://new.example/docs2' }) });
  assert.equal(ctx.finished, true);
  assert.equal(ctx.response.statusCode, 302);
  // The path below the folder is appended; the query string needs $Q (IIS drops it otherwise).
  assert.equal(ctx.response.header('Location'), 'https://new.example/docs2/docs/a.htm');
  assert.equal(ctx.response.header('Content-Type'), 'text/html; charset=UTF-8');
  assert.match(ctx.response.text(), /<h1>Object Moved<\/h1>This document may be found <a HREF="https:\/\/new.example\/docs2\/docs\/a.htm">here<\/a>/);
});

test('httpResponseStatus Permanent, Found, Temporary, PermRedirect → 301, 302, 307, 308', async () => {
  for (const [name, status] of [['Permanent', 301], ['Found', 302], ['Temporary', 307], ['PermRedirect', 308]] as const) {
    const ctx = await run({ url: '/x', section: on({ destination: '/y', httpResponseStatus: name }) });
    assert.equal(ctx.response.statusCode, status, name);
  }
});

test('one slash between destination and suffix; the folder URL itself appends nothing', async () => {
  assert.equal(await location({ url: '/old/a.htm', scope: '/old', section: on({ destination: 'http://new.example/' }) }), 'http://new.example/a.htm');
  assert.equal(await location({ url: '/old', scope: '/old', section: on({ destination: 'http://new.example/' }) }), 'http://new.example/');
  assert.equal(await location({ url: '/OLD/B.htm', scope: '/old', section: on({ destination: '/new' }) }), '/new/B.htm', 'folders match ignoring case');
});

test('exactDestination: the destination as written, with its variables', async () => {
  assert.equal(await location({ url: '/old/a/b.htm?q=1', scope: '/old', section: on({ destination: '/moved.htm', exactDestination: true }) }), '/moved.htm');
  assert.equal(
    await location({ url: '/old/a/b.htm?q=1&r=2', scope: '/old', section: on({ destination: 'https://new.example$V$Q', exactDestination: true }) }),
    'https://new.example/old/a/b.htm?q=1&r=2',
  );
  assert.equal(
    await location({ url: '/old/a b.htm?q=1', scope: '/old', section: on({ destination: '/n$S?p=$P', exactDestination: true }) }),
    '/n/a%20b.htm?p=q=1',
  );
  assert.equal(await location({ url: '/old/x', scope: '/old', section: on({ destination: '/n$Q', exactDestination: true }) }), '/n', 'no query: $Q is empty');
});

test('childOnly: the folder and its files, not its subfolders', async () => {
  const section = on({ destination: '/docs/v2', childOnly: true });
  assert.equal(await location({ url: '/docs/page.htm', scope: '/docs', section }), '/docs/v2/page.htm');
  assert.equal(await location({ url: '/docs/', scope: '/docs', section }), '/docs/v2/');
  assert.equal(await location({ url: '/docs/v2/page.htm', scope: '/docs', section }), undefined, 'no second redirect below the destination');
  assert.equal(await location({ url: '/docs/sub/', scope: '/docs', section }), undefined);
});

test('wildcards apply while destination is empty; $0… are what the *s took', async () => {
  const items: ElementSpec[] = [
    { attributes: { wildcard: '*.php', destination: '/default.htm' } },
    { attributes: { wildcard: '/catalog/*/item-*.htm', destination: '/shop/$0?id=$1' } },
  ];
  const exact = (attrs: Record<string, string | boolean>): ElementSpec => on({ exactDestination: true, ...attrs }, items);
  assert.equal(await location({ url: '/old/index.PHP', section: exact({}) }), '/default.htm');
  assert.equal(await location({ url: '/catalog/tools/item-42.htm', section: exact({}) }), '/shop/tools?id=42');
  assert.equal(await location({ url: '/other.htm', section: exact({}) }), undefined, 'no wildcard matches: served');
  assert.equal(await location({ url: '/old/index.php', section: exact({ destination: '/all' }) }), '/all', 'a destination wins over wildcards');
});

test('a request outside the configured folder is not redirected', async () => {
  assert.equal(await location({ url: '/oldish/a.htm', scope: '/old', section: on({ destination: '/new' }) }), undefined);
});

test('a redirect to the very same URL is not sent (it could only repeat); logged once', async () => {
  const section = on({ destination: '/same.htm', exactDestination: true });
  const first = await run({ url: '/same.htm', section });
  assert.equal(first.finished, false);
  assert.match(first.logs[0]?.message ?? '', /would redirect to itself/);
  const absolute = await run({ url: '/same.htm', host: 'www.example.com', section: on({ destination: 'http://www.example.com/same.htm', exactDestination: true }) });
  assert.equal(absolute.finished, false);
  const again = await run({ url: '/same.htm', section });
  assert.equal(again.logs.length, 0);
  // Another host is not a loop.
  assert.equal(await location({ url: '/same.htm', section: on({ destination: 'http://other.example/same.htm', exactDestination: true }) }), 'http://other.example/same.htm');
});

test('child requests (default documents, error pages) are not redirected', async () => {
  const ctx = new TestContext({
    root,
    url: '/a.htm',
    isChildRequest: true,
    sections: { [HTTP_REDIRECT_SECTION]: on({ destination: '/b' }) },
  });
  await runNotification(ctx, HttpRedirectionModule, 'MapRequestHandler');
  assert.equal(ctx.finished, false);
});

test('wildcard patterns and variable expansion', () => {
  assert.deepEqual(wildcardPattern('a*b*').exec('AxxByy')?.slice(1), ['xx', 'yy']);
  assert.equal(wildcardPattern('*.asp').test('dir/page.aspx'), false);
  assert.equal(wildcardPattern('(x)+[y].htm').test('(x)+[y].htm'), true, 'regex characters are literal');
  assert.equal(expandDestination('/a$S$P$Q$V$0$1$9$X$', { S: '/s', P: 'p=1', Q: '?p=1', V: '/v' }, ['zero', 'one']), '/a/sp=1?p=1/vzeroone$X$');
});
