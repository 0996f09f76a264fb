/**
 * Failed Request Tracing end to end (reference §5.2): a real Wharf serves site 5 of
 * test/fixtures/freb, whose rules trace a static 404, a hosted app's 500 and a request that
 * outlives timeTaken; the files appear in `W3SVC5` as IIS writes them, parse with xmllint, keep
 * to maxLogFiles, and render in Chromium through the freb.xsl beside them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { needs, tool } from './helpers/skip.js';
import { eventually, get, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { send } from './helpers/node-apps.js';

describe('Failed Request Tracing', () => {
  let wharf: WharfProcess;
  let folder: string;

  before(async () => {
    wharf = await startWharf({ fixture: 'freb' });
    folder = join(wharf.systemDrive, 'inetpub', 'logs', 'FailedReqLogFiles', 'W3SVC5');
  });
  after(async () => {
    await wharf?.stop();
  });

  const traces = (): string[] => (existsSync(folder) ? readdirSync(folder).filter((f) => /^fr\d{6}\.xml$/.test(f)).sort() : []);
  const read = (file: string): string => readFileSync(join(folder, file), 'utf8');
  /** The newest trace once there are `count` of them. */
  const traceNumber = async (count: number): Promise<string> => {
    const files = await eventually(() => (traces().length >= count ? traces() : undefined), 20_000);
    return read(files[files.length - 1]!);
  };
  const attr = (xml: string, name: string): string | undefined => new RegExp(`<failedRequest[^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

  it('a 404 under the *.htm rule is written as fr000001.xml with the events of its areas, and freb.xsl beside it', async () => {
    const r = await get(wharf.port, '/missing.htm');
    assert.equal(r.status, 404);
    const ok = await get(wharf.port, '/index.htm');
    assert.equal(ok.status, 200, 'a request that does not fail leaves no file');
    const xml = await traceNumber(1);
    assert.deepEqual(traces(), ['fr000001.xml']);
    assert.ok(existsSync(join(folder, 'freb.xsl')));
    assert.match(xml, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<\?xml-stylesheet type='text\/xsl' href='freb.xsl'\?>/);
    assert.equal(attr(xml, 'url'), `http://localhost:${wharf.port}/missing.htm`);
    assert.equal(attr(xml, 'siteId'), '5');
    assert.equal(attr(xml, 'appPoolId'), 'TracePool');
    assert.equal(attr(xml, 'verb'), 'GET');
    assert.equal(attr(xml, 'failureReason'), 'STATUS_CODE');
    assert.equal(attr(xml, 'statusCode'), '404');
    assert.match(attr(xml, 'processId') ?? '', /^\d+$/);
    for (const opcode of ['GENERAL_REQUEST_START', 'NOTIFY_MODULE_START', 'MODULE_SET_RESPONSE_ERROR_STATUS', 'GENERAL_SEND_CUSTOM_ERROR', 'GENERAL_REQUEST_END']) {
      assert.match(xml, new RegExp(`<Opcode>${opcode}</Opcode>`), opcode);
    }
    assert.match(xml, /<Data Name="HttpStatus">404<\/Data>/);
    assert.match(xml, /<Data Name="ModuleName">CustomErrorModule<\/Data>/);
  });

  it('a hosted app answering 500 fails the 500-599 rule', async () => {
    const r = await send(wharf.port, 'localhost', { path: '/app/fail' });
    assert.equal(r.status, 500);
    const xml = await traceNumber(2);
    assert.equal(attr(xml, 'url'), `http://localhost:${wharf.port}/app/fail`);
    assert.equal(attr(xml, 'statusCode'), '500');
    assert.equal(attr(xml, 'failureReason'), 'STATUS_CODE');
    assert.match(xml, /<Data Name="ModuleName">iisnode<\/Data>[\s\S]*<Data Name="Notification">128<\/Data>/, 'the handler module ran in EXECUTE_REQUEST_HANDLER');
    assert.match(xml, /<freb:Description Data="Notification">EXECUTE_REQUEST_HANDLER<\/freb:Description>/);
    assert.match(xml, /<Data Name="NewHandlerName">node<\/Data>[\s\S]*?<Opcode>HANDLER_CHANGED<\/Opcode>/);
  });

  it('a request longer than timeTaken is traced while it still runs', async () => {
    let finished = false;
    const slow = send(wharf.port, 'localhost', { path: '/app/slow' }).then((r) => {
      finished = true;
      return r;
    });
    const xml = await traceNumber(3);
    assert.equal(finished, false, 'the file is written before the request ends');
    assert.equal(attr(xml, 'failureReason'), 'TIME_TAKEN');
    assert.equal(attr(xml, 'url'), `http://localhost:${wharf.port}/app/slow`);
    assert.ok(Number(attr(xml, 'timeTaken')) >= 1000, `timeTaken ${attr(xml, 'timeTaken')}`);
    assert.match(xml, /<Opcode>NOTIFY_MODULE_START<\/Opcode>/, 'the events so far');
    assert.doesNotMatch(xml, /GENERAL_REQUEST_END/, 'the request has not ended');
    const released = await send(wharf.port, 'localhost', { path: '/app/release' });
    assert.equal(released.text(), 'released 1');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.text(), 'released');
    // Written once: ending after the trace adds no second file.
    await get(wharf.port, '/missing.htm');
    await eventually(() => traces().includes('fr000004.xml'), 20_000);
    // The oldest file goes just after the newest is written: wait for the listing to settle.
    await eventually(() => !traces().includes('fr000001.xml'), 5_000).catch(() => undefined);
    assert.deepEqual(traces(), ['fr000002.xml', 'fr000003.xml', 'fr000004.xml'], 'maxLogFiles="3": the oldest went');
    assert.equal(attr(read('fr000004.xml'), 'url'), `http://localhost:${wharf.port}/missing.htm`);
  });

  it('every file parses with xmllint', async (t) => {
    if (!needs(t, tool('xmllint', 'libxml2-utils'))) return;
    const files = traces();
    assert.ok(files.length >= 3);
    for (const f of [...files, 'freb.xsl']) {
      const r = spawnSync('xmllint', ['--noout', join(folder, f)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    }
  });

  it('maxLogFiles: more failures than the limit leave the newest N files, numbering goes on', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await get(wharf.port, `/gone-${i}.htm`)).status, 404);
    await eventually(() => traces().includes('fr000008.xml'), 20_000);
    await eventually(() => traces().length === 3, 5000);
    assert.deepEqual(traces(), ['fr000006.xml', 'fr000007.xml', 'fr000008.xml']);
    assert.equal(attr(read('fr000008.xml'), 'url'), `http://localhost:${wharf.port}/gone-3.htm`);
  });

  it('wharf list traces prints them as appcmd does, with filters and /text', async () => {
    const list = async (...args: string[]): Promise<string[]> => {
      const r = await run(process.execPath, [WHARF_BIN, 'list', ...args, '--config', wharf.configFile], 15000);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    const pid = attr(read('fr000008.xml'), 'processId');
    assert.deepEqual(await list('traces'), [6, 7, 8].map((n) => `TRACE "Traced/fr00000${n}.xml" (url:http://localhost:${wharf.port}/gone-${n - 5}.htm,statuscode:404,wp:${pid})`));
    assert.deepEqual(await list('traces', '/statuscode:404', '/text:url'), [6, 7, 8].map((n) => `http://localhost:${wharf.port}/gone-${n - 5}.htm`));
    assert.deepEqual(await list('trace', 'traced/fr000007.xml', '/text:failureReason'), ['STATUS_CODE']);
  });

  it('a trace opens in Chromium through freb.xsl: URL, status and events are shown', async (t) => {
    if (!needs(t, tool('chromium'))) return;
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--allow-file-access-from-files'] });
    try {
      const page = await browser.newPage();
      await page.goto(pathToFileURL(join(folder, 'fr000008.xml')).href);
      const heading = await page.locator('h1').innerText();
      assert.match(heading, /404/);
      assert.match(heading, /STATUS_CODE/);
      assert.equal(await page.locator('#url').innerText(), `GET http://localhost:${wharf.port}/gone-3.htm`);
      const summary = await page.locator('#summary').innerText();
      assert.match(summary, /Application pool\s+TracePool/);
      assert.match(summary, /Status code\s+404/);
      const events = await page.locator('#events').innerText();
      for (const opcode of ['GENERAL_REQUEST_START', 'NOTIFY_MODULE_START', 'MODULE_SET_RESPONSE_ERROR_STATUS', 'GENERAL_REQUEST_END']) assert.match(events, new RegExp(opcode));
      assert.match(events, /Notification: \d+ \(EXECUTE_REQUEST_HANDLER\)|Notification: \d+ \(MAP_REQUEST_HANDLER\)/);
      const warnings = await page.locator('#warnings').innerText();
      assert.match(warnings, /MODULE_SET_RESPONSE_ERROR_STATUS/);
    } finally {
      await browser.close();
    }
  });
});
