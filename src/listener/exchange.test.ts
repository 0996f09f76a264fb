import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ListenerError } from '../errors.js';
import type { Connection } from './connection.js';
import type { RequestHead } from './http-parser.js';
import { canTransition, Exchange, EXCHANGE_STATES, isFinal, setInvalidTransitionHandler, TRANSITIONS, type ExchangeState } from './exchange.js';

function head(method = 'GET', contentLength = -1): RequestHead {
  return {
    method,
    target: '/a',
    versionMajor: 1,
    versionMinor: 1,
    rawHeaders: ['Host', 'example'],
    host: 'example',
    contentLength,
    chunked: false,
    keepAlive: true,
    expectContinue: false,
    upgrade: false,
    headBytes: 40,
  };
}

/** The state machine never touches its connection: an exchange for the table's sake. */
function exchange(method = 'GET', contentLength = -1): Exchange {
  return new Exchange({
    conn: {} as Connection,
    head: head(method, contentLength),
    path: '/a',
    query: '',
    site: undefined,
    application: undefined,
    poolName: 'P',
    startedAt: 0,
  });
}

/** Drive a fresh exchange along `path` (each step must be allowed). */
function walk(path: readonly ExchangeState[]): Exchange {
  const ex = exchange();
  for (const s of path) ex.to(s);
  return ex;
}

describe('exchange transition table', () => {
  it('has a row for every state, and only states as targets', () => {
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...EXCHANGE_STATES].sort());
    for (const from of EXCHANGE_STATES) for (const to of TRANSITIONS[from]) assert.ok(EXCHANGE_STATES.includes(to), `${from} → ${to}`);
  });

  it('done and dropped are final; every other state can be dropped (the client may go away at any time)', () => {
    for (const s of EXCHANGE_STATES) {
      if (isFinal(s)) assert.deepEqual(TRANSITIONS[s], [], s);
      else assert.ok(canTransition(s, 'dropped'), `${s} → dropped`);
    }
  });

  it('canTransition answers exactly what the table lists', () => {
    for (const from of EXCHANGE_STATES) {
      for (const to of EXCHANGE_STATES) assert.equal(canTransition(from, to), TRANSITIONS[from].includes(to), `${from} → ${to}`);
    }
  });

  it('a request waits for a worker, is answered and completes', () => {
    const ex = exchange();
    assert.equal(ex.state, 'received');
    assert.equal(ex.responded, false);
    ex.to('queued');
    ex.to('dispatched');
    ex.owner = { sendBody() {}, sendBodyEnd() {}, pauseResponse() {}, resumeResponse() {}, abort() {} };
    assert.equal(ex.withOwner, true);
    ex.to('responding');
    assert.equal(ex.responded, true);
    assert.equal(ex.ended, false);
    ex.to('ended');
    assert.equal(ex.ended, true);
    assert.equal(ex.withOwner, false, 'a finished response takes no more body or flow control');
    ex.to('done');
    assert.equal(ex.responded, true);
  });

  it('the cache and the listener answer from received; a worker may be given it at once', () => {
    walk(['responding', 'ended', 'done']);
    walk(['dispatched', 'responding', 'ended', 'done']);
    walk(['queued', 'responding', 'ended', 'done']); // 503 for a stopped pool's waiting requests
  });

  it('a worker that dies before any byte: the request is replayed once, from dispatched or a held response', () => {
    for (const path of [['queued', 'dispatched'], ['dispatched', 'responding']] as const) {
      const ex = walk(path);
      ex.status = 200;
      ex.bytesSent = 0;
      ex.answeredBy = 'worker';
      ex.resetForReplay();
      assert.equal(ex.state, 'queued');
      assert.equal(ex.replayed, true);
      assert.equal(ex.status, 0);
      assert.equal(ex.answeredBy, 'listener');
      assert.equal(ex.owner, undefined);
    }
  });

  it('a worker abort before its head finishes the request as done (logged, connection reset)', () => {
    walk(['dispatched', 'done']);
  });

  it('an invalid change throws LSN_EXCHANGE_STATE by default and leaves the state alone', () => {
    const ex = walk(['responding', 'ended', 'done']);
    assert.throws(
      () => ex.to('queued'),
      (err: unknown) => err instanceof ListenerError && err.code === 'LSN_EXCHANGE_STATE' && /done → queued/.test(err.message),
    );
    assert.equal(ex.state, 'done');
    assert.throws(() => exchange().to('ended'), /received → ended/);
    assert.throws(() => walk(['dropped']).to('done'), /dropped → done/);
  });

  it('with a handler installed (the listener logs), an invalid change is reported and the request goes on', () => {
    const reported: string[] = [];
    setInvalidTransitionHandler((ex, to, err) => reported.push(`${ex.state}→${to} ${err.code}`));
    try {
      const ex = walk(['queued']);
      ex.to('ended');
      assert.deepEqual(reported, ['queued→ended LSN_EXCHANGE_STATE']);
      assert.equal(ex.state, 'ended');
    } finally {
      setInvalidTransitionHandler((_ex, _to, err) => {
        throw err;
      });
    }
  });

  it('only bodiless GET/HEAD/OPTIONS/TRACE may be replayed', () => {
    assert.equal(exchange('GET').replayable, true);
    assert.equal(exchange('HEAD').replayable, true);
    assert.equal(exchange('POST').replayable, false);
    assert.equal(exchange('GET', 10).replayable, false);
  });
});
