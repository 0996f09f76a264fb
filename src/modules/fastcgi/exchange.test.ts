// A client that hangs up, with real php-cgi processes: what it costs the FastCGI application.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeDir, TestContext } from '../../../test/helpers/module-harness.js';
import { needs, phpCgi } from '../../../test/helpers/skip.js';
import { cgiVariableList } from '../cgi/environment.js';
import { FastCgiApplication } from './application.js';
import { exchange, NO_BODY } from './exchange.js';
import { encodePairs } from './records.js';
import type { FastCgiSettings } from './settings.js';

const root = makeTempDir('wharf-fastcgi-exchange-');
after(() => removeDir(root));
// Each run appends its mark to runs.txt; slow.php takes 400 ms first.
writeFileSync(join(root, 'slow.php'), `<?php usleep(400000); file_put_contents(__DIR__ . '/runs.txt', $_GET['mark'] . "\\n", FILE_APPEND); echo getmypid();\n`);
writeFileSync(join(root, 'pid.php'), `<?php file_put_contents(__DIR__ . '/runs.txt', $_GET['mark'] . "\\n", FILE_APPEND); echo getmypid();\n`);

function application(): FastCgiApplication {
  const settings = {
    key: '/usr/bin/php-cgi|',
    fullPath: '/usr/bin/php-cgi',
    arguments: [],
    address: undefined,
    maxInstances: 1,
    instanceMaxRequests: 200,
    idleTimeoutMs: 300_000,
    activityTimeoutMs: 70_000,
    requestTimeoutMs: 90_000,
    queueLength: 1000,
    rapidFailsPerMinute: 10,
    signalBeforeTerminateMs: 0,
    transport: 'unix',
    stderrMode: 'ReturnStdErrIn500',
    monitorChangesTo: '',
    environment: { PHP_FCGI_MAX_REQUESTS: '200' },
  } satisfies Omit<FastCgiSettings, 'signature'>;
  const logged: string[] = [];
  const app = new FastCgiApplication({ ...settings, signature: JSON.stringify(settings) }, { log: (_level, message) => logged.push(message) });
  after(() => app.close(true));
  return app;
}

/** One GET of `url` through `app`, as FastCgiModule runs it; the context shows what the client got. */
function get(app: FastCgiApplication, url: string): { ctx: TestContext; done: Promise<void> } {
  const ctx = new TestContext({ root, url, handler: { name: 'PHP', modules: ['FastCgiModule'] } });
  ctx.physicalPath = join(root, ctx.request.path.slice(1));
  Object.defineProperty(ctx, 'scriptPath', { value: ctx.request.path });
  const vars = cgiVariableList(ctx);
  return { ctx, done: exchange(ctx, { app, params: encodePairs(vars.variables, vars.headersFrom), body: NO_BODY }) };
}

const runs = (): string[] => (existsSync(join(root, 'runs.txt')) ? readFileSync(join(root, 'runs.txt'), 'utf8').trim().split('\n') : []);
const hangUp = (ctx: TestContext): void => {
  for (const f of ctx.response.abortListeners) f();
};

test('a client that hangs up while PHP runs its request: the request ends, the same php-cgi process serves the next one', async (t) => {
  if (!needs(t, phpCgi())) return;
  const app = application();
  const first = get(app, '/pid.php?mark=warm');
  await first.done;
  const pid = first.ctx.response.text();
  assert.match(pid, /^\d+$/);
  assert.deepEqual(app.pids(), [Number(pid)]);

  const slow = get(app, '/slow.php?mark=left');
  await new Promise((r) => setTimeout(r, 100));
  hangUp(slow.ctx);
  await slow.done;
  assert.equal(slow.ctx.response.text(), '', 'nothing of the answer is written for a client that left');

  const next = get(app, '/pid.php?mark=next');
  await next.done;
  assert.equal(next.ctx.response.statusCode, 200);
  assert.equal(next.ctx.response.text(), pid, 'the process that ran the abandoned request answers the next one');
  assert.deepEqual(app.pids(), [Number(pid)]);
});

test('a request whose client hung up while it waited for a process is never sent to PHP', async (t) => {
  if (!needs(t, phpCgi())) return;
  writeFileSync(join(root, 'runs.txt'), '');
  const app = application(); // maxInstances 1: the second request waits for the first
  const busy = get(app, '/slow.php?mark=busy');
  await new Promise((r) => setTimeout(r, 50));
  const queued = get(app, '/pid.php?mark=queued');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(app.queued, 1);
  hangUp(queued.ctx);
  await Promise.all([busy.done, queued.done]);
  const after = get(app, '/pid.php?mark=after');
  await after.done;
  assert.equal(after.ctx.response.text(), busy.ctx.response.text(), 'one process served all');
  assert.deepEqual(runs(), ['busy', 'after'], 'the abandoned request did not run');
});
