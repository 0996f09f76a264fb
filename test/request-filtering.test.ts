/**
 * Request filtering end to end (issue 17, scope 6): a real Wharf with a rule of every kind
 * (test/fixtures/request-filtering). Each request breaks one rule and must get 404 with that
 * rule's sub-status in the W3C log line (sc-substatus), the way an administrator finds out which
 * rule refused a client; chunked uploads are cut off at maxAllowedContentLength; a folder's
 * web.config tightens the limits; alwaysAllowed* let their entries through; HTTP.sys's own limits
 * answer 400/414 in the listener before the module is reached.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, parseResponse, rawRequest, run, startWharf, tempDir, type RawResponse, type WharfProcess } from './helpers/wharf.js';
import { needs, tool } from './helpers/skip.js';

interface Case {
  readonly rule: string;
  readonly method?: string;
  /** Sent as latin1 bytes, exactly (no client normalisation of '..' or escapes). */
  readonly target: string;
  readonly headers?: Record<string, string>;
  readonly status: number;
  readonly subStatus: number;
}

/** One request per rule: what it breaks, and the answer IIS gives. */
const CASES: readonly Case[] = [
  { rule: 'fileExtensions: denied .bak', target: '/site.bak', status: 404, subStatus: 7 },
  { rule: 'verbs: denied DELETE', method: 'DELETE', target: '/ok.txt', status: 404, subStatus: 6 },
  { rule: 'hiddenSegments: private', target: '/private/secret.txt', status: 404, subStatus: 8 },
  { rule: 'hiddenSegments: web.config in a folder', target: '/strict/web.config', status: 404, subStatus: 8 },
  { rule: 'denyUrlSequences: ".." as sent (the listener resolves it)', target: '/strict/../ok.txt', status: 404, subStatus: 5 },
  { rule: 'denyUrlSequences: "old"', target: '/old.txt', status: 404, subStatus: 5 },
  { rule: 'alwaysAllowedUrls: /old-but-allowed.txt', target: '/old-but-allowed.txt', status: 200, subStatus: 0 },
  { rule: 'denyQueryStringSequences: raw', target: '/ok.txt?q=<script>', status: 404, subStatus: 18 },
  { rule: 'denyQueryStringSequences: escaped (unescapeQueryString)', target: '/ok.txt?q=%3CScript%3E', status: 404, subStatus: 18 },
  { rule: 'alwaysAllowedQueryStrings: demo=%3Cscript', target: '/ok.txt?demo=%3Cscript', status: 200, subStatus: 0 },
  { rule: 'requestLimits maxUrl 200', target: '/' + 'u'.repeat(250) + '.txt', status: 404, subStatus: 14 },
  { rule: 'requestLimits maxQueryString 100', target: '/ok.txt?q=' + 'x'.repeat(120), status: 404, subStatus: 15 },
  { rule: 'headerLimits X-Token 20', target: '/ok.txt', headers: { 'X-Token': 't'.repeat(30) }, status: 404, subStatus: 10 },
  { rule: 'allowDoubleEscaping false: %252e', target: '/a%252e.txt', status: 404, subStatus: 11 },
  { rule: 'allowDoubleEscaping false: +', target: '/a+b.txt', status: 404, subStatus: 11 },
  { rule: 'allowHighBitCharacters false', target: '/caf%C3%A9.txt', status: 404, subStatus: 12 },
  { rule: 'filteringRule scanUrl', target: '/drop%20table.txt', status: 404, subStatus: 19 },
  { rule: 'filteringRule scanQueryString', target: '/ok.txt?q=DROP%20TABLE', status: 404, subStatus: 19 },
  { rule: 'filteringRule scanHeaders User-Agent', target: '/ok.txt', headers: { 'User-Agent': 'x-drop table' }, status: 404, subStatus: 19 },
  { rule: 'filteringRule appliesTo .txt only', target: '/missing.htm?q=drop%20table', status: 404, subStatus: 0 },
  { rule: 'filteringRule denyUnescapedPercent (default true)', target: '/ok.txt?q=100%', status: 404, subStatus: 19 },
  { rule: 'filteringRule scanAllRaw: a header name', target: '/ok.txt', headers: { 'X-Evil-Probe': '1' }, status: 404, subStatus: 19 },
  { rule: 'site limits maxUrlSegments 8', target: '/a/b/c/d/e/f/g/h/i.txt', status: 404, subStatus: 20 },
  { rule: 'maxAllowedContentLength: Content-Length over 100000', method: 'POST', target: '/upload.up', headers: { 'Content-Length': '200000' }, status: 404, subStatus: 13 },
  { rule: 'web.config tightens maxQueryString to 10 in /strict', target: '/strict/ok.txt?q=123456789', status: 404, subStatus: 15 },
  { rule: 'the same query string outside /strict', target: '/ok.txt?q=123456789', status: 200, subStatus: 0 },
  { rule: 'several rules broken: the verb is checked first', method: 'DELETE', target: '/private/old.bak', status: 404, subStatus: 6 },
  { rule: 'several rules broken: hidden segment before extension and sequence', target: '/private/old.bak', status: 404, subStatus: 8 },
];

let marker = 0;

/** One request on its own connection; a User-Agent marker (unless the case sets one) finds its W3C record. */
async function send(port: number, c: Pick<Case, 'method' | 'target' | 'headers'>): Promise<{ r: RawResponse; ua: string }> {
  const ua = c.headers?.['User-Agent'] ?? `rf-${++marker}.`;
  const h: Record<string, string> = { Host: 'localhost', Connection: 'close', 'User-Agent': ua, ...(c.headers ?? {}) };
  const head = `${c.method ?? 'GET'} ${c.target} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return { r: parseResponse(await rawRequest(port, Buffer.from(head, 'latin1'), { timeoutMs: 10000 })), ua };
}

/** The W3C record of the request sent with User-Agent `ua` (W3C writes its spaces as '+'). */
function record(w: WharfProcess, ua: string): Promise<Record<string, string>> {
  const logged = ua.replace(/ /g, '+');
  return eventually(() => w.w3cRecords(1).find((x) => x['cs(User-Agent)'] === logged), 5000);
}

describe('request filtering: every rule, its sub-status in the W3C log', () => {
  let w: WharfProcess;
  // All cases are sent at start, one connection each, so their log lines are flushed together.
  const answers = new Map<Case, Promise<{ r: RawResponse; ua: string }>>();
  before(async () => {
    w = await startWharf({ fixture: 'request-filtering' });
    for (const c of CASES) answers.set(c, send(w.port, c));
  });
  after(async () => {
    await w?.stop();
  });

  for (const c of CASES) {
    test(`${c.rule} → ${c.status}.${c.subStatus}`, async () => {
      const { r, ua } = await answers.get(c)!;
      assert.equal(r.status, c.status, `${c.method ?? 'GET'} ${c.target}`);
      const rec = await record(w, ua);
      assert.equal(rec['sc-status'], String(c.status));
      assert.equal(rec['sc-substatus'], String(c.subStatus));
    });
  }

  test('HTTP.sys limits answer first: 400 for a header past MaxFieldLength, 414 for a URL past MaxRequestBytes, both before 404.10/404.14', async () => {
    const field = await send(w.port, { target: '/ok.txt', headers: { 'X-Token': 't'.repeat(20000) } });
    assert.equal(field.r.status, 400);
    assert.equal(field.r.headers['server'], 'Wharf-HTTPAPI/1.0', 'answered by the listener');
    const url = '/' + 'seg45678901234567890/'.repeat(800) + 'x.txt'; // 17 KB of 22-byte segments
    const long = await send(w.port, { target: url });
    assert.equal(long.r.status, 414);
    assert.equal(long.r.headers['server'], 'Wharf-HTTPAPI/1.0');
    await eventually(() => w.httpErrLines().some((l) => l.split(' ')[12] === 'FieldLength'));
    await eventually(() => w.httpErrLines().some((l) => l.split(' ')[12] === 'URL_Length'));
    // Neither reached a worker, so neither has a W3C line.
    await new Promise((res) => setTimeout(res, 300));
    const uas = new Set(w.w3cRecords(1).map((x) => x['cs(User-Agent)']));
    assert.equal(uas.has(field.ua), false);
    assert.equal(uas.has(long.ua), false);
  });

  test('a chunked upload is counted as it streams: past the limit → 404.13 long before the body ends, for a module handler and a Node.js app', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const dir = tempDir('wharf-rf-');
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(32 * 1024 * 1024, 0x61));
    const small = join(dir, 'small.bin');
    writeFileSync(small, Buffer.alloc(900, 0x62));
    const mid = join(dir, 'mid.bin');
    writeFileSync(mid, Buffer.alloc(50_000, 0x63));
    const upload = async (file: string, path: string, ua: string): Promise<{ code: string; body: string }> => {
      const out = join(dir, `${ua}.out`);
      const r = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', '-A', ua, '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `http://127.0.0.1:${w.port}${path}`]);
      return { code: r.stdout.trim(), body: readFileSync(out, 'utf8') };
    };

    const over = await upload(big, '/strict/upload.up', 'rf-chunked-over.');
    assert.equal(over.code, '404', 'curl saw the 404 answer');
    const rec = await record(w, 'rf-chunked-over.');
    assert.equal(rec['sc-status'], '404');
    assert.equal(rec['sc-substatus'], '13');
    const received = Number(rec['cs-bytes']);
    assert.ok(received < 8 * 1024 * 1024, `the server had read ${received} of 32 MiB when it answered`);

    // Under the folder's limit, and over it but under the site's: the handler reads it whole.
    const ok = await upload(small, '/strict/upload.up', 'rf-chunked-small.');
    assert.equal(ok.code, '200');
    assert.equal(ok.body, 'received 900\n');
    const site = await upload(mid, '/upload.up', 'rf-chunked-site.');
    assert.equal(site.code, '200');
    assert.equal(site.body, 'received 50000\n');
    assert.equal((await record(w, 'rf-chunked-site.'))['sc-substatus'], '0');

    // A hosted Node.js application reading the body: the same 404.13, its own answer never sent.
    const app = await upload(big, '/app/server.js', 'rf-chunked-app.');
    assert.equal(app.code, '404');
    assert.equal((await record(w, 'rf-chunked-app.'))['sc-substatus'], '13');
    const appOk = await upload(mid, '/app/server.js', 'rf-chunked-app-ok.');
    assert.equal(appOk.code, '200');
    assert.equal(appOk.body, 'received 50000\n');

    // The worker keeps serving.
    assert.equal((await send(w.port, { target: '/ok.txt' })).r.status, 200);
  });
});
