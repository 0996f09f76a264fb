import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CredentialBroker, MAX_CHECKS_IN_FLIGHT, type CredentialAsker } from './credential-broker.js';
import type { CredentialResult } from '../ipc/credential-messages.js';

function asker(): CredentialAsker & { answers: { id: number; result: CredentialResult }[]; gone: boolean } {
  const a = { pid: 42, pool: 'P', credentialChecks: 0, answers: [] as { id: number; result: CredentialResult }[], gone: false, alive: () => !a.gone, answer: (id: number, result: CredentialResult) => a.answers.push({ id, result }) };
  return a;
}
const req = { kind: 'account', providers: ['system'], user: 'x' } as const;

test('a worker has at most 64 checks in flight: beyond, throttled at once without asking the service', async () => {
  const waiting: ((r: CredentialResult) => void)[] = [];
  const broker = new CredentialBroker({ check: () => new Promise((resolve) => waiting.push(resolve)) }, () => undefined);
  const a = asker();
  for (let i = 0; i < MAX_CHECKS_IN_FLIGHT + 3; i++) broker.check(a, i, req);
  assert.equal(waiting.length, MAX_CHECKS_IN_FLIGHT);
  assert.deepEqual(a.answers.map((x) => [x.id, !x.result.ok && x.result.reason]), [64, 65, 66].map((id) => [id, 'throttled']));
  waiting[0]!({ ok: false, reason: 'unknown-user', message: '' });
  await new Promise((r) => setImmediate(r));
  assert.equal(a.credentialChecks, MAX_CHECKS_IN_FLIGHT - 1);
  assert.equal(a.answers.at(-1)!.id, 0);
});

test('a service that throws answers unavailable and is logged; a worker that exited gets nothing', async () => {
  const log: string[] = [];
  const broker = new CredentialBroker({ check: () => Promise.reject(new Error('boom')) }, (level, m) => log.push(`${level} ${m}`));
  const a = asker();
  broker.check(a, 1, req);
  await new Promise((r) => setImmediate(r));
  assert.equal(!a.answers[0]!.result.ok && a.answers[0]!.result.reason, 'unavailable');
  assert.match(log[0]!, /^error credential check for worker 42 of pool P failed: Error: boom/);
  a.gone = true;
  broker.check(a, 2, req);
  await new Promise((r) => setImmediate(r));
  assert.equal(a.answers.length, 1);
  assert.equal(a.credentialChecks, 0);
  const none = new CredentialBroker(undefined, () => undefined);
  const b = asker();
  none.check(b, 3, req);
  assert.equal(!b.answers[0]!.result.ok && b.answers[0]!.result.reason, 'unavailable');
  none.refuse(b, 4, 'a credential request that is not JSON');
  assert.match(!b.answers[1]!.result.ok ? b.answers[1]!.result.message : '', /refused a credential request that is not JSON/);
});
