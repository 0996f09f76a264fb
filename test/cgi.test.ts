/**
 * CGI programs under CgiModule, driven by curl: `#!/bin/sh` scripts that run themselves, Perl
 * scripts through a scriptProcessor, php-cgi as a plain CGI program. What the programs see (the
 * CGI variables, the body), what the client gets (status lines, headers, redirects, streamed
 * bodies), IIS's errors (502.1 timeout, 502.2 bad head, 404.2 restriction, 403.1 not executable)
 * and that no program outlives its request or its worker.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alive, eventually, get, run, startWharf, tempDir, type WharfProcess } from './helpers/wharf.js';
import { needs, phpCgi, tool } from './helpers/skip.js';
import { workerPids } from '../bench/procs.js';

interface Reply {
  readonly status: number;
  readonly statusLine: string;
  /** Header values by lower-case name, one entry per header line. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: Buffer;
  text(): string;
}

/** Processes whose command line contains `marker` (the test's own curl excluded). */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(marker) && !cmd.startsWith('curl')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}


describe('CGI programs (CgiModule)', () => {
  let w: WharfProcess;
  let work: string;
  let n = 0;
  /** Requests curl() sent, per URL path: the W3C records to wait for. */
  const sent = new Map<string, number>();

  before(async () => {
    work = tempDir('wharf-cgi-client-');
    w = await startWharf({ fixture: 'cgi' });
  });
  after(async () => {
    await w?.stop();
  });

  /** curl, headers and body to files (binary-safe); extra arguments before the URL. */
  async function curl(path: string, ...args: string[]): Promise<Reply> {
    const id = ++n;
    const stem = path.split('?')[0]!;
    sent.set(stem, (sent.get(stem) ?? 0) + 1);
    const headFile = join(work, `h${id}`);
    const bodyFile = join(work, `b${id}`);
    const r = await run('curl', ['-sS', '--max-time', '30', '-D', headFile, '-o', bodyFile, ...args, `http://127.0.0.1:${w.port}${path}`], 40_000);
    assert.equal(r.code, 0, `curl ${path}: ${r.stderr}`);
    // The last head: curl writes a 100 Continue's head first when it sent Expect.
    const blocks = readFileSync(headFile, 'latin1').split('\r\n\r\n').filter((b) => b !== '');
    const lines = blocks.at(-1)!.split('\r\n');
    const headers = new Map<string, string[]>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i <= 0) continue;
      const name = l.slice(0, i).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), l.slice(i + 1).trim()]);
    }
    let body: Buffer;
    try {
      body = readFileSync(bodyFile);
    } catch {
      body = Buffer.alloc(0);
    }
    return { status: Number(lines[0]!.split(' ')[1]), statusLine: lines[0]!, headers, body, text: () => body.toString('utf8') };
  }

  /** NAME=value lines of env.pl. */
  function variables(reply: Reply): Map<string, string> {
    const m = new Map<string, string>();
    for (const line of reply.text().split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
    }
    return m;
  }

  /** The W3C record of the last request curl() sent for `stem`, once it is written. */
  async function logged(stem: string): Promise<Record<string, string>> {
    const count = sent.get(stem) ?? 0;
    return eventually(() => w.w3cRecords(1).filter((r) => r['cs-uri-stem'] === stem)[count - 1], 10_000);
  }

  it('a #!/bin/sh script sets the status line with its reason, two Set-Cookie lines and its own header', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/headers.cgi');
    assert.equal(r.statusLine, 'HTTP/1.1 201 Made Here');
    assert.deepEqual(r.headers.get('set-cookie'), ['first=1; Path=/', 'second=2; Path=/']);
    assert.deepEqual(r.headers.get('x-cgi'), ['sh']);
    assert.deepEqual(r.headers.get('content-type'), ['text/plain']);
    assert.equal(r.text(), 'created by GET\n');
    // HEAD: the same head, no body bytes after it.
    const head = await get(w.port, '/headers.cgi', {}, 'HEAD');
    assert.equal(head.status, 201);
    assert.equal(head.body.length, 0);
  });

  it('a Perl script run through scriptProcessor sees the CGI variables, and nothing of the worker', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/env.pl/extra/info?a=1&b=two%20words', '-H', 'X-Test: yes', '-H', 'Proxy: http://evil.example:3128');
    assert.equal(r.status, 200);
    const v = variables(r);
    assert.equal(v.get('REQUEST_METHOD'), 'GET');
    assert.equal(v.get('QUERY_STRING'), 'a=1&b=two%20words');
    assert.equal(v.get('SCRIPT_NAME'), '/env.pl');
    assert.equal(v.get('PATH_INFO'), '/extra/info', 'allowPathInfo="true": the tail of the URL');
    assert.equal(v.get('SCRIPT_FILENAME'), join(w.root, 'www', 'env.pl'));
    assert.equal(v.get('REQUEST_URI'), '/env.pl/extra/info?a=1&b=two%20words');
    assert.equal(v.get('GATEWAY_INTERFACE'), 'CGI/1.1');
    assert.equal(v.get('SERVER_SOFTWARE'), 'Microsoft-IIS/10.0 (Wharf)');
    assert.equal(v.get('SERVER_PORT'), String(w.port));
    assert.equal(v.get('REMOTE_ADDR'), '127.0.0.1');
    assert.equal(v.get('HTTP_X_TEST'), 'yes');
    assert.equal(v.get('HTTP_PROXY'), undefined, 'httpoxy: a Proxy header never becomes HTTP_PROXY');
    assert.equal(v.get('REDIRECT_STATUS'), '200');
    assert.equal(v.get('CONTENT_LENGTH'), '');
    assert.equal(v.get('APP_POOL_ID'), 'CgiPool');
    assert.equal(v.get('ARGS'), '', 'a query with "=" gives no search words');
    assert.ok((v.get('PATH') ?? '') !== '', 'PATH is set');
    // Only CGI and IIS variables, plus PATH: no HOME, LANG, NODE_*, WHARF_* of the worker.
    const known = /^(HTTP_[A-Z0-9_]+|HTTPS|CERT_[A-Z_]+|[A-Z_]+)$/;
    v.delete('BODY-LENGTH');
    v.delete('ARGS');
    const leaked = [...v.keys()].filter((k) => !known.test(k) || /^(HOME|USER|LOGNAME|LANG|LC_[A-Z]+|SHELL|TZ|PWD|TMPDIR)$|^(NODE|WHARF|npm)_/i.test(k));
    assert.deepEqual(leaked, []);
    // RFC 3875 §4.4: a query without '=' is search words, passed as arguments after the script.
    assert.equal(variables(await curl('/env.pl?one+two%20three')).get('ARGS'), 'one|two three');
    // A script that runs itself gets them too.
    assert.equal((await curl('/args.cgi?a+b%20c')).text(), '[a]\n[b c]\n');
  });

  it('POST bodies reach the program: a form, a Content-Length upload and a chunked one, streamed back', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const form = variables(await curl('/env.pl', '--data', 'field=hello'));
    assert.equal(form.get('REQUEST_METHOD'), 'POST');
    assert.equal(form.get('CONTENT_LENGTH'), '11');
    assert.equal(form.get('CONTENT_TYPE'), 'application/x-www-form-urlencoded');
    assert.equal(form.get('BODY-LENGTH'), '11');

    const file = join(work, 'upload.bin');
    const data = randomBytes(1_500_000);
    writeFileSync(file, data);
    const digest = createHash('sha256').update(data).digest('hex');
    const sized = await curl('/echo.pl', '--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream');
    assert.equal(sized.status, 200);
    assert.deepEqual(sized.headers.get('x-told-length'), ['1500000']);
    assert.equal(createHash('sha256').update(sized.body).digest('hex'), digest);
    // A chunked body is read whole first, so the program is told its length (past 256 KiB it waits in a file).
    const chunked = await curl('/echo.pl', '--data-binary', `@${file}`, '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Type: application/octet-stream');
    assert.equal(chunked.status, 200);
    assert.deepEqual(chunked.headers.get('x-told-length'), ['1500000']);
    assert.equal(createHash('sha256').update(chunked.body).digest('hex'), digest);
    // Past requestFiltering maxAllowedContentLength (4,000,000 here) a chunked body is refused: 404.13.
    const huge = join(work, 'huge.bin');
    writeFileSync(huge, Buffer.alloc(5_000_000, 1));
    const refused = await curl('/echo.pl', '--data-binary', `@${huge}`, '-H', 'Transfer-Encoding: chunked', '-H', 'Content-Type: application/octet-stream');
    assert.equal(refused.status, 404);
    const rec = await logged('/echo.pl');
    assert.deepEqual([rec['sc-status'], rec['sc-substatus']], ['404', '13']);
  });

  it('a large answer streams to a slow client', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/big.pl?n=6', '--limit-rate', '3M');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 6 * 1024 * 1024);
    assert.ok(r.body.every((b) => b === 0x78));
  });

  it('a Location that is a URL is a client redirect: 302', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/client-redirect.cgi');
    assert.equal(r.status, 302);
    assert.deepEqual(r.headers.get('location'), ['http://elsewhere.example/landing?from=cgi']);
  });

  it('a Location that is a local path is served in place, as a GET (RFC 3875 §6.2.2)', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/local-redirect.cgi');
    assert.equal(r.status, 200);
    assert.equal(r.text(), 'the local redirect target\n');
    assert.equal(r.headers.get('location'), undefined);
    // A POST redirected to another program: that one runs as a GET without the body.
    const env = variables(await curl('/local-redirect.cgi?to=/env.pl', '--data', 'field=x'));
    assert.equal(env.get('REQUEST_METHOD'), 'GET');
    assert.equal(env.get('SCRIPT_NAME'), '/env.pl');
    assert.equal(env.get('CONTENT_LENGTH'), '');
    assert.equal(env.get('QUERY_STRING'), '');
    assert.equal(env.get('BODY-LENGTH'), '0');
  });

  it('502.2 for a program that ends without a valid head, with the reason on the detailed page', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/no-head.cgi');
    assert.equal(r.status, 502);
    assert.match(r.text(), /502\.2/);
    assert.match(r.text(), /hello without headers/, 'the detailed page quotes what the program wrote');
    const rec = await logged('/no-head.cgi');
    assert.deepEqual([rec['sc-status'], rec['sc-substatus']], ['502', '2']);
    const silent = await curl('/silent.cgi');
    assert.equal(silent.status, 502);
    assert.match(silent.text(), /exited with code 3/);
    // Its stderr went to the pool's log.
    await w.waitForOutput(/silent\.cgi is failing on purpose/);
  });

  it("stderr lines go to the pool's log", async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl('/warn.pl');
    assert.equal(r.text(), 'ok\n');
    await w.waitForOutput(/warn\.pl says hello on stderr/);
  });

  it('502.1 when the cgi timeout passes: the program and its children are killed', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const started = Date.now();
    const r = await curl('/slow/slow.cgi');
    assert.equal(r.status, 502);
    assert.match(r.text(), /502\.1/);
    assert.ok(Date.now() - started >= 1900, 'the 2-second timeout of /slow');
    const rec = await logged('/slow/slow.cgi');
    assert.deepEqual([rec['sc-status'], rec['sc-substatus'], rec['sc-win32-status']], ['502', '1', '1460']);
    await eventually(() => processesWith('sleep 4242.5').length === 0 && processesWith('slow.cgi').length === 0, 5000);
  });

  it('a client that leaves ends its program; so does a worker killed with SIGKILL', async (t) => {
    if (!needs(t, tool('curl'))) return;
    // The client gives up while the program runs (its answer waits in the 4 MiB response buffer).
    const impatient = spawn('curl', ['-sS', '--max-time', '20', `http://127.0.0.1:${w.port}/hang/hang.cgi`], { stdio: 'ignore' });
    try {
      await eventually(() => processesWith('sleep 4343.5').length === 1, 10_000);
    } finally {
      impatient.kill();
    }
    await eventually(() => processesWith('sleep 4343.5').length === 0 && processesWith('hang.cgi').length === 0, 5000);

    // A worker that dies with the program running (no code of its own runs): its watchdog ends it.
    // (The listener replays the GET on a new worker, which starts the program again: the test
    // follows the first program's processes by pid.)
    const client = spawn('curl', ['-sS', '--max-time', '20', `http://127.0.0.1:${w.port}/hang/hang.cgi`], { stdio: 'ignore' });
    try {
      await eventually(() => processesWith('sleep 4343.5').length === 1, 10_000);
      const programs = [...processesWith('sleep 4343.5'), ...processesWith('hang.cgi')];
      assert.equal(programs.length, 2, 'hang.cgi and its sleep');
      const [worker] = workerPids(w.child.pid!, 'CgiPool');
      assert.ok(worker !== undefined, 'the pool has a worker');
      process.kill(worker, 'SIGKILL');
      await eventually(() => programs.every((pid) => !alive(pid)), 5000);
    } finally {
      client.kill();
    }
    await eventually(() => processesWith('sleep 4343.5').length === 0 && processesWith('hang.cgi').length === 0, 5000);
    // The pool serves on with a new worker.
    assert.equal((await curl('/headers.cgi')).status, 201);
  });

  it('isapiCgiRestriction: 404.2 unless listed with allowed="true"; a file without x is 403.1', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const unlisted = await curl('/unlisted.cgi');
    assert.equal(unlisted.status, 404);
    assert.match(unlisted.text(), /404\.2/);
    const rec = await logged('/unlisted.cgi');
    assert.deepEqual([rec['sc-status'], rec['sc-substatus']], ['404', '2']);
    assert.equal((await curl('/denied.cgi')).status, 404);
    const noexec = await curl('/noexec.cgi');
    assert.equal(noexec.status, 403);
    const rec2 = await logged('/noexec.cgi');
    assert.deepEqual([rec2['sc-status'], rec2['sc-substatus']], ['403', '1']);

    // notListedCgisAllowed="true" lets unlisted programs run; an entry with allowed="false" still refuses.
    const text = readFileSync(w.configFile, 'utf8');
    writeFileSync(w.configFile, text.replace('notListedCgisAllowed="false"', 'notListedCgisAllowed="true"'));
    await eventually(async () => (await curl('/unlisted.cgi')).status === 200, 10_000);
    assert.equal((await curl('/unlisted.cgi')).text(), 'unlisted ran\n');
    assert.equal((await curl('/denied.cgi')).status, 404);
    writeFileSync(w.configFile, text);
    await eventually(async () => (await curl('/unlisted.cgi')).status === 404, 10_000);
  });

  it('php-cgi as a CGI program: headers, cookies, GET and POST variables, status', async (t) => {
    if (!needs(t, tool('curl'), phpCgi())) return;
    const r = await curl('/hello.php?name=wharf', '--data', 'field=posted%20value');
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers.get('x-php'), ['yes']);
    assert.deepEqual(r.headers.get('set-cookie'), ['php_a=1', 'php_b=2']);
    assert.equal(r.text(), 'method=POST\nname=wharf\nposted=posted value\nscript=/hello.php\nsoftware=Microsoft-IIS/10.0 (Wharf)\n');
    const s = await curl('/status.php');
    assert.equal(s.status, 202);
    assert.equal(s.text(), 'accepted by php\n');
  });
});
