/**
 * Linux accounts, the analog of Windows' local and domain accounts: passwords are checked by PAM
 * (so /etc/shadow, LDAP or SSSD work as the machine is set up) and identities come from NSS.
 *
 * PAM: the optional native module `authenticate-pam`, loaded on first use. It runs
 * pam_authenticate on libuv's thread pool, so the event loop never waits for it; a wrong password
 * holds a pool thread for PAM's failure delay (pam_unix, pam_faildelay: 2–3 s), which is why
 * credential-service.ts lets only a few PAM conversations run at once. The PAM service is `wharf`
 * when /etc/pam.d/wharf exists, else `login` (docs/configuration.md, "Users and credentials").
 * The module copies the user and password into 128-byte buffers: longer ones, and ones with a
 * NUL, are refused before PAM sees them (PAM would otherwise check a cut-off password).
 *
 * Identity: one `id NAME` per logon (logons are cached, so this runs once per user per 15
 * minutes): uid, primary gid and every group with its name, through NSS as `id` resolves them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Identity } from '../ipc/credential-messages.js';

/** What authenticate-pam exports. */
interface PamModule {
  authenticate(user: string, password: string, done: (err: string | undefined) => void, options?: { serviceName?: string; remoteHost?: string }): void;
}

/** authenticate-pam's buffers hold 127 bytes and a NUL. */
export const MAX_PAM_BYTES = 127;

/** The PAM service Wharf uses: its own when the administrator made /etc/pam.d/wharf, else login's. */
export function pamService(pamDir = '/etc/pam.d'): string {
  return existsSync(`${pamDir}/wharf`) ? 'wharf' : 'login';
}

let pam: PamModule | string | undefined;

/** The PAM module, or why it cannot be used (what to install). */
export function loadPam(): PamModule | string {
  if (pam !== undefined) return pam;
  try {
    // A native CommonJS addon: ESM's import() cannot load a .node main.
    pam = createRequire(import.meta.url)('authenticate-pam') as PamModule;
  } catch (err) {
    pam = `the optional module authenticate-pam is not installed or did not build (${(err as Error).message.split('\n')[0]}): install libpam0g-dev (Debian/Ubuntu) or pam-devel, then run npm rebuild authenticate-pam`;
  }
  return pam;
}

export type PamOutcome = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** pam_authenticate for `user`/`password` under `service`; `remoteHost` becomes PAM_RHOST. */
export function pamAuthenticate(module: PamModule, service: string, user: string, password: string, remoteHost: string): Promise<PamOutcome> {
  if (password.includes('\0') || user.includes('\0')) return Promise.resolve({ ok: false, message: 'a NUL character in the user name or password' });
  if (Buffer.byteLength(password) > MAX_PAM_BYTES || Buffer.byteLength(user) > MAX_PAM_BYTES) {
    return Promise.resolve({ ok: false, message: `a user name or password longer than the ${MAX_PAM_BYTES} bytes PAM is given` });
  }
  return new Promise((resolve) => {
    try {
      module.authenticate(user, password, (err) => resolve(err === undefined ? { ok: true } : { ok: false, message: `PAM: ${err}` }), {
        serviceName: service,
        remoteHost: remoteHost.slice(0, MAX_PAM_BYTES),
      });
    } catch (err) {
      resolve({ ok: false, message: `PAM: ${(err as Error).message}` });
    }
  });
}

/** `uid=1001(alice) gid=1001(alice) groups=1001(alice),27(sudo)` → the identity; undefined if it does not parse. */
export function parseIdOutput(name: string, text: string): Identity | undefined {
  const m = /^uid=(\d+)\(([^)]*)\) gid=(\d+)(?:\(([^)]*)\))?(?: groups=(.*))?$/.exec(text.trim());
  if (m === null || m[2] !== name) return undefined;
  const gid = Number(m[3]);
  const groups: { name: string; gid: number }[] = [{ name: m[4] ?? String(gid), gid }];
  for (const g of (m[5] ?? '').split(',')) {
    const x = /^(\d+)(?:\((.*)\))?$/.exec(g);
    if (x === null || Number(x[1]) === gid) continue;
    groups.push({ name: x[2] ?? x[1]!, gid: Number(x[1]) });
  }
  return { name, provider: 'system', uid: Number(m[1]), gid, groups };
}

/** Whether `name` can name an NSS account at all (no control characters, no field separator, not an option). */
export function isAccountName(name: string): boolean {
  return name !== '' && !name.startsWith('-') && !/[\x00-\x1f\x7f:]/.test(name);
}

/** How NSS tools (`id`, `getent`) are run: no shell, bounded time (output: execFile's 1 MiB), C locale. */
export function nssToolOptions(): { timeout: number; env: NodeJS.ProcessEnv } {
  return { timeout: 5000, env: { LC_ALL: 'C', PATH: process.env['PATH'] ?? '/usr/bin:/bin' } };
}

/**
 * The Linux account `name` with its groups, undefined when NSS has no such user. A user name that
 * is all digits is not taken as a uid: `id` would, so the name it prints must be the one asked.
 */
export function lookupAccount(name: string): Promise<Identity | undefined> {
  if (!isAccountName(name)) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    execFile('id', ['--', name], nssToolOptions(), (err, stdout) => {
      if (err !== null) {
        // exit 1: no such user; a timeout or a missing `id` is a failure of the lookup itself.
        if (typeof err.code === 'number' && err.code === 1) resolve(undefined);
        else reject(new Error(`id ${name}: ${err.message}`));
        return;
      }
      resolve(parseIdOutput(name, stdout));
    });
  });
}
