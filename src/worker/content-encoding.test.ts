// WorkerResponse with a content encoder (HttpResponse.setContentEncoder): whole bodies encoded with
// their length, streamed bodies flushed per write, HEAD and empty bodies left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createGunzip, createGzip, gunzipSync } from 'node:zlib';
import { WorkerResponse, type ResponseTransport } from './http-context.js';
import type { ContentEncoder, EncoderStream } from './module-api.js';

const GZIP: ContentEncoder = { coding: 'gzip', flushKind: constants.Z_SYNC_FLUSH, create: () => createGzip() as EncoderStream };

function recorder() {
  const r = {
    head: undefined as { status: number; headers: string[] } | undefined,
    chunks: [] as Buffer[],
    ended: false,
    complete: undefined as { headers: string[]; body: Buffer; bytes: number } | undefined,
  };
  const transport: ResponseTransport = {
    head(status, _reason, headers) {
      r.head = { status, headers };
    },
    body(chunk) {
      r.chunks.push(Buffer.from(chunk));
      return true;
    },
    writable: () => Promise.resolve(),
    end() {
      r.ended = true;
    },
    complete(_status, _reason, headers, body, bodyBytes) {
      r.complete = { headers, body: Buffer.concat(body as Buffer[]), bytes: bodyBytes };
    },
  };
  return { r, transport };
}

const header = (headers: readonly string[], name: string): string | undefined => {
  for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() === name) return headers[i + 1];
  return undefined;
};

test('a body known whole is encoded in one go and sent with its encoded length', async () => {
  const { r, transport } = recorder();
  const res = new WorkerResponse(transport, false);
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Content-Length', '9000');
  res.write('a'.repeat(4000));
  res.write('b'.repeat(5000));
  res.setContentEncoder(GZIP);
  await res.finish('');
  const c = r.complete!;
  assert.equal(header(c.headers, 'content-encoding'), 'gzip');
  assert.equal(header(c.headers, 'content-length'), String(c.body.length));
  assert.equal(c.bytes, c.body.length);
  assert.equal(gunzipSync(c.body).toString(), 'a'.repeat(4000) + 'b'.repeat(5000));
});

test('an empty body and a HEAD response are sent as they are', async () => {
  {
    const { r, transport } = recorder();
    const res = new WorkerResponse(transport, false);
    res.setContentEncoder(GZIP);
    await res.finish('');
    assert.equal(header(r.complete!.headers, 'content-encoding'), undefined);
    assert.equal(header(r.complete!.headers, 'content-length'), '0');
  }
  {
    const { r, transport } = recorder();
    const res = new WorkerResponse(transport, true);
    res.write('x'.repeat(100));
    res.setContentEncoder(GZIP);
    await res.finish('');
    assert.equal(header(r.complete!.headers, 'content-encoding'), undefined);
    assert.equal(header(r.complete!.headers, 'content-length'), '100');
  }
});

test('a streamed body goes without a length and each write is decodable before the next', async () => {
  const { r, transport } = recorder();
  const res = new WorkerResponse(transport, false);
  res.setHeader('Content-Length', '999');
  res.setContentEncoder(GZIP);
  res.write('data: first\n\n');
  await res.flush();
  assert.equal(header(r.head!.headers, 'content-encoding'), 'gzip');
  assert.equal(header(r.head!.headers, 'content-length'), undefined);
  // One turn of the event loop later the encoder was flushed: what arrived decodes on its own.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const decoded = await partialGunzip(Buffer.concat(r.chunks));
  assert.equal(decoded, 'data: first\n\n');
  res.write('data: second\n\n');
  await res.finish('');
  assert.ok(r.ended);
  assert.equal(gunzipSync(Buffer.concat(r.chunks)).toString(), 'data: first\n\ndata: second\n\n');
});

/** What a gzip stream's first bytes decode to (the stream is not finished yet). */
function partialGunzip(bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const g = createGunzip();
    let out = '';
    g.on('data', (d: Buffer) => (out += d.toString()));
    g.on('error', () => resolve(out));
    g.write(bytes, () => setTimeout(() => resolve(out), 20));
  });
}
