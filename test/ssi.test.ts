/**
 * Server-side includes as IIS's SSINC-* handlers run them, against a real Wharf and curl: nested
 * includes through file= and virtual=, a second virtual directory, variables, #fsize / #flastmod /
 * #config, #exec cgi into a Node.js application of the same pool, #exec refused by ssiExecDisable
 * (applicationHost.config and a delegated web.config; a locked web.config is 500.19), #exec cmd off
 * unless SSIEnableCmdDirective, and the bounds: cycles, depth, `..` and symbolic links out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { poolUserName } from '../src/was/identity.js';
import { isRoot, needs, tool } from './helpers/skip.js';
import { eventually, run, startWharf, type WharfProcess } from './helpers/wharf.js';

interface CurlResult {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

async function curl(port: number, path: string, ...args: string[]): Promise<CurlResult> {
  const r = await run('curl', ['-s', '-i', '--max-time', '20', ...args, `http://127.0.0.1:${port}${path}`]);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const raw = r.stdout;
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: raw.slice(end + 4) };
}

/** The message SSI writes in place of a directive that failed (no #config errmsg). */
const failed = (url: string, why: RegExp): RegExp => new RegExp(`<b>Error processing SSI file '${url.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'</b>: ${why.source}`);

/** A fixed last-write time for the files whose dates the pages show. */
const MTIME = new Date(Date.UTC(2024, 2, 5, 14, 7, 9));

describe('server-side includes', () => {
  let w: WharfProcess;
  const BIG = Buffer.alloc(5 * 1024 * 1024, 'abcdefghij');

  before(async () => {
    // TZ=UTC: LAST_MODIFIED and #flastmod are local times, the worker's zone is Wharf's.
    w = await startWharf({ fixture: 'ssi', env: { TZ: 'UTC' } });
    utimesSync(join(w.root, 'www', 'echo.shtml'), MTIME, MTIME);
    utimesSync(join(w.root, 'www', 'data', 'size.bin'), MTIME, MTIME);
    writeFileSync(join(w.root, 'www', 'data', 'big.txt'), BIG);
    // Outside the site's content, and a link inside it that leads there.
    writeFileSync(join(w.root, 'secret.txt'), 'top secret');
    symlinkSync(join(w.root, 'secret.txt'), join(w.root, 'www', 'link.txt'));
  });
  after(async () => {
    await w?.stop();
  });

  it('processes nested includes (file= relative to the including file, virtual= a URL path), as text/html', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/nested.shtml');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html');
    // A comment that is not a directive (<!-- #region … -->) stays in the page.
    assert.equal(r.body, 'A123<!-- #region an ordinary comment -->21Z');
    // The default document of the site is an SSI page too (a child request).
    const home = await curl(w.port, '/');
    assert.equal(home.body, 'home3<!-- #region an ordinary comment -->');
  });

  it('includes across virtual directories, but not from another application or above a virtual directory', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/vdirs.shtml');
    assert.equal(r.status, 200);
    const parts = r.body.slice(1, -1).split('][');
    assert.equal(parts[0], 'footer:more', '/shared is another folder; its own file= includes are relative to it');
    assert.match(parts[1]!, failed('/vdirs.shtml', /'\.\.\/shared\/footer\.inc' is outside the virtual directory/));
    assert.match(parts[2]!, failed('/vdirs.shtml', /'\/app2\/secret\.inc' belongs to the application '\/app2'/));
    assert.ok(!r.body.includes('app2 secret'));
    assert.equal(parts[3], '3<!-- #region an ordinary comment -->', 'a relative virtual= is relative to the page\'s URL');
  });

  it('echoes IIS server variables and SSI\'s own, as they are (no HTML escaping)', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/echo.shtml?x=%3Cb%3E%20y', '-A', 'tester <1>');
    assert.equal(r.status, 200);
    const fields = Object.fromEntries(r.body.split('|').filter((f) => f !== '').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]));
    assert.deepEqual(fields, {
      name: 'echo.shtml',
      uri: '/echo.shtml',
      q: 'x=<b> y',
      raw: 'x=%3Cb%3E%20y',
      ua: 'tester <1>',
      addr: '127.0.0.1',
      method: 'GET',
      gmt: String(new Date().getUTCFullYear()),
      lm: '2024-03-05 14:07:09',
    });
  });

  it('#fsize, #flastmod and #config sizefmt, timefmt and errmsg; an error is written in place and the page goes on', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/fileinfo.shtml');
    assert.equal(r.status, 200);
    const [abbrev, bytes, date, badFmt, custom, restored, typo] = r.body.split('|');
    assert.equal(abbrev, '3', 'kilobytes, rounded up, by default');
    assert.equal(bytes, '2,500');
    assert.equal(date, '05 Mar 2024 14:07');
    assert.match(badFmt!, failed('/fileinfo.shtml', /sizefmt must be "bytes" or "abbrev", not "huge"/));
    assert.equal(custom, '[oops]');
    assert.match(restored!, failed('/fileinfo.shtml', /cannot find the file 'nope\.bin'/));
    assert.match(typo!, failed('/fileinfo.shtml', /unknown directive #inlcude/));
  });

  it('#exec cgi runs a URL of the same pool as a child request and puts its answer in place; #exec cmd is off by default', async (t) => {
    if (!needs(t, tool('curl'))) return;
    // The client's Range and Accept-Encoding are not the child's: its answer goes in whole and plain.
    const r = await curl(w.port, '/exec.shtml', '-H', 'Range: bytes=0-3', '-H', 'Accept-Encoding: gzip');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'text/html');
    assert.equal(r.headers['content-encoding'], undefined);
    const [cgi, cmd, otherPool, nested, self] = r.body.split('|');
    assert.equal(cgi, '[app GET /cgi-bin/hello?a=1+b range=- ae=-]');
    assert.match(cmd!, failed('/exec.shtml', /The CMD option is not enabled for #EXEC calls/));
    assert.match(otherPool!, failed('/exec.shtml', /'\/other\/page\.shtml' runs in the application pool 'OtherPool'/));
    assert.equal(nested, 'A123<!-- #region an ordinary comment -->21Z', 'an SSI page run by #exec cgi is processed');
    assert.match(self!, /^self/);
    assert.match(self!, failed('/exec-self.shtml', /the page is already being processed by an #exec cgi above it/));
    // One line in the log, the page's, with its own status.
    await eventually(() => w.logLines(1).some((l) => l.includes(' /exec.shtml ') && / 200 0 /.test(l)));
  });

  it('refuses #exec where ssiExecDisable is true, in applicationHost.config or a delegated web.config; includes still work', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/noexec/exec.shtml');
    assert.equal(r.status, 200);
    const [cgi, cmd, include] = r.body.split('|');
    assert.match(cgi!, failed('/noexec/exec.shtml', /#EXEC calls have been disabled for this virtual path/));
    assert.match(cmd!, failed('/noexec/exec.shtml', /#EXEC calls have been disabled for this virtual path/));
    assert.equal(include, '3<!-- #region an ordinary comment -->');
    const d = await curl(w.port, '/delegated/exec.shtml');
    assert.equal(d.status, 200);
    assert.match(d.body, failed('/delegated/exec.shtml', /#EXEC calls have been disabled/));
  });

  it('answers 500.19 for a web.config that sets serverSideInclude where it is locked (overrideModeDefault Deny)', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/locked/page.shtml');
    assert.equal(r.status, 500);
    assert.match(r.body, /500\.19/);
    assert.match(r.body, /serverSideInclude/);
    await eventually(() => w.logLines(1).some((l) => l.includes('/locked/page.shtml') && l.includes(' 500 19 ')));
  });

  it('stops a cycle and a chain deeper than 8 levels with a message in place', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const cycle = await curl(w.port, '/cycle.shtml');
    assert.equal(cycle.status, 200);
    assert.match(cycle.body, /^b/);
    assert.match(cycle.body, failed('/cycle-b.inc', /'cycle\.shtml' is already being included/));
    const deep = await curl(w.port, '/deep.shtml');
    assert.equal(deep.status, 200);
    assert.match(deep.body, /^01234567/);
    assert.match(deep.body, failed('/deep/d7.inc', /includes nest deeper than 8 levels; 'd8\.inc' is not included/));
    assert.ok(!deep.body.includes('9'));
  });

  it('refuses includes that leave the site\'s content: .. above the root, a symbolic link out, an absolute path', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/escape.shtml');
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes('top secret'));
    assert.ok(!r.body.includes('root:'));
    const parts = r.body.slice(1, -1).split('][');
    assert.match(parts[0]!, failed('/escape.shtml', /'\.\.\/\.\.\/secret\.txt' is outside the virtual directory/));
    assert.match(parts[1]!, failed('/escape.shtml', /'\/\.\.\/secret\.txt' is not a valid URL path of this site/));
    assert.match(parts[2]!, failed('/escape.shtml', /'link\.txt' is outside the virtual directory/));
    assert.match(parts[3]!, failed('/escape.shtml', /file="\/etc\/passwd" must be a path relative/));
  });

  it('HEAD gets the headers a GET gets; If-Modified-Since is not honoured; POST is served', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const get = await curl(w.port, '/nested.shtml');
    const head = await curl(w.port, '/nested.shtml', '-I');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-type'], 'text/html');
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)));
    assert.equal(head.body, '');
    assert.equal(get.headers['last-modified'], undefined);
    assert.equal(get.headers['etag'], undefined);
    const ims = await curl(w.port, '/nested.shtml', '-H', `If-Modified-Since: ${new Date(Date.now() + 86_400_000).toUTCString()}`);
    assert.equal(ims.status, 200);
    assert.equal(ims.body, get.body);
    const post = await curl(w.port, '/echo.shtml', '-d', 'a=1');
    assert.equal(post.status, 200);
    assert.match(post.body, /\|method=POST\|/);
  });

  it('is never answered from the kernel cache: a changed include shows at once', async (t) => {
    if (!needs(t, tool('curl'))) return;
    for (let i = 0; i < 4; i++) assert.equal((await curl(w.port, '/cache.shtml')).body, 'v=one');
    writeFileSync(join(w.root, 'www', 'data', 'version.txt'), 'two');
    assert.equal((await curl(w.port, '/cache.shtml')).body, 'v=two');
  });

  it('streams a page larger than the response buffer (chunked, complete)', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await run('curl', ['-s', '-D', '-', '-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${w.port}/big.shtml`]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /transfer-encoding: chunked/i);
    assert.match(r.stdout, new RegExp(`${BIG.length + 3}$`));
    const body = await run('curl', ['-s', `http://127.0.0.1:${w.port}/big.shtml`]);
    const expected = createHash('sha256').update(Buffer.concat([BIG, Buffer.from('end')])).digest('hex');
    assert.equal(createHash('sha256').update(body.stdout, 'latin1').digest('hex'), expected);
  });
});

describe('#exec cmd with SSIEnableCmdDirective', () => {
  let w: WharfProcess;
  before(async () => {
    w = await startWharf({ fixture: 'ssi', env: { WHARF_W3SVC_PARAMETERS: 'SSIEnableCmdDirective=1' } });
    writeFileSync(join(w.root, 'www', 'cmd.shtml'), `<!--#exec cmd='id -un; pwd; printf "%s" "$APP_POOL_ID"'-->|<!--#exec cmd="head -c 5000000 /dev/zero"-->|after`);
  });
  after(async () => {
    await w?.stop();
  });

  it("runs the command with /bin/sh as the pool's user, in the page's folder; its output is capped", async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/cmd.shtml');
    assert.equal(r.status, 200);
    const [out, capped, rest] = r.body.split('|');
    const [user, cwd, pool] = out!.split('\n');
    if (isRoot) assert.equal(user, poolUserName('SsiPool'));
    assert.equal(cwd, realpathSync(join(w.root, 'www')));
    assert.equal(pool, 'SsiPool');
    assert.match(capped!, failed('/cmd.shtml', /the command wrote more than 4194304 bytes/));
    assert.equal(capped!.indexOf('<b>'), 4 * 1024 * 1024);
    assert.equal(rest, 'after');
  });

  it('keeps it refused where ssiExecDisable is true', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(w.port, '/noexec/exec.shtml');
    assert.match(r.body.split('|')[1]!, failed('/noexec/exec.shtml', /#EXEC calls have been disabled/));
  });
});
