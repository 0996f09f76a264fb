/**
 * Wharf's own users (IIS Manager users' analog), for sites that should not use Linux accounts.
 * Kept under the system drive, readable by root only (workers run as pool users and cannot read
 * any of it):
 *
 *   <systemDrive>/wharf/users/          0700
 *     users.json                        0600  { "version": 1, "users": [{ name, hash, secret, created }] }
 *     machine.key                       0600  32 random bytes (hex): the key of every `secret`
 *
 * `hash` is argon2id (the `argon2` package's defaults: 64 MiB, 3 passes), what Basic is checked
 * against. `secret` is the password encrypted with the machine key (AES-256-GCM, the name as
 * associated data so entries cannot be swapped): Digest needs the password itself to recompute a
 * response for any realm, as IIS needs "store password using reversible encryption" for Digest.
 * Whoever reads machine.key and users.json (root) can recover Wharf users' passwords; Linux
 * accounts are never stored here.
 *
 * `wharf user add|delete` (src/cli/users.ts) write the file whole under a lock (secure-file.ts);
 * a running server re-reads it when it changes (UserDirectory).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SecurityError, TlsError } from '../errors.js';
import { MAX_CREDENTIAL_PASSWORD } from '../ipc/credential-validate.js';
import { ensureDirectory, withFileLock, writeFileAtomic } from '../tls/secure-file.js';
import { tlsPaths } from '../tls/tls-paths.js';

export interface UserStorePaths {
  /** `<systemDrive>/wharf/users` */
  readonly folder: string;
  readonly users: string;
  readonly key: string;
}

export function userStorePaths(systemDrive: string): UserStorePaths {
  const folder = join(tlsPaths(systemDrive).base, 'users');
  return { folder, users: join(folder, 'users.json'), key: join(folder, 'machine.key') };
}

export interface StoredUser {
  readonly name: string;
  /** argon2id, PHC string form. */
  readonly hash: string;
  /** base64(iv ‖ tag ‖ ciphertext) of the password under the machine key. */
  readonly secret: string;
  /** ISO date. */
  readonly created: string;
}

/** Letters, digits and `._@-`, 1 to 64 of them, not starting with `-`: no `:` (Basic), `\` (domains) or spaces. */
const USER_NAME = /^[A-Za-z0-9._@][A-Za-z0-9._@-]{0,63}$/;

export function checkUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new SecurityError('SEC_USER_NAME', `"${name.slice(0, 80)}" is not a valid Wharf user name: 1 to 64 letters, digits, ".", "_", "@" or "-" (not first)`);
  }
  return name;
}

function storeError(what: string, err: unknown): SecurityError {
  const e = err as NodeJS.ErrnoException;
  return new SecurityError('SEC_USER_STORE', `${what} (${e.code !== undefined ? `${e.code}: ` : ''}${e.message ?? String(err)})`, { cause: err });
}

/** The users in `file`; [] when there is no file yet. Throws SEC_USER_STORE when it is not valid. */
export function readUsers(file: string): StoredUser[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storeError(`cannot read ${file}`, err);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw storeError(`${file} is not valid JSON`, err);
  }
  const users = (v as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) throw new SecurityError('SEC_USER_STORE', `${file} has no "users" list`);
  return users.filter(
    (u): u is StoredUser => typeof u === 'object' && u !== null && typeof u.name === 'string' && typeof u.hash === 'string' && typeof u.secret === 'string',
  );
}

/** The machine key; made (0600, root's) when `create` and there is none. */
export function machineKey(paths: UserStorePaths, create: boolean): Buffer {
  try {
    if (existsSync(paths.key)) {
      const key = Buffer.from(readFileSync(paths.key, 'utf8').trim(), 'hex');
      if (key.length !== 32) throw new SecurityError('SEC_USER_STORE', `${paths.key} does not hold a 32-byte key in hex`);
      return key;
    }
    if (!create) throw new SecurityError('SEC_USER_STORE', `${paths.key} is missing: Wharf users' passwords cannot be decrypted`);
    const key = randomBytes(32);
    writeFileAtomic(paths.key, key.toString('hex') + '\n', 0o600);
    return key;
  } catch (err) {
    if (err instanceof SecurityError) throw err;
    throw storeError(`cannot read or create the machine key ${paths.key}`, err);
  }
}

export function encryptPassword(key: Buffer, name: string, password: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(name.toLowerCase(), 'utf8'));
  const ct = Buffer.concat([c.update(password, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
}

/** The password, or undefined when the secret does not decrypt under this key and name. */
export function decryptPassword(key: Buffer, name: string, secret: string): string | undefined {
  try {
    const b = Buffer.from(secret, 'base64');
    const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
    d.setAAD(Buffer.from(name.toLowerCase(), 'utf8'));
    d.setAuthTag(b.subarray(12, 28));
    return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/** `name`'s entry, names compared without case (as IIS compares user names). */
export function findUser(users: readonly StoredUser[], name: string): StoredUser | undefined {
  const lower = name.toLowerCase();
  return users.find((u) => u.name.toLowerCase() === lower);
}

async function argon2(): Promise<typeof import('argon2')> {
  return import('argon2');
}

/** The argon2id hash of a password, as the store keeps it. */
export async function hashPassword(password: string): Promise<string> {
  const a = await argon2();
  return a.hash(password, { type: a.argon2id });
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await (await argon2()).verify(hash, password);
  } catch {
    return false; // a damaged hash verifies nothing
  }
}

/** Edits made by `wharf user`: read, change, write whole, under the store's lock. */
export class UserStore {
  readonly paths: UserStorePaths;
  constructor(systemDrive: string) {
    this.paths = userStorePaths(systemDrive);
  }

  list(): StoredUser[] {
    return readUsers(this.paths.users);
  }

  async add(name: string, password: string): Promise<StoredUser> {
    checkUserName(name);
    if (password === '') throw new SecurityError('SEC_USER_STORE', 'a Wharf user needs a password that is not empty');
    if (Buffer.byteLength(password) > MAX_CREDENTIAL_PASSWORD) throw new SecurityError('SEC_USER_STORE', `a password is at most ${MAX_CREDENTIAL_PASSWORD} bytes`);
    const hash = await hashPassword(password);
    return this.#edit((users, key) => {
      const existing = findUser(users, name);
      if (existing !== undefined) throw new SecurityError('SEC_USER_EXISTS', `a Wharf user "${existing.name}" exists already`);
      const user: StoredUser = { name, hash, secret: encryptPassword(key, name, password), created: new Date().toISOString() };
      return { users: [...users, user], out: user };
    });
  }

  async delete(name: string): Promise<StoredUser> {
    return this.#edit((users) => {
      const existing = findUser(users, name);
      if (existing === undefined) throw new SecurityError('SEC_USER_NOT_FOUND', `there is no Wharf user "${name}"`);
      return { users: users.filter((u) => u !== existing), out: existing };
    });
  }

  async #edit<T>(change: (users: StoredUser[], key: Buffer) => { users: StoredUser[]; out: T }): Promise<T> {
    try {
      ensureDirectory(this.paths.folder, 0o700);
      return await withFileLock(this.paths.users, () => {
        const { users, out } = change(readUsers(this.paths.users), machineKey(this.paths, true));
        writeFileAtomic(this.paths.users, JSON.stringify({ version: 1, users }, null, 2) + '\n', 0o600);
        return out;
      });
    } catch (err) {
      // secure-file.ts speaks for the certificate store; here it is the user store that failed.
      if (err instanceof TlsError) throw storeError(err.message, err.cause ?? err);
      throw err;
    }
  }
}

/**
 * The running server's view of the store: re-read when users.json changes (checked every
 * POLL_MS, and before a lookup that misses), so `wharf user add|delete` applies without a restart.
 * `onChange` lets the caller drop cached logons.
 */
export class UserDirectory {
  static readonly POLL_MS = 2000;
  readonly #paths: UserStorePaths;
  readonly #onChange: () => void;
  readonly #warn: (message: string) => void;
  #users: readonly StoredUser[] = [];
  #key: Buffer | undefined;
  #stamp = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(systemDrive: string, onChange: () => void, warn: (message: string) => void) {
    this.#paths = userStorePaths(systemDrive);
    this.#onChange = onChange;
    this.#warn = warn;
    this.refresh();
  }

  /** Poll for changes until close(). */
  watch(): void {
    this.#timer ??= setInterval(() => this.refresh(), UserDirectory.POLL_MS).unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-read when users.json changed (size, time or inode); a broken file keeps the last good list. */
  refresh(): void {
    let stamp = 'none';
    try {
      const st = statSync(this.#paths.users);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      // no file: no users
    }
    if (stamp === this.#stamp) return;
    try {
      const users = stamp === 'none' ? [] : readUsers(this.#paths.users);
      this.#key = users.length === 0 ? undefined : machineKey(this.#paths, false);
      this.#users = users;
      const first = this.#stamp === '';
      this.#stamp = stamp;
      if (!first) this.#onChange();
    } catch (err) {
      this.#stamp = stamp; // reported once per version of the file
      this.#warn(`${(err as SecurityError).code ?? 'SEC_USER_STORE'}: ${(err as Error).message}; Wharf users keep the last good list`);
    }
  }

  find(name: string): StoredUser | undefined {
    const u = findUser(this.#users, name);
    if (u !== undefined) return u;
    this.refresh();
    return findUser(this.#users, name);
  }

  /** The user's password for Digest; undefined when it cannot be decrypted (reported by the caller). */
  password(user: StoredUser): string | undefined {
    return this.#key === undefined ? undefined : decryptPassword(this.#key, user.name, user.secret);
  }
}
