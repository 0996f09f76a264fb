/**
 * What a worker sends is the pool's code's to shape: every malformed frame closes that worker's
 * channel with a coded error, and nothing of it reaches the listener's handlers.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpcError } from '../errors.js';
import { ListenerChannel } from './channel.js';
import { MessageType, type ListenerInbound, type LogMessage, type ResponseEndMessage, type ResponseHeadMessage } from './messages.js';
import { MAX_HEADER_FIELD_LENGTH, MAX_HEADER_FIELDS, MAX_LOG_MESSAGE } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-frames-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(dir, `s${n++}`);
  return new Promise((resolve) => {
    let b: Socket;
    const server = createServer((a) => {
      server.close();
      resolve([a, b]);
    });
    server.listen(path, () => {
      b = connect(path);
    });
  });
}

function frame(type: number, stream: number, payload: Buffer | string = ''): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const b = Buffer.alloc(9 + p.length);
  b.writeUInt32BE(5 + p.length, 0);
  b[4] = type;
  b.writeUInt32BE(stream, 5);
  p.copy(b, 9);
  return b;
}

const SENTINEL = 'end of the frames under test';

interface Outcome {
  readonly error: Error | undefined;
  readonly heads: ResponseHeadMessage[];
  readonly ends: ResponseEndMessage[];
  readonly logs: LogMessage[];
}

/** Write `frames` as a worker would and wait for the listener's end to close (or for `wantFrames` handled ones). */
async function feed(frames: readonly Buffer[], options: { expectClose?: boolean } = {}): Promise<Outcome> {
  const [a, b] = await socketPair();
  const heads: ResponseHeadMessage[] = [];
  const ends: ResponseEndMessage[] = [];
  const logs: LogMessage[] = [];
  const expectClose = options.expectClose ?? true;
  return new Promise((resolve) => {
    const handlers: ListenerInbound = {
      responseHead: (_s, h) => heads.push(h),
      responseInterim() {},
      responseBody() {},
      responseEnd: (_s, e) => ends.push(e),
      responseComplete: (_s, h, _b, e) => {
        heads.push(h);
        ends.push(e);
      },
      responseFile: (_s, h, _f, e) => {
        heads.push(h);
        ends.push(e);
      },
      responseCacheable() {},
      responseLogUrl() {},
      traceRecord() {},
      requestPause() {},
      requestResume() {},
      log: (m) => {
        // The sentinel after the frames under test: everything before it was handled.
        if (m.message === SENTINEL) {
          if (!expectClose) {
            channel.destroy();
            resolve({ error: undefined, heads, ends, logs });
          }
          return;
        }
        logs.push(m);
      },
      closed: (error) => {
        b.destroy();
        if (expectClose) resolve({ error, heads, ends, logs });
      },
    };
    const channel = new ListenerChannel(a, handlers);
    b.write(Buffer.concat([...frames, frame(MessageType.Log, 0, JSON.stringify({ level: 'info', message: SENTINEL }))]));
  });
}

function code(o: Outcome): string | undefined {
  return o.error instanceof IpcError ? o.error.code : undefined;
}

const END_OK = '0\x000\x00\x000\x000\x001';

describe('malformed frames from a worker', () => {
  it('a valid head and end are handled (the baseline the others differ from)', async () => {
    const o = await feed([frame(MessageType.ResponseHead, 1, '200\x00OK\x00Content-Length\x000'), frame(MessageType.ResponseEnd, 1, END_OK)], { expectClose: false });
    assert.deepEqual(o.heads, [{ status: 200, reason: 'OK', headers: ['Content-Length', '0'] }]);
    assert.equal(o.ends.length, 1);
  });

  for (const [what, status] of [
    ['status 0', '0'],
    ['status 99', '99'],
    ['status 1000', '1000'],
    ['a status that is not a number', 'abc'],
    ['a fractional status', '200.5'],
  ] as const) {
    it(`a response head with ${what}: IPC_INVALID_MESSAGE, nothing handled`, async () => {
      const o = await feed([frame(MessageType.ResponseHead, 1, `${status}\x00OK`)]);
      assert.equal(code(o), 'IPC_INVALID_MESSAGE');
      assert.deepEqual(o.heads, []);
    });
  }

  it('a response head with an odd number of header fields', async () => {
    const o = await feed([frame(MessageType.ResponseHead, 1, '200\x00OK\x00X-Lonely')]);
    assert.equal(code(o), 'IPC_INVALID_MESSAGE');
    assert.match(o.error!.message, /1 header fields/);
  });

  it('a response head with too many header fields', async () => {
    const fields = Array.from({ length: MAX_HEADER_FIELDS + 2 }, (_, i) => (i % 2 === 0 ? 'X-A' : 'b'));
    const o = await feed([frame(MessageType.ResponseHead, 1, '200\x00OK\x00' + fields.join('\x00'))]);
    assert.equal(code(o), 'IPC_INVALID_MESSAGE');
  });

  it('a response head with an oversized header value', async () => {
    const o = await feed([frame(MessageType.ResponseHead, 1, '200\x00OK\x00X-Big\x00' + 'v'.repeat(MAX_HEADER_FIELD_LENGTH + 1))]);
    assert.equal(code(o), 'IPC_INVALID_MESSAGE');
  });

  for (const [what, payload] of [
    ['sub-status 1000', '1000\x000\x00\x000\x000\x001'],
    ['a negative sub-status', '-1\x000\x00\x000\x000\x001'],
    ['a win32 status beyond a DWORD', '0\x004294967296\x00\x000\x000\x001'],
    ['too few fields', '0\x000'],
    ['odd trailer fields', END_OK + '\x00X-Trailer'],
  ] as const) {
    it(`a response end with ${what}`, async () => {
      const o = await feed([frame(MessageType.ResponseEnd, 1, payload)]);
      assert.equal(code(o), 'IPC_INVALID_MESSAGE');
      assert.deepEqual(o.ends, []);
    });
  }

  it('a whole response whose head length points past its frame', async () => {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(1000, 0);
    const o = await feed([frame(MessageType.ResponseComplete, 1, p)]);
    assert.equal(code(o), 'IPC_INVALID_MESSAGE');
    assert.deepEqual(o.heads, []);
  });

  it('a whole response with a status out of range', async () => {
    const head = '42\x00OK\x000\x000\x00\x000\x000\x001';
    const p = Buffer.alloc(4 + head.length + 2);
    p.writeUInt32BE(head.length, 0);
    p.write(head, 4, 'latin1');
    const o = await feed([frame(MessageType.ResponseComplete, 1, p)]);
    assert.equal(code(o), 'IPC_INVALID_MESSAGE');
  });

  for (const [what, json] of [
    ['that is not JSON', '{policy'],
    ['with an unknown policy', JSON.stringify({ policy: 'forever', durationMs: 1, dependencies: [], frequentHitThreshold: 1, frequentHitTimePeriodMs: 1 })],
    ['with dependencies that are not paths', JSON.stringify({ policy: 'untilChange', durationMs: 1, dependencies: [1], frequentHitThreshold: 1, frequentHitTimePeriodMs: 1 })],
    ['with a negative duration', JSON.stringify({ policy: 'timePeriod', durationMs: -5, dependencies: [], frequentHitThreshold: 1, frequentHitTimePeriodMs: 1 })],
  ] as const) {
    it(`a cache policy ${what}`, async () => {
      const o = await feed([frame(MessageType.ResponseCacheable, 1, Buffer.from(json))]);
      assert.equal(code(o), 'IPC_INVALID_MESSAGE');
    });
  }

  it('a log message with an unknown level is refused; an overlong one is cut', async () => {
    const bad = await feed([frame(MessageType.Log, 0, Buffer.from(JSON.stringify({ level: 'fatal', message: 'x' })))]);
    assert.equal(code(bad), 'IPC_INVALID_MESSAGE');
    const long = await feed([frame(MessageType.Log, 0, Buffer.from(JSON.stringify({ level: 'warn', message: 'y'.repeat(MAX_LOG_MESSAGE + 10) })))], { expectClose: false });
    assert.equal(long.logs.length, 1);
    assert.ok(long.logs[0]!.message.length < MAX_LOG_MESSAGE + 10);
  });

  // A file response: 8 opening fields, then fd, dev, ino, size, mtime, offset, length, then headers.
  const fileFrame = (fd: string, size: string, offset: string, length: string, mtime = '1733500000000.5'): Buffer =>
    frame(MessageType.ResponseFile, 1, ['200', 'OK', '0', '0', '', '0', '0', '1', fd, '2049', '77', size, mtime, offset, length, 'Content-Length', length].join('\x00'));

  it('a valid file response is handled', async () => {
    const o = await feed([fileFrame('12', '1000', '10', '990')], { expectClose: false });
    assert.deepEqual(o.heads, [{ status: 200, reason: 'OK', headers: ['Content-Length', '990'] }]);
  });

  for (const [what, f] of [
    ['a negative descriptor', fileFrame('-1', '1000', '0', '1000')],
    ['a range past the end of the file', fileFrame('12', '1000', '10', '991')],
    ['an offset past the end of the file', fileFrame('12', '1000', '1001', '0')],
    ['a size that is not a number', fileFrame('12', 'big', '0', '0')],
    ['a modification time that is not a number', fileFrame('12', '1000', '0', '1000', 'NaN')],
    ['missing fields', frame(MessageType.ResponseFile, 1, '200\x00OK\x000\x000')],
  ] as const) {
    it(`a file response with ${what}: IPC_INVALID_MESSAGE, nothing handled`, async () => {
      const o = await feed([f]);
      assert.equal(code(o), 'IPC_INVALID_MESSAGE');
      assert.deepEqual(o.heads, []);
    });
  }

  it('an unknown message type, or one only the listener sends, is a protocol error', async () => {
    assert.equal(code(await feed([frame(99, 0)])), 'IPC_PROTOCOL');
    assert.equal(code(await feed([frame(MessageType.RequestHead, 1, 'GET')])), 'IPC_PROTOCOL');
  });

  it('a frame length beyond the limit is a protocol error', async () => {
    const b = Buffer.alloc(9);
    b.writeUInt32BE(0x7fffffff, 0);
    assert.equal(code(await feed([b])), 'IPC_PROTOCOL');
  });
});
