import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestBody } from './request-body.js';

function flow(): { pauses: number; resumes: number; pause(): void; resume(): void } {
  return {
    pauses: 0,
    resumes: 0,
    pause() {
      this.pauses++;
    },
    resume() {
      this.resumes++;
    },
  };
}

async function readAll(body: RequestBody): Promise<number> {
  let n = 0;
  for await (const c of body) n += c.length;
  return n;
}

test('limit: a body up to the cap reads whole', async () => {
  const body = new RequestBody(flow());
  body.limit(10);
  body.push(Buffer.alloc(6));
  body.push(Buffer.alloc(4));
  body.end();
  assert.equal(await readAll(body), 10);
});

test('limit: past the cap the read fails with MOD_BODY_TOO_LARGE, queued bytes are dropped and the listener stays paused', async () => {
  const f = flow();
  const body = new RequestBody(f);
  body.limit(10);
  body.push(Buffer.alloc(8));
  body.push(Buffer.alloc(8));
  body.push(Buffer.alloc(8)); // after the failure: ignored
  assert.equal(f.pauses, 1, 'the client is not read any further');
  let read = 0;
  await assert.rejects(
    (async () => {
      for await (const c of body) read += c.length;
    })(),
    (err: Error & { code?: string }) => err.code === 'MOD_BODY_TOO_LARGE' && /10 bytes/.test(err.message),
  );
  assert.equal(read, 0, 'no byte of an over-long body reaches the reader');
  assert.equal(f.resumes, 0);
});

test('limit: bytes that arrived before the cap was set count', async () => {
  const body = new RequestBody(flow());
  body.push(Buffer.alloc(20));
  body.limit(10);
  await assert.rejects(readAll(body), { code: 'MOD_BODY_TOO_LARGE' });
});
