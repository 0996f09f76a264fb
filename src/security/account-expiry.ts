/**
 * Whether a Linux account may log on today, by its shadow aging fields: what pam_unix's account
 * stage (pam_acct_mgmt) checks, which authenticate-pam never runs. IIS refuses a disabled or
 * expired Windows account, or one whose password expired, with 401.1; Wharf does the same for an
 * account that `chage -E` expired, whose password aged past its maximum (a web logon has no way to
 * change it), or that must change its password first (`chage -d 0`).
 *
 * The fields come from `getent shadow NAME` (NSS, so LDAP or SSSD shadow data counts too; the main
 * process is root, which reading /etc/shadow needs). An account NSS has no shadow entry for is
 * allowed: PAM already verified it, and its own account stage is not ours to guess.
 */
import { execFile } from 'node:child_process';
import { isAccountName, nssToolOptions } from './system-accounts.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The aging fields of a shadow entry in days since the epoch; undefined = empty (the feature is off). */
export interface ShadowAging {
  readonly lastChange: number | undefined;
  readonly maxDays: number | undefined;
  readonly inactiveDays: number | undefined;
  readonly expire: number | undefined;
}

/** `name:hash:lastchg:min:max:warn:inactive:expire:` → its aging fields; undefined if it is not `name`'s entry or a field is not a number. */
export function parseShadowLine(name: string, line: string): ShadowAging | undefined {
  const f = line.replace(/\n$/, '').split(':');
  if (f.length !== 9 || f[0] !== name) return undefined;
  const days = (s: string): number | undefined | null => (s === '' ? undefined : /^-?\d{1,9}$/.test(s) ? Number(s) : null);
  const [lastChange, maxDays, inactiveDays, expire] = [days(f[2]!), days(f[4]!), days(f[6]!), days(f[7]!)];
  if (lastChange === null || maxDays === null || inactiveDays === null || expire === null) return undefined;
  // -1 is how some NSS modules write an empty field.
  const set = (n: number | undefined): number | undefined => (n === undefined || n < 0 ? undefined : n);
  return { lastChange: set(lastChange), maxDays: set(maxDays), inactiveDays: set(inactiveDays), expire: set(expire) };
}

function date(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Why the account cannot log on `today` (days since the epoch), or undefined when it can: pam_unix's rules, in its order. */
export function accountExpiry(a: ShadowAging, today: number): string | undefined {
  if (a.expire !== undefined && today >= a.expire) return `the account expired on ${date(a.expire)} (chage -E)`;
  if (a.lastChange === 0) return 'the password must be changed before the next logon (chage -d 0), which a web logon cannot do';
  if (a.lastChange === undefined || a.maxDays === undefined) return undefined;
  // A last change in the future counts as today, as pam_unix does.
  const age = Math.max(0, today - a.lastChange);
  if (age <= a.maxDays) return undefined;
  const expired = date(a.lastChange + a.maxDays);
  if (a.inactiveDays !== undefined && age > a.maxDays + a.inactiveDays) {
    return `the password expired on ${expired} and the account is inactive since ${date(a.lastChange + a.maxDays + a.inactiveDays)} (chage -M, -I)`;
  }
  return `the password expired on ${expired} (chage -M ${a.maxDays}) and must be changed, which a web logon cannot do`;
}

/** Today in days since the epoch (UTC), as shadow counts. */
export function epochDay(nowMs: number): number {
  return Math.floor(nowMs / DAY_MS);
}

/**
 * Why the Linux account `name` cannot log on now, or undefined when it can (or NSS has no shadow
 * entry for it). Rejects when the lookup itself fails (timeout, no `getent`, an entry that does
 * not parse): the caller answers 'unavailable' rather than let an unchecked account in.
 */
export function accountExpiryProblem(name: string, nowMs = Date.now()): Promise<string | undefined> {
  if (!isAccountName(name)) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    execFile('getent', ['shadow', '--', name], { ...nssToolOptions(), maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err !== null) {
        // exit 2: no such entry (also what a non-root caller gets for /etc/shadow).
        if (typeof err.code === 'number' && err.code === 2) resolve(undefined);
        else reject(new Error(`getent shadow ${name}: ${err.message}`));
        return;
      }
      const aging = parseShadowLine(name, stdout);
      if (aging === undefined) reject(new Error(`getent shadow ${name}: an entry that does not parse`));
      else resolve(accountExpiry(aging, epochDay(nowMs)));
    });
  });
}
