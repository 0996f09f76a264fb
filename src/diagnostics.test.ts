import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import diagnostics_channel from 'node:diagnostics_channel';
import { CHANNELS, requestEnd } from './diagnostics.js';

const ARCHITECTURE = fileURLToPath(new URL('../../docs/architecture.md', import.meta.url));

describe('the event catalogue', () => {
  it('lists every channel once in docs/architecture.md, and nothing the code does not declare', () => {
    const doc = readFileSync(ARCHITECTURE, 'utf8');
    const section = doc.slice(doc.indexOf('## The event stream'));
    const documented = [...section.matchAll(/^\| `(wharf:[a-z:]+)` \|/gm)].map((m) => m[1]);
    const declared = CHANNELS.map((c) => String(c.name));
    assert.deepEqual([...documented].sort(), [...declared].sort());
    assert.equal(new Set(declared).size, declared.length, 'a channel name is declared twice');
  });

  it('declares channels a subscriber finds by name, with nobody listening until one subscribes', () => {
    assert.equal(requestEnd.hasSubscribers, false);
    const seen: unknown[] = [];
    const fn = (m: unknown): void => void seen.push(m);
    diagnostics_channel.subscribe('wharf:request:end', fn);
    try {
      assert.equal(requestEnd.hasSubscribers, true);
      requestEnd.publish({ key: {}, siteId: 1, siteName: 'S', poolName: 'P', method: 'GET', status: 200, subStatus: 0, win32Status: 0, bytesSent: 1, bytesReceived: 1, endedAt: 1, durationMs: 0, answeredBy: 'cache', aborted: false });
      assert.equal(seen.length, 1);
    } finally {
      diagnostics_channel.unsubscribe('wharf:request:end', fn);
    }
    assert.equal(requestEnd.hasSubscribers, false);
  });
});
