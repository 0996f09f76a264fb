/**
 * Requests built to hurt: URLs of thousands of segments or with over-long names, absolute-form
 * targets naming another site, raw non-UTF-8 bytes, `GET *`, bodies of gigabytes behind an early
 * answer, values that would split a log line. Each is answered the way HTTP.sys answers it, quickly,
 * and the pool keeps serving everyone else (issue 14, items 9–13, 16, 17).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { eventually, parseResponse, rawRequest, startWharf, WHARF_BIN, type RawResponse, type WharfProcess } from './helpers/wharf.js';

const DEFAULTS = { MAXSEGMENTS: '32', MAXURL: '4096' };

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `VmRSS of ${pid}`);
  return Number(m[1]) / 1024;
}

/** One request on its own connection (Connection: close); `target` and headers go out as latin1 bytes. */
async function send(port: number, method: string, target: string, headers: Record<string, string> = {}, version = 'HTTP/1.1'): Promise<RawResponse> {
  const h = { Host: 'localhost', Connection: 'close', ...headers };
  const head = `${method} ${target} ${version}\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  return parseResponse(await rawRequest(port, Buffer.from(head, 'latin1'), { timeoutMs: 30000 }));
}

/** A request that must be served quickly: not from the listener's cache (the query), by a worker. */
async function timedOk(port: number, n: number): Promise<{ ms: number; r: RawResponse }> {
  const t0 = performance.now();
  const r = await send(port, 'GET', `/ok.txt?n=${n}`);
  return { ms: performance.now() - t0, r };
}

/** W3C records of a site as field-name → value maps, using the file's own #Fields lines. */
function w3cRecords(w: WharfProcess, siteId: number): Array<Record<string, string>> {
  const dir = join(w.systemDrive, 'inetpub', 'logs', 'LogFiles', `W3SVC${siteId}`);
  const out: Array<Record<string, string>> = [];
  let fields: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const f of names) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\r\n')) {
      if (line.startsWith('#Fields: ')) fields = line.slice(9).split(' ');
      else if (line !== '' && !line.startsWith('#')) out.push(Object.fromEntries(line.split(' ').map((v, i) => [fields[i] ?? `#${i}`, v])));
    }
  }
  return out;
}


/**
 * Sends `head`, then body bytes as fast as the connection takes them (chunked or raw), up to
 * `maxBytes`, until the server ends the connection. Returns what came back and how much was sent.
 */
function sendEndlessBody(port: number, head: string, chunked: boolean, maxBytes: number): Promise<{ response: string; sent: number; ms: number }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const frame = chunked ? Buffer.concat([Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n')]) : piece;
    const t0 = performance.now();
    let response = '';
    let sent = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ response, sent, ms: performance.now() - t0 });
      s.destroy();
    };
    const pump = (): void => {
      while (!done && sent < maxBytes) {
        sent += piece.length;
        if (!s.write(frame)) {
          s.once('drain', pump);
          return;
        }
      }
    };
    const timer = setTimeout(finish, 30000);
    s.on('data', (d: Buffer) => (response += d.toString('latin1')));
    s.on('end', finish);
    s.on('close', finish);
    s.on('error', finish);
    s.write(head);
    pump();
  });
}

describe('HTTP.sys limits and request shapes (default limits)', () => {
  let w: WharfProcess;
  let workerPid = 0;
  before(async () => {
    w = await startWharf({ fixture: 'hostile', vars: DEFAULTS });
    const r = await send(w.port, 'GET', '/ok.txt?warm');
    assert.equal(r.status, 200);
    workerPid = Number(r.headers['x-pid']);
    assert.ok(workerPid > 0);
  });
  after(async () => {
    await w?.stop();
  });

  test('6,000 segments: 400 from the listener (httperr URL) at once; the pool keeps serving; the worker does not grow', async () => {
    const url = '/a'.repeat(6000); // about 12 KB, within MaxRequestBytes
    const rssBefore = rssMiB(workerPid);
    const t0 = performance.now();
    const hostile = Promise.all([0, 1, 2].map(() => send(w.port, 'GET', url)));
    const ok = await timedOk(w.port, 1);
    const answers = await hostile;
    const hostileMs = performance.now() - t0;
    for (const r of answers) {
      assert.equal(r.status, 400);
      assert.equal(r.headers['server'], 'Wharf-HTTPAPI/1.0', 'answered by the listener, not a worker');
    }
    assert.ok(hostileMs < 5000, `answered in ${Math.round(hostileMs)} ms`);
    assert.equal(ok.r.status, 200);
    assert.ok(ok.ms < 1000, `the other request took ${Math.round(ok.ms)} ms`);
    assert.equal(Number(ok.r.headers['x-pid']), workerPid, 'the same worker still serves');
    assert.ok(rssMiB(workerPid) - rssBefore < 32, `worker RSS ${rssBefore} → ${rssMiB(workerPid)} MiB`);
    const lines = await eventually(() => {
      const l = w.httpErrLines().filter((x) => x.split(' ')[12] === 'URL' && x.includes(' /a/a/a/'));
      return l.length >= 3 ? l : undefined;
    });
    assert.equal(lines[0]!.split(' ')[10], '400');
  });

  test('255 segments pass the listener; request filtering then answers 404.20 (maxUrlSegments 32)', async () => {
    const r = await send(w.port, 'GET', '/s'.repeat(255) + '?marker=segments255');
    assert.equal(r.status, 404);
    assert.equal((await send(w.port, 'GET', '/s'.repeat(256))).status, 400);
    const rec = await eventually(() => w3cRecords(w, 1).find((x) => x['cs-uri-query'] === 'marker=segments255'));
    assert.equal(rec['sc-status'], '404');
    assert.equal(rec['sc-substatus'], '20');
  });

  test('a segment over 260 characters is the listener\'s 400; one the file system cannot hold is a 404 logged once, shortened', async () => {
    const long = await send(w.port, 'GET', '/' + 'x'.repeat(300));
    assert.equal(long.status, 400);
    assert.equal(long.headers['server'], 'Wharf-HTTPAPI/1.0');
    await eventually(() => w.httpErrLines().some((l) => l.split(' ')[12] === 'URL' && l.includes('/' + 'x'.repeat(300))));

    // 250 characters that are 500 bytes of UTF-8: within UrlSegmentMaxLength, over Linux's
    // 255-byte NAME_MAX. A 404, not a 500.19, and the server log says so once, shortened.
    const before = w.output().length;
    const r = await send(w.port, 'GET', '/' + '%C3%A9'.repeat(250) + '.txt');
    assert.equal(r.status, 404);
    const logged = await eventually(() => {
      const l = w.output().slice(before).split('\n').filter((x) => x.includes('ENAMETOOLONG'));
      return l.length > 0 ? l : undefined;
    });
    await new Promise((res) => setTimeout(res, 300));
    const all = w.output().slice(before).split('\n').filter((x) => x.includes('ENAMETOOLONG') || x.includes('éééééééééé'));
    assert.equal(all.length, 1, `one line: ${all.join('\n')}`);
    assert.ok(logged[0]!.length < 600, `shortened: ${logged[0]!.length} characters`);
    assert.match(logged[0]!, /characters\)/);
    // 258 ASCII characters: the same 404; reported again only a minute later (clients choose these).
    assert.equal((await send(w.port, 'GET', '/' + 'b'.repeat(258))).status, 404);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(w.output().slice(before).split('\n').filter((x) => x.includes('ENAMETOOLONG')).length, 1);
    assert.doesNotMatch(w.output().slice(before), /500\.19/);
  });

  test('absolute-form: the target\'s authority replaces Host for routing, the worker and the W3C cs-host', async () => {
    const r = await send(w.port, 'GET', 'http://b.test/', { Host: 'a.test', 'User-Agent': 'absolute-form-test' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString().trim(), 'site b');
    assert.equal(r.headers['x-http-host'], 'b.test');
    assert.equal(r.headers['x-server-name'], 'b.test');
    const rec = await eventually(() => w3cRecords(w, 3).find((x) => x['cs(User-Agent)'] === 'absolute-form-test'));
    assert.equal(rec['cs-host'], 'b.test');
    assert.equal(w3cRecords(w, 2).filter((x) => x['cs(User-Agent)'] === 'absolute-form-test').length, 0, 'nothing in site a\'s log');
    // HTTP/1.0 without any Host header: the authority is the host.
    const r10 = parseResponse(await rawRequest(w.port, `GET http://a.test:${w.port}/ HTTP/1.0\r\n\r\n`));
    assert.equal(r10.status, 200);
    assert.equal(r10.body.toString().trim(), 'site a');
    // An authority that is not a valid host (userinfo is not allowed in http URIs, RFC 9110 §4.2.4).
    const bad = await send(w.port, 'GET', 'http://user@b.test/', { Host: 'a.test' });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['server'], 'Wharf-HTTPAPI/1.0');
    await eventually(() => w.httpErrLines().some((l) => l.includes('http://user@b.test/') && l.split(' ')[12] === 'Hostname'));
  });

  test('raw UTF-8 bytes and %-escapes name the same file; bytes that are not UTF-8 are read as Windows-1252', async () => {
    writeFileSync(join(w.root, 'wwwroot', 'café.txt'), 'coffee\n');
    const raw = await send(w.port, 'GET', '/caf\u00c3\u00a9.txt'); // the bytes C3 A9, unescaped
    const escaped = await send(w.port, 'GET', '/caf%C3%A9.txt');
    const ansiRaw = await send(w.port, 'GET', '/caf\u00e9.txt'); // the byte E9 alone: not UTF-8
    const ansiEscaped = await send(w.port, 'GET', '/caf%E9.txt');
    for (const r of [raw, escaped, ansiRaw, ansiEscaped]) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'coffee\n');
    }
    // C1 controls, raw or escaped, are refused (HTTP.sys AllowRestrictedChars=0).
    assert.equal((await send(w.port, 'GET', '/a%C2%85b.txt')).status, 400);
  });

  test('asterisk-form: GET * is 400; OPTIONS * is answered as before', async () => {
    const g = await send(w.port, 'GET', '*');
    assert.equal(g.status, 400);
    assert.equal(g.headers['location'], undefined);
    await eventually(() => w.httpErrLines().some((l) => / GET \* /.test(l) && l.split(' ')[12] === 'URL'));
    const o = await send(w.port, 'OPTIONS', '*');
    assert.equal(o.status, 200);
    assert.match(o.headers['allow'] ?? o.headers['public'] ?? '', /GET/);
  });

  test('after an early 404.13 or 405 the listener drains a bounded amount, then closes; others keep being served', async () => {
    // 1 GiB announced; maxAllowedContentLength is 1000: 404.13 from the worker at once.
    const a = await sendEndlessBody(w.port, 'POST /ok.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1073741824\r\n\r\n', false, 1 << 30);
    assert.match(a.response, /^HTTP\/1\.1 404 /);
    assert.ok(a.sent < 64 * 1024 * 1024, `the connection closed after ${a.sent} body bytes were written`);
    assert.ok(a.ms < 15000, `closed after ${Math.round(a.ms)} ms`);
    // A chunked body of unknown length to a static file: 405, the same bound.
    const b = await sendEndlessBody(w.port, 'PUT /ok.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n', true, 1 << 30);
    assert.match(b.response, /^HTTP\/1\.1 405 /);
    assert.ok(b.sent < 64 * 1024 * 1024, `the connection closed after ${b.sent} body bytes were written`);
    assert.equal((await timedOk(w.port, 2)).r.status, 200);
    // A small rest is still drained, and the connection carries the next request.
    const body = 'x'.repeat(100_000);
    const two = await rawRequest(
      w.port,
      `POST /ok.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /ok.txt?after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
      { timeoutMs: 10000 },
    );
    assert.match(two, /^HTTP\/1\.1 404 /);
    assert.match(two, /HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nok\n$/);
  });

  test('W3C values cannot break a record: NEL, U+2028 and other controls become +', async () => {
    const r = await send(w.port, 'GET', '/line%E2%80%A8break.txt', { 'User-Agent': 'nel\u00c2\u0085here' });
    assert.equal(r.status, 404);
    const rec = await eventually(() => w3cRecords(w, 1).find((x) => x['cs-uri-stem']?.startsWith('/line')));
    assert.equal(rec['cs-uri-stem'], '/line+break.txt');
    assert.equal(rec['cs(User-Agent)'], 'nel\u00c2+here');
    const dir = join(w.systemDrive, 'inetpub', 'logs', 'LogFiles', 'W3SVC1');
    for (const f of readdirSync(dir)) assert.doesNotMatch(readFileSync(join(dir, f), 'utf8'), /[\u0085\u2028\u2029]/);
  });
});

describe('raised limits (WHARF_HTTP_PARAMETERS, maxUrl, maxUrlSegments): the worker stays bounded', () => {
  let w: WharfProcess;
  let workerPid = 0;
  before(async () => {
    w = await startWharf({
      fixture: 'hostile',
      vars: { MAXSEGMENTS: '16383', MAXURL: '65536' },
      env: { WHARF_HTTP_PARAMETERS: 'UrlSegmentMaxCount=16383; UrlSegmentMaxLength=32766; MaxRequestBytes=65536' },
    });
    const r = await send(w.port, 'GET', '/files/sub/deep.txt');
    assert.equal(r.status, 200);
    workerPid = Number(r.headers['x-pid']);
  });
  after(async () => {
    await w?.stop();
  });

  test('2,000 and 15,000 segments reach the worker and are answered 404 quickly; the pool stays responsive and flat', async () => {
    const rssBefore = rssMiB(workerPid);
    for (const url of ['/files/sub/' + 'x/'.repeat(2000) + 'end.txt', '/a'.repeat(15000)]) {
      const t0 = performance.now();
      const hostile = send(w.port, 'GET', url);
      const ok = await timedOk(w.port, url.length);
      const r = await hostile;
      const ms = performance.now() - t0;
      assert.equal(r.status, 404, `${url.length}-byte URL`);
      // The levels that exist are still resolved: the web.config of /files/sub applies.
      if (url.startsWith('/files/sub/')) assert.equal(r.headers['x-deep'], 'yes');
      assert.notEqual(r.headers['server'], 'Wharf-HTTPAPI/1.0', 'answered by the worker');
      assert.ok(ms < 5000, `answered in ${Math.round(ms)} ms`);
      assert.equal(ok.r.status, 200);
      assert.ok(ok.ms < 1000, `the other request took ${Math.round(ok.ms)} ms`);
    }
    assert.ok(rssMiB(workerPid) - rssBefore < 64, `worker RSS ${rssBefore} → ${rssMiB(workerPid)} MiB`);
    assert.equal((await send(w.port, 'GET', '/files/sub/deep.txt?again')).headers['x-pid'], String(workerPid), 'the same worker');
  });

  test('a parameter Wharf does not know stops the start with its name', () => {
    const r = spawnSync(process.execPath, [WHARF_BIN, 'start', '--config', w.configFile, '--system-drive', w.systemDrive], {
      env: { ...process.env, WHARF_HTTP_PARAMETERS: 'UrlSegmentMaxCnt=10' },
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /WHARF_HTTP_PARAMETERS: unknown parameter 'UrlSegmentMaxCnt'/);
  });
});
