import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminSocketCandidates, adminSocketPath } from './paths.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const CONFIG = '/etc/wharf/applicationHost.config';
const NAME = `wharf-${createHash('sha256').update(CONFIG).digest('hex').slice(0, 16)}.sock`;

test('the socket is named after the absolute config path, in /run/wharf for root', () => {
  assert.equal(adminSocketPath(CONFIG, { uid: 0, env: {} }), `/run/wharf/${NAME}`);
  assert.match(NAME, /^wharf-[0-9a-f]{16}\.sock$/);
  // A relative path names the same file as its absolute form.
  const cwdRelative = adminSocketPath('applicationHost.config', { uid: 0, env: {} });
  assert.equal(cwdRelative, adminSocketPath(join(process.cwd(), 'applicationHost.config'), { uid: 0, env: {} }));
  assert.notEqual(adminSocketPath('/other/applicationHost.config', { uid: 0, env: {} }), `/run/wharf/${NAME}`);
});

test('a user gets $XDG_RUNTIME_DIR/wharf, else <tmpdir>/wharf-<uid>', () => {
  assert.equal(adminSocketPath(CONFIG, { uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' } }), `/run/user/1000/wharf/${NAME}`);
  assert.equal(adminSocketPath(CONFIG, { uid: 1000, env: {}, tmpdir: '/tmp' }), `/tmp/wharf-1000/${NAME}`);
});

test('WHARF_ADMIN_SOCKET names the socket outright, for server and CLI alike', () => {
  const env = { WHARF_ADMIN_SOCKET: '/srv/admin.sock', XDG_RUNTIME_DIR: '/run/user/1000' };
  assert.equal(adminSocketPath(CONFIG, { uid: 1000, env }), '/srv/admin.sock');
  assert.deepEqual(adminSocketCandidates(CONFIG, { uid: 1000, env }), ['/srv/admin.sock']);
});

test('the embedded default started with --port is its own server', () => {
  const plain = adminSocketPath(CONFIG, { uid: 0, env: {} });
  const on8081 = adminSocketPath(CONFIG, { uid: 0, env: {}, port: 8081 });
  assert.notEqual(plain, on8081);
  assert.equal(on8081, adminSocketPath(CONFIG, { uid: 0, env: {}, port: 8081 }));
});

test('the CLI tries the primary path first, then the other places a server of this user or root may use', () => {
  const user = adminSocketCandidates(CONFIG, { uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' }, tmpdir: '/tmp' });
  assert.deepEqual(user, [`/run/user/1000/wharf/${NAME}`, `/tmp/wharf-1000/${NAME}`, `/run/wharf/${NAME}`]);
  const fake = tracked(mkdtempSync(join(tmpdir(), 'wharf-paths-')));
  mkdirSync(join(fake, 'run-user', '1000'), { recursive: true });
  mkdirSync(join(fake, 'run-user', 'not-a-uid'), { recursive: true });
  mkdirSync(join(fake, 'tmp', 'wharf-1001'), { recursive: true });
  mkdirSync(join(fake, 'tmp', 'unrelated'), { recursive: true });
  const root = adminSocketCandidates(CONFIG, { uid: 0, env: {}, tmpdir: join(fake, 'tmp'), runUserDir: join(fake, 'run-user') });
  assert.deepEqual(root, [`/run/wharf/${NAME}`, join(fake, 'run-user', '1000', 'wharf', NAME), join(fake, 'tmp', 'wharf-1001', NAME)]);
});
