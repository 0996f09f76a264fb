// Pool identities, end to end: started as root, each pool's workers run as the pool's own Linux
// user, so a file only pool B's user may read is refused in pool A (IIS's 401.3) and served in B.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isRoot, needs, root } from './helpers/skip.js';
import { eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';


let w: WharfProcess;
before(async () => {
  if (isRoot) w = await startWharf({ fixture: 'identity' });
});
after(async () => {
  await w?.stop();
});

function workerUser(pid: number): string {
  const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  return execFileSync('getent', ['passwd', uid], { encoding: 'utf8' }).split(':')[0]!;
}

function workerOf(pool: string): number {
  const line = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(`wharf-worker -ap "${pool}"`) && w.output().includes(`started worker ${l.trim().split(' ')[0]} for pool ${pool}`));
  assert.ok(line, `a worker of ${pool} runs`);
  return Number(line.trim().split(' ')[0]);
}

test('each pool runs as its own user; a file readable only by pool B is 401.3 in pool A and 200 in pool B', async (t) => {
  if (!needs(t, root('per-pool users need Wharf to run as root'))) return;
  assert.equal((await get(w.port, '/a/public.txt')).status, 200);
  assert.equal((await get(w.port, '/b/public.txt')).status, 200);
  assert.equal(workerUser(workerOf('IdentityPoolA')), 'wharf-identitypoola');
  assert.equal(workerUser(workerOf('IdentityPoolB')), 'wharf-identitypoolb');
  assert.match(w.output(), /application pool IdentityPoolB runs as IIS AppPool\\IdentityPoolB → wharf-identitypoolb \(uid \d+\)/);

  const secret = join(w.root, 'shared', 'secret.txt');
  const uidB = Number(execFileSync('id', ['-u', 'wharf-identitypoolb'], { encoding: 'utf8' }).trim());
  chownSync(secret, uidB, 0);
  chmodSync(secret, 0o600);

  const refused = await get(w.port, '/a/secret.txt');
  assert.equal(refused.status, 401);
  assert.doesNotMatch(refused.body.toString(), /only pool B/);
  const served = await get(w.port, '/b/secret.txt');
  assert.equal(served.status, 200);
  assert.equal(served.body.toString(), 'only pool B may read this\n');
  await eventually(() => w.logLines(41).some((l) => l.includes('/a/secret.txt') && / 401 3 5 /.test(l)), 5000);
});
