import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, freePort, get, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
let subConfig: string;
let goodSubConfig: string;
before(async () => {
  w = await startWharf({ fixture: 'webconfig' });
  subConfig = join(w.root, 'wwwroot', 'sub', 'web.config');
  goodSubConfig = readFileSync(subConfig, 'utf8');
});
after(async () => {
  await w?.stop();
});

/** Replace a file the way editors do (write a temp file, rename over). */
function replaceFile(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

test('a sub-folder web.config adds a mimeMap and removes a default document', async () => {
  const webp = await get(w.port, '/sub/pic.webp');
  assert.equal(webp.status, 200);
  assert.equal(webp.headers['content-type'], 'image/webp');
  const rootWebp = await get(w.port, '/pic.webp');
  assert.equal(rootWebp.status, 404, 'outside /sub there is no .webp mimeMap (404.3)');
  const root = await get(w.port, '/');
  assert.match(root.body.toString(), /root index/);
  const sub = await get(w.port, '/sub/');
  assert.equal(sub.status, 200);
  assert.match(sub.body.toString(), /sub default/);
  const lines = await eventually(() => {
    const l = w.logLines(3);
    return l.some((x) => x.includes(' /pic.webp ')) ? l : undefined;
  });
  const f = lines.find((x) => x.includes(' /pic.webp '))!.split(' ');
  assert.equal(f[11], '404');
  assert.equal(f[12], '3');
});

test('a duplicate <add> gives 500.19 naming file and line; fixing it recovers without restart', async () => {
  const broken = goodSubConfig.replace(
    '<mimeMap fileExtension=".webp" mimeType="image/webp" />',
    '<mimeMap fileExtension=".webp" mimeType="image/webp" />\n      <mimeMap fileExtension=".txt" mimeType="text/x-dup" />',
  );
  replaceFile(subConfig, broken);
  const err = await eventually(async () => {
    const r = await get(w.port, '/sub/note.txt');
    return r.status === 500 ? r : undefined;
  }, 4000);
  const page = err.body.toString();
  assert.match(page, /500\.19/);
  assert.match(page, /0x800700b7/);
  assert.ok(page.includes(subConfig), 'the page names the file');
  assert.match(page, /duplicate/i);
  const lineNo = broken.split('\n').findIndex((l) => l.includes('text/x-dup')) + 1;
  assert.match(page, new RegExp(`\\b${lineNo}\\b`), 'the page names the line');
  // Other URLs keep working meanwhile.
  const root = await get(w.port, '/');
  assert.equal(root.status, 200);
  const lines = await eventually(() => {
    const l = w.logLines(3).filter((x) => x.includes('/sub/note.txt') && x.includes(' 500 19 '));
    return l.length > 0 ? l : undefined;
  });
  assert.ok(lines.length > 0);
  // Fix the file: served again within 2 s, no restart.
  const fixedAt = Date.now();
  replaceFile(subConfig, goodSubConfig);
  const ok = await eventually(async () => {
    const r = await get(w.port, '/sub/note.txt');
    return r.status === 200 ? r : undefined;
  }, 4000);
  assert.equal(ok.body.toString(), 'sub text\n');
  assert.ok(Date.now() - fixedAt < 2500);
});

test('a broken applicationHost.config edit is rejected and the old configuration keeps serving', async () => {
  const good = readFileSync(w.configFile, 'utf8');
  const pidBefore = w.child.pid;
  replaceFile(w.configFile, good.replace('<system.webServer>', '<system.webServer>\n    <staticContent'));
  await w.waitForOutput(/configuration change rejected.*applicationHost\.config:\d+:\d+/, 5000);
  const still = await get(w.port, '/');
  assert.equal(still.status, 200);
  assert.match(still.body.toString(), /root index/);
  // A valid edit then applies live.
  replaceFile(w.configFile, good.replace('<add name="X-Powered-By" value="Wharf" />', '<add name="X-Powered-By" value="Wharf" />\n        <add name="X-Edited" value="yes" />'));
  const edited = await eventually(async () => {
    const r = await get(w.port, '/');
    return r.headers['x-edited'] === 'yes' ? r : undefined;
  }, 4000);
  assert.equal(edited.status, 200);
  assert.equal(w.child.pid, pidBefore);
  assert.equal(w.child.exitCode, null);
});

test('a binding edit moves the site to a new port live; the old port stops listening', async () => {
  const good = readFileSync(w.configFile, 'utf8');
  const newPort = await freePort();
  replaceFile(w.configFile, good.replace(`127.0.0.1:${w.port}:`, `127.0.0.1:${newPort}:`));
  const moved = await eventually(async () => {
    const r = await get(newPort, '/').catch(() => undefined);
    return r?.status === 200 ? r : undefined;
  }, 4000);
  assert.match(moved.body.toString(), /root index/);
  await eventually(async () => {
    const refused = await get(w.port, '/').then(
      () => false,
      () => true,
    );
    return refused;
  }, 4000);
});
