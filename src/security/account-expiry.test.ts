import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountExpiry, accountExpiryProblem, epochDay, parseShadowLine } from './account-expiry.js';

const TODAY = 20_000; // 2024-10-04

function verdict(line: string, today = TODAY): string | undefined {
  const aging = parseShadowLine('alice', line);
  assert.ok(aging !== undefined, line);
  return accountExpiry(aging, today);
}

test('an account without aging, or within its limits, may log on', () => {
  assert.equal(verdict('alice:$y$j9T$x:19990:0:99999:7:::'), undefined);
  assert.equal(verdict('alice:$y$j9T$x:::::::'), undefined, 'empty fields: aging is off');
  assert.equal(verdict('alice:$y$j9T$x:-1:-1:-1:-1:-1:-1:'), undefined, 'some NSS modules write -1 for empty');
  assert.equal(verdict('alice:x:19990:0:10:7::20001:'), undefined, 'expires tomorrow, password 10 days old');
  assert.equal(verdict('alice:x:20005:0:3:7:0::'), undefined, 'a last change in the future counts as today');
});

test('chage -E: refused from the expiry day on', () => {
  assert.match(verdict('alice:x:19990:0:99999:7::0:')!, /^the account expired on 1970-01-01 \(chage -E\)$/);
  assert.match(verdict('alice:x:19990:0:99999:7::20000:')!, /account expired on 2024-10-04/);
  assert.equal(verdict('alice:x:19990:0:99999:7::20000:', TODAY - 1), undefined);
});

test('chage -d 0: the password must be changed first, which a web logon cannot do', () => {
  assert.match(verdict('alice:x:0:0:99999:7:::')!, /must be changed before the next logon \(chage -d 0\)/);
  assert.match(verdict('alice:x:0:0::7:::')!, /must be changed/, 'even without a maximum age');
});

test('password aging: past max is refused (must change), past max+inactive the account is inactive', () => {
  assert.equal(verdict('alice:x:19970:0:30:7:5::'), undefined, 'exactly max days old');
  assert.match(verdict('alice:x:19969:0:30:7:5::')!, /^the password expired on 2024-10-03 \(chage -M 30\) and must be changed/);
  assert.match(verdict('alice:x:19960:0:30:7:5::')!, /^the password expired on 2024-09-24 and the account is inactive since 2024-09-29/);
  assert.match(verdict('alice:x:19960:0:30:7:::')!, /password expired on 2024-09-24 \(chage -M 30\)/, 'no inactive period: still must change');
});

test("another user's entry, or one that does not parse, gives no verdict", () => {
  assert.equal(parseShadowLine('alice', 'bob:x:19990:0:99999:7:::'), undefined);
  assert.equal(parseShadowLine('alice', 'alice:x:19990:0:99999:7::'), undefined, 'a field short');
  assert.equal(parseShadowLine('alice', 'alice:x:soon:0:99999:7:::'), undefined);
  assert.equal(parseShadowLine('alice', 'alice:x:1e5:0:99999:7:::'), undefined);
  assert.deepEqual(parseShadowLine('alice', 'alice:x:19990:0:99999:7:::\n'), { lastChange: 19990, maxDays: 99999, inactiveDays: undefined, expire: undefined });
});

test('days count from the epoch in UTC', () => {
  assert.equal(epochDay(Date.UTC(2024, 9, 4, 23, 59)), TODAY);
  assert.equal(epochDay(Date.UTC(2024, 9, 5)), TODAY + 1);
});

test('through NSS (getent): a name with no shadow entry is allowed, PAM having decided', async () => {
  assert.equal(await accountExpiryProblem('nosuchuser-wharf-expiry'), undefined);
});
