import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { renewalTime } from './acme.js';

const DAY = 86_400_000;
const cert = (from: number, to: number): X509Certificate => ({ validFrom: new Date(from).toUTCString(), validTo: new Date(to).toUTCString() }) as X509Certificate;

test('renewal: 30 days before the end for long certificates, a third of the lifetime before for short ones', () => {
  const t0 = Date.UTC(2026, 0, 1);
  assert.equal(renewalTime(cert(t0, t0 + 90 * DAY)), t0 + 60 * DAY); // Let's Encrypt's 90 days
  assert.equal(renewalTime(cert(t0, t0 + 397 * DAY)), t0 + 367 * DAY);
  assert.equal(renewalTime(cert(t0, t0 + 6 * DAY)), t0 + 4 * DAY); // short-lived profile
  assert.equal(renewalTime(cert(t0, t0 + 30_000)), t0 + 20_000);
});
