/**
 * `wharf user add|list|delete` (docs/cli.md, "Users"): Wharf's own users (IIS Manager users'
 * analog) in the store under the system drive (src/security/user-store.ts). Files only, with or
 * without a running server: a running server re-reads the store within seconds and its workers
 * drop cached logons. Exit 0 on success, 1 on an error (`wharf: CODE: message`), 2 on a usage error.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WharfError } from '../errors.js';
import { defaultSystemDrive } from '../server.js';
import { UserStore } from '../security/user-store.js';

export const USER_HELP = `  wharf user add <name> [--password <p>]    (without --password: asked for, or a line of stdin)
  wharf user list
  wharf user delete <name>
`;

const USAGE = `Usage:
${USER_HELP}
Each also takes --system-drive <dir> (default as wharf start). See docs/cli.md, "Users".
`;

class UsageError extends Error {}

/** A password typed at a terminal, not echoed; or the first line of stdin when it is not a terminal. */
async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    return text.split(/\r?\n/)[0] ?? '';
  }
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((done, fail) => {
      let typed = '';
      const onData = (s: string): void => {
        for (const ch of s) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            done(typed);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            fail(new UsageError('cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

async function run(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { password: { type: 'string' }, 'system-drive': { type: 'string' }, help: { type: 'boolean' } } });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const verb = positionals[1];
  if (values.help === true || verb === undefined) {
    process.stdout.write(USAGE);
    return values.help === true ? 0 : 2;
  }
  const store = new UserStore(resolve(values['system-drive'] ?? defaultSystemDrive()));
  switch (verb) {
    case 'add': {
      if (positionals.length !== 3) throw new UsageError('wharf user add takes one user name');
      let password = values.password;
      if (password === undefined) {
        password = await readPassword('Password: ');
        if (process.stdin.isTTY && (await readPassword('Again: ')) !== password) throw new UsageError('the two passwords differ');
      }
      const u = await store.add(positionals[2]!, password);
      process.stdout.write(`Added Wharf user "${u.name}" to ${store.paths.users}\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length !== 2) throw new UsageError('wharf user list takes no argument');
      const users = store.list();
      process.stdout.write(`${users.length} Wharf user(s) in ${store.paths.users}\n`);
      for (const u of users) process.stdout.write(`${u.name.padEnd(32)} created ${u.created}\n`);
      return 0;
    }
    case 'delete': {
      if (positionals.length !== 3) throw new UsageError('wharf user delete takes one user name');
      const u = await store.delete(positionals[2]!);
      process.stdout.write(`Deleted Wharf user "${u.name}"\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown verb "${verb}"`);
  }
}

/** `wharf user …`: argv starts with "user". */
export async function runUserCommand(argv: readonly string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`wharf: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof WharfError) {
      process.stderr.write(`wharf: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
