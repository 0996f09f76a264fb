/**
 * A real ACME CA on loopback for the ACME tests: Pebble (Let's Encrypt's test CA, Debian package
 * `pebble`) with its DNS answered by pebble-challtestsrv (every name → 127.0.0.1), so Pebble's
 * validation authority really connects to this machine: HTTP-01 on `httpPort`, TLS-ALPN-01 on
 * `tlsPort`. Never the internet. Processes are killed when the test file's process exits.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { TestPki } from './openssl.js';
import { WHARF_BIN, freePort, run, tempDir } from './wharf.js';

const children = new Set<ChildProcess>();
let hooked = false;

export interface Pebble {
  /** The ACME directory URL (https, signed by caFile). */
  readonly directory: string;
  /** PEM of the root Pebble's https is signed by (for --directory-ca). */
  readonly caFile: string;
  /** Where Pebble's validation authority sends HTTP-01 requests. */
  readonly httpPort: number;
  /** Where it makes TLS-ALPN-01 connections. */
  readonly tlsPort: number;
  /** Everything Pebble printed so far (its request log). */
  output(): string;
  /** New orders Pebble received so far (POSTs to its new-order URL). */
  orders(): number;
  stop(): void;
}

/** Pebble with its DNS from pebble-challtestsrv; certificates valid `validitySeconds`. */
export async function startPebble(validitySeconds: number): Promise<Pebble> {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
  const work = tempDir('wharf-pebble-');
  const pki = new TestPki(join(work, 'pki'));
  const tlsCert = pki.leaf('localhost', { issuer: 'root', sans: ['127.0.0.1'] });
  const [acmePort, httpPort, tlsPort, dnsPort, challMgmt] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const dns = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${challMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''], { stdio: 'ignore' });
  children.add(dns);
  const config = join(work, 'pebble-config.json');
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: '',
        certificate: tlsCert.cert,
        privateKey: tlsCert.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        certificateValidityPeriod: validitySeconds,
      },
    }),
  );
  const pebble = spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // No sleeps before validation, no forged bad nonces, every order validated afresh.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
  });
  children.add(pebble);
  let out = '';
  pebble.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  pebble.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const ca = readFileSync(pki.root().cert, 'utf8');
  const end = Date.now() + 15000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = httpsGet(directory, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > end || pebble.exitCode !== null) assert.fail(`pebble did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    directory,
    caFile: pki.root().cert,
    httpPort,
    tlsPort,
    output: () => out,
    orders: () => (out.match(/POST \/order-plz/g) ?? []).length,
    stop() {
      for (const c of [pebble, dns]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
  };
}

/**
 * A system drive whose Central Certificate Store is enabled (folder `ccs`, password `ccs pass`)
 * and filled by ACME from `ca`, set up with the CLI as an administrator would, before any start.
 */
export async function acmeSystemDrive(ca: Pebble, extra: readonly string[] = []): Promise<{ sd: string; ccs: string }> {
  const base = tempDir('wharf-acme-sd-');
  const sd = join(base, 'systemdrive');
  const ccs = join(base, 'ccs');
  mkdirSync(ccs, { recursive: true });
  const wharf = (...args: string[]) => run(process.execPath, [WHARF_BIN, ...args, '--system-drive', sd]);
  const e = await wharf('centralcert', 'enable', '--path', ccs, '--password', 'ccs pass');
  assert.equal(e.code, 0, e.stderr);
  const r = await wharf('centralcert', 'acme', '--directory', ca.directory, '--email', 'admin@example.test', '--accept-tos', '--directory-ca', ca.caFile, ...extra);
  assert.equal(r.code, 0, r.stderr);
  return { sd, ccs };
}
