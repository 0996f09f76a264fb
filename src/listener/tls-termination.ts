/**
 * TLS on https bindings, the part of HTTP.sys that picks a certificate and speaks TLS before a
 * request exists. An accepted socket on a TLS port is wrapped here; once the handshake is done
 * the listener gets the TLS socket and treats it like any other connection.
 *
 * Which certificate (HTTP.sys's order): the https binding the connection belongs to (SNI name,
 * local address and port; the same precedence as a request's Host) decides through its sslFlags:
 * 2 → the Central Certificate Store file for the SNI name, 1 → the SSL table's `hostnameport`
 * entry, then (every binding, and clients that send no SNI) the `ipport` entry for the local
 * address or the wildcard. A missing or broken certificate costs only the connections that need
 * it: the handshake fails, the reason is logged once a minute per binding, every other binding
 * keeps serving.
 *
 * The TLS policy is one place: TLS 1.2 and 1.3 only, forward-secret AEAD suites only, session
 * tickets with keys shared by every context (OpenSSL encrypts tickets with the first context's
 * keys even after SNI switched it) and rotated every TICKET_KEY_ROTATION_MS.
 */
import { constants as cryptoConstants, randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { createSecureContext, rootCertificates, TLSSocket, type SecureContext } from 'node:tls';
import type { BindingConfig } from '../config/types.js';
import { MAX_CLIENT_HELLO, parseClientHello } from './client-hello.js';
import { normalizeAddress, type RoutingTable } from './routing.js';
import { WheelTimer, type TimerOwner, type TimerWheel } from './timer-wheel.js';

/** A certificate with its key, as the certificate store hands it out (src/tls/). */
export interface CertificateMaterial {
  readonly key: KeyObject;
  /** PEM: the leaf first, then intermediates. */
  readonly chain: string;
  readonly leaf: X509Certificate;
  /** SHA-1 of the leaf's DER, 40 upper-case hex digits (Windows' thumbprint). */
  readonly thumbprint: string;
  /** The file it came from (for messages). */
  readonly source: string;
}

/** The SSL table entry a certificate came from: its netsh options (`clientcertnegotiation` …). */
export interface SslEntryOptions {
  readonly options: Readonly<Record<string, string>>;
}

export type CertificateLookup =
  | { readonly ok: true; readonly cert: CertificateMaterial; readonly binding?: SslEntryOptions }
  | { readonly ok: false; readonly error: Error; readonly binding?: SslEntryOptions };

/** Where certificates come from: the store, HTTP.sys's SSL table and the Central Certificate Store. */
export interface CertificateProvider {
  /** The `ipport` entry for ip:port (exact address first, then 0.0.0.0 / [::]); undefined: none. */
  forIpPort(ip: string, port: number): CertificateLookup | undefined;
  /** The `hostnameport` entry (SNI bindings, sslFlags 1); undefined: none. */
  forHostnamePort(host: string, port: number): CertificateLookup | undefined;
  /** The Central Certificate Store file for a host (sslFlags 2); undefined: CCS disabled or no file. */
  forCentralStore(host: string): CertificateLookup | undefined;
  /**
   * Whom client certificates may come from (PEM; each string may hold several certificates): the
   * system's bundle and the trust stores. The same array until it changes. Absent: Node's roots.
   */
  trustedCertificates?(): readonly string[];
  /** Whether a verified client certificate (DER) is on a revocation list of its issuer. Absent: never. */
  isRevoked?(der: Buffer): boolean;
}

/** No provider configured: every lookup answers "no entry". */
export const NO_CERTIFICATES: CertificateProvider = {
  forIpPort: () => undefined,
  forHostnamePort: () => undefined,
  forCentralStore: () => undefined,
  trustedCertificates: () => rootCertificates,
};

/** SSL_FLAGS bits of an https binding. */
export const SSL_FLAG = Object.freeze({ sni: 1, centralStore: 2, disableHttp2: 4, disableOcsp: 8, disableQuic: 16, disableTls13: 32, disableLegacyTls: 64 });

/**
 * TLS 1.3 suites, then TLS 1.2 ECDHE with AEAD ciphers only (Mozilla's "intermediate" without
 * the finite-field DHE suites, which need parameters and cost a slow handshake): no RSA key
 * exchange, no CBC, no SHA-1 MACs, no RC4/3DES/export.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
export const TLS_CURVES = 'X25519:prime256v1:secp384r1';
/** Session ticket keys live this long; tickets made with older keys mean a full handshake. */
export const TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;
/** A handshake not finished in this long is dropped (a slow-loris before the first request). */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** One log line per binding and reason at most this often. */
const REPORT_INTERVAL_MS = 60_000;

export interface TlsTerminationOptions {
  readonly provider: CertificateProvider;
  readonly timers: TimerWheel;
  readonly warn: (message: string) => void;
  /** The certificate for a port when nothing else names one (the development certificate of the embedded default). */
  readonly fallback?: ReadonlyMap<number, CertificateMaterial>;
}

/** ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737). */
const ACME_TLS_ALPN = 'acme-tls/1';

/** TLS-ALPN-01 challenges (AcmeManager): */
export interface AlpnChallenges {
  /** the certificate to present for a host while its challenge is pending; */
  lookup(host: string): { readonly keyPem: string; readonly certPem: string } | undefined;
  /** whether any is pending (a ClientHello is read first only then, or where names matter). */
  pending(): boolean;
}

/** What the listener learns when a handshake completes. */
export interface SecureConnection {
  readonly socket: TLSSocket;
  /** The TCP socket under it (a reset is sent on this one). */
  readonly raw: Socket;
  /** The certificate presented to the client. */
  readonly certificate: CertificateMaterial;
}

export class TlsTermination {
  readonly #provider: CertificateProvider;
  readonly #timers: TimerWheel;
  readonly #warn: (message: string) => void;
  #fallback: ReadonlyMap<number, CertificateMaterial>;
  /** SecureContexts by thumbprint and protocol variant; dropped when certificates change. */
  #contexts = new Map<string, SecureContext>();
  /** Which material each context serves (for server variables). */
  readonly #materialOf = new WeakMap<SecureContext, CertificateMaterial>();
  #ticketKeys = randomBytes(48);
  #rotatedAt = 0;
  readonly #reported = new Map<string, number>();
  /** Set by the server when ACME is on. */
  alpnChallenges: AlpnChallenges | undefined = undefined;

  constructor(options: TlsTerminationOptions) {
    this.#provider = options.provider;
    this.#timers = options.timers;
    this.#warn = options.warn;
    this.#fallback = options.fallback ?? new Map();
    this.#rotatedAt = options.timers.now();
  }


  set fallback(f: ReadonlyMap<number, CertificateMaterial>) {
    this.#fallback = f;
    this.invalidate();
  }

  /** Certificates changed on disk: new connections build their contexts afresh. */
  invalidate(): void {
    this.#contexts = new Map();
  }

  /**
   * Wrap an accepted socket on a TLS port. Its ClientHello is read first (client-hello.ts) so the
   * binding, and with it the certificate and the TLS versions, are known before OpenSSL starts.
   * `secure` runs once the handshake completed; a failed or timed-out handshake closes the socket.
   */
  accept(raw: Socket, routing: RoutingTable, alpn: readonly string[], secure: (c: SecureConnection) => void): void {
    this.#maybeRotate();
    // The ClientHello is read first only where its name can change the handshake: a port whose
    // bindings are chosen by name, or a pending ACME TLS-ALPN-01 challenge. Elsewhere (one
    // host-less binding, the development certificate) OpenSSL reads it itself, which saves a
    // read and an event-loop turn per connection (about 15 % of a resumed handshake's CPU).
    const peek = this.alpnChallenges?.pending() === true || routing.namesMatter(raw.localPort ?? 0);
    new PendingHandshake(raw, this.#timers, peek, (hello, offered) => {
      // RFC 8737: the CA's validation offers only acme-tls/1 with the name being validated; it gets
      // the challenge certificate and protocol, and nothing else happens on that connection.
      if (offered.includes(ACME_TLS_ALPN) && hello !== undefined) {
        const challenge = this.alpnChallenges?.lookup(hello);
        if (challenge !== undefined) return this.#acmeTlsAlpn(raw, challenge);
      }
      return this.#start(raw, routing, alpn, secure, hello);
    });
  }

  #acmeTlsAlpn(raw: Socket, challenge: { readonly keyPem: string; readonly certPem: string }): TLSSocket {
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext: createSecureContext({ key: challenge.keyPem, cert: challenge.certPem, minVersion: 'TLSv1.2' }),
      ALPNCallback: ({ protocols }: { protocols: string[] }) => (protocols.includes(ACME_TLS_ALPN) ? ACME_TLS_ALPN : undefined),
    } as ConstructorParameters<typeof TLSSocket>[1]);
    tls.on('error', () => tls.destroy());
    tls.once('secure', () => tls.end());
    return tls;
  }

  #start(raw: Socket, routing: RoutingTable, alpn: readonly string[], secure: (c: SecureConnection) => void, serverName: string | undefined): TLSSocket | undefined {
    const local = normalizeAddress(raw.localAddress ?? '');
    const port = raw.localPort ?? 0;
    const chosen = this.#select(routing, local, port, serverName);
    if (chosen === undefined) {
      // No certificate for this name: a handshake failure alert is all a client could get.
      raw.destroy();
      return undefined;
    }
    const binding = routing.binding(local, port, serverName);
    const noH2 = binding !== undefined && (binding.sslFlags & SSL_FLAG.disableHttp2) !== 0;
    // HTTP.sys asks for a client certificate in the handshake when the SSL table entry says
    // clientcertnegotiation=enable; TLS 1.3 has no renegotiation, so that is the only time Wharf
    // can ask. The certificate is verified but never refused here: security/access decides per URL
    // (403.7/403.13/403.16/403.17), as IIS does.
    const requestCert = this.#negotiatesClientCertificates(binding, local, port, serverName);
    const secureContext = requestCert ? this.#clientCertificateContext(chosen, binding) : chosen;
    const tls = new TLSSocket(raw, {
      isServer: true,
      secureContext,
      requestCert: secureContext !== chosen,
      rejectUnauthorized: false,
      ALPNCallback: ({ protocols }: { protocols: string[] }) => {
        for (const p of alpn) {
          if (p === 'h2' && noH2) continue;
          if (protocols.includes(p)) return p;
        }
        return undefined;
      },
    } as ConstructorParameters<typeof TLSSocket>[1]);
    tls.on('error', (err: Error & { code?: string }) => {
      // OpenSSL saw a plain HTTP request where a ClientHello belongs (a ClientHello read first
      // tells the same, PendingHandshake): nginx's courtesy answer, in plain text on the TCP socket.
      if (err.code === 'ERR_SSL_HTTP_REQUEST' && raw.writable) {
        raw.end(PLAIN_HTTP_ON_TLS_PORT);
        return;
      }
      tls.destroy();
    });
    tls.once('secure', () => {
      // What tls.Server does for the sockets it accepts (onServerSocketSecure in Node's
      // _tls_wrap.js), done here since the socket is wrapped by hand: the handshake is over (an
      // HTTP/2 session waits for secureConnecting to turn false before it reads a frame) and a
      // client certificate's verification result is read (verdict).
      const internal = tls as TLSSocket & { secureConnecting?: boolean; _releaseControl?: () => boolean };
      internal._releaseControl?.();
      internal.secureConnecting = false;
      const certificate = this.#materialOf.get(secureContext);
      if (certificate === undefined) {
        tls.destroy();
        return;
      }
      if (secureContext !== chosen) verdict(tls, this.#provider);
      secure({ socket: tls, raw, certificate });
    });
    return tls;
  }

  /**
   * Whether the handshake asks for a client certificate: the `clientcertnegotiation` of the SSL
   * table entry that supplies the binding's certificate, or (a certificate from the Central
   * Certificate Store or the development certificate, which have no entry) of the `ipport` entry
   * for the address and port.
   */
  #negotiatesClientCertificates(binding: BindingConfig | undefined, local: string, port: number, serverName: string | undefined): boolean {
    const r = binding === undefined ? this.#provider.forIpPort(local, port) : this.#lookup(binding, local, port, serverName);
    const entry = r?.binding ?? this.#provider.forIpPort(local, port)?.binding;
    return entry?.options['clientcertnegotiation'] === 'enable';
  }

  /** The same certificate's context that also asks for, and verifies, client certificates. */
  #clientCertificateContext(plain: SecureContext, binding: BindingConfig | undefined): SecureContext {
    const cert = this.#materialOf.get(plain);
    if (cert === undefined) return plain;
    try {
      return this.#context(cert, binding?.sslFlags ?? 0, true);
    } catch (err) {
      // A trusted certificate OpenSSL cannot take: serve without asking for client certificates.
      if (binding !== undefined) this.#report(binding, `the trusted CA certificates cannot be used (${(err as Error).message}); client certificates are not requested`);
      return plain;
    }
  }

  /**
   * Which certificate each https binding would present (for the start-up and reload lines): the
   * problems, one per binding. A binding with a host and no SNI name can still get the ipport one.
   */
  problems(bindings: ReadonlyArray<{ site: string; binding: BindingConfig }>): string[] {
    return this.bindingProblems(bindings).map((p) => p.message);
  }

  /** problems(), with the binding each line is about (`wharf check` prints its file and line). */
  bindingProblems(bindings: ReadonlyArray<{ site: string; binding: BindingConfig }>): Array<{ site: string; binding: BindingConfig; message: string }> {
    const out: Array<{ site: string; binding: BindingConfig; message: string }> = [];
    for (const { site, binding } of bindings) {
      if (binding.protocol.toLowerCase() !== 'https') continue;
      const host = binding.host === '' ? undefined : binding.host.startsWith('*.') ? 'wharf-check' + binding.host.slice(1) : binding.host;
      const r = this.#lookup(binding, binding.ip === '*' ? '0.0.0.0' : binding.ip, binding.port, host);
      if (r === undefined && this.#fallback.has(binding.port)) continue;
      if (r === undefined) out.push({ site, binding, message: `site "${site}": https binding ${binding.bindingInformation} has no certificate: ${this.#missing(binding, host)}` });
      else if (!r.ok) out.push({ site, binding, message: `site "${site}": https binding ${binding.bindingInformation} cannot be served: ${r.error.message}` });
    }
    return out;
  }

  #select(routing: RoutingTable, local: string, port: number, servername: string | undefined): SecureContext | undefined {
    const binding = routing.binding(local, port, servername);
    const r = binding === undefined ? this.#provider.forIpPort(local, port) : this.#lookup(binding, local, port, servername);
    const fb = r === undefined ? this.#fallback.get(port) : undefined;
    const cert = r !== undefined && r.ok ? r.cert : fb;
    let reason: string;
    if (cert !== undefined) {
      try {
        return this.#context(cert, binding?.sslFlags ?? 0);
      } catch (err) {
        // OpenSSL refused the pair (a key that does not match, an unusable chain).
        reason = `${cert.source}: ${(err as Error).message}`;
      }
    } else {
      reason = r === undefined || r.ok ? (binding === undefined ? 'no binding' : this.#missing(binding, servername)) : r.error.message;
    }
    if (binding !== undefined) this.#report(binding, reason);
    return undefined;
  }

  #lookup(binding: BindingConfig, local: string, port: number, servername: string | undefined): CertificateLookup | undefined {
    let r: CertificateLookup | undefined;
    if (servername !== undefined) {
      if ((binding.sslFlags & SSL_FLAG.centralStore) !== 0) r = this.#provider.forCentralStore(servername);
      else if ((binding.sslFlags & SSL_FLAG.sni) !== 0) {
        r = this.#provider.forHostnamePort(servername, port);
        if (r === undefined && binding.host !== '' && binding.host !== servername) r = this.#provider.forHostnamePort(binding.host, port);
      }
    }
    return r ?? this.#provider.forIpPort(local, port);
  }

  #missing(binding: BindingConfig, servername: string | undefined): string {
    const ipport = `ipport=${binding.ip === '*' ? '0.0.0.0' : binding.ip.includes(':') ? `[${binding.ip}]` : binding.ip}:${binding.port}`;
    if ((binding.sslFlags & SSL_FLAG.centralStore) !== 0) {
      return `sslFlags 2 uses the Central Certificate Store, which has no file for "${servername ?? binding.host}" (and there is no SSL table entry ${ipport}); see \`wharf centralcert show\``;
    }
    if ((binding.sslFlags & SSL_FLAG.sni) !== 0) {
      return `no SSL table entry hostnameport=${servername ?? binding.host}:${binding.port} (nor ${ipport}); add one with \`wharf sslcert add hostnameport=${servername ?? binding.host}:${binding.port} certhash=<thumbprint>\``;
    }
    return `no SSL table entry ${ipport}; add one with \`wharf sslcert add ${ipport} certhash=<thumbprint>\``;
  }

  #report(binding: BindingConfig, reason: string): void {
    const key = binding.bindingInformation + '\0' + reason;
    const now = this.#timers.now();
    const last = this.#reported.get(key);
    if (last !== undefined && now - last < REPORT_INTERVAL_MS) return;
    if (this.#reported.size > 1000) this.#reported.clear();
    this.#reported.set(key, now);
    this.#warn(`TLS handshake refused on https binding ${binding.bindingInformation}: ${reason}`);
  }

  #context(cert: CertificateMaterial, sslFlags: number, clientCertificates = false): SecureContext {
    const no13 = (sslFlags & SSL_FLAG.disableTls13) !== 0;
    const key = (no13 ? cert.thumbprint + '/1.2' : cert.thumbprint) + (clientCertificates ? '/cc' : '');
    let ctx = this.#contexts.get(key);
    if (ctx !== undefined && this.#materialOf.get(ctx) === cert) return ctx;
    ctx = createSecureContext({
      // Client certificates are verified against the system's CAs and the trust stores; those
      // CAs' names go in the CertificateRequest, so clients (browsers) offer a fitting certificate.
      ...(clientCertificates ? { ca: [...(this.#provider.trustedCertificates?.() ?? rootCertificates)] } : {}),
      key: cert.key.export({ format: 'pem', type: 'pkcs8' }),
      cert: cert.chain,
      minVersion: 'TLSv1.2',
      maxVersion: no13 ? 'TLSv1.2' : 'TLSv1.3',
      ciphers: TLS_CIPHERS,
      ecdhCurve: TLS_CURVES,
      honorCipherOrder: true,
      // No renegotiation at all (Schannel refuses client-initiated renegotiation too): a client
      // that renegotiates again and again costs the server a handshake each time (testssl's
      // "Secure Client-Initiated Renegotiation: DoS threat"), and Wharf never asks for one.
      secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
      // A session made without a client certificate is not resumed where one is asked for.
      sessionIdContext: clientCertificates ? 'wharf-cc' : 'wharf',
      ticketKeys: this.#ticketKeys,
      sessionTimeout: 300,
    });
    this.#contexts.set(key, ctx);
    this.#materialOf.set(ctx, cert);
    return ctx;
  }

  #maybeRotate(): void {
    const now = this.#timers.now();
    if (now - this.#rotatedAt < TICKET_KEY_ROTATION_MS) return;
    this.#rotatedAt = now;
    this.#ticketKeys = randomBytes(48);
    this.invalidate();
  }
}

/**
 * OpenSSL's verdict on the client certificate, as `authorized` / `authorizationError`: what
 * tls.Server sets on its sockets (its onServerSocketSecure) and a TLSSocket made around an
 * accepted socket does not. It asks the handle, as that code does; should the handle ever lack
 * verifyError, the certificate counts as unverified (fail closed: 403.16 where one is checked).
 */
function verdict(tls: TLSSocket, provider: CertificateProvider): void {
  const handle = (tls as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  const s = tls as { authorized: boolean; authorizationError?: Error | string };
  if (typeof handle?.verifyError !== 'function') {
    s.authorized = false;
    s.authorizationError = 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
    return;
  }
  const err = handle.verifyError();
  s.authorized = err === null || err === undefined;
  if (err) s.authorizationError = err.code ?? err.message;
  // OpenSSL is given no revocation lists (with one, it wants one for every CA of every chain): a
  // verified certificate is looked up in the trust stores' lists here, once per connection.
  if (s.authorized && provider.isRevoked !== undefined) {
    const raw = tls.getPeerCertificate(false)?.raw;
    if (raw !== undefined && provider.isRevoked(raw)) {
      s.authorized = false;
      s.authorizationError = 'CERT_REVOKED';
    }
  }
}

/**
 * An accepted TLS connection until its handshake is done: gathers the ClientHello, then hands the
 * socket to OpenSSL, and drops the connection if all that takes more than HANDSHAKE_TIMEOUT_MS
 * (one wheel timer, as every listener timer).
 */
class PendingHandshake implements TimerOwner {
  readonly #raw: Socket;
  readonly #timers: TimerWheel;
  readonly #timer: WheelTimer;
  readonly #start: (serverName: string | undefined, alpn: readonly string[]) => TLSSocket | undefined;
  #chunks: Buffer[] = [];
  #bytes = 0;
  #tls: TLSSocket | undefined;

  constructor(raw: Socket, timers: TimerWheel, peek: boolean, start: (serverName: string | undefined, alpn: readonly string[]) => TLSSocket | undefined) {
    this.#raw = raw;
    this.#timers = timers;
    this.#start = start;
    this.#timer = new WheelTimer(this);
    timers.arm(this.#timer, timers.now() + HANDSHAKE_TIMEOUT_MS);
    raw.on('error', () => undefined);
    raw.once('close', () => this.#done());
    if (peek) {
      raw.on('data', this.#onData);
      return;
    }
    this.#handOver(undefined, []);
  }

  #handOver(serverName: string | undefined, alpn: readonly string[]): void {
    this.#tls = this.#start(serverName, alpn);
    if (this.#tls === undefined) {
      this.#done();
      return;
    }
    this.#tls.once('secure', () => this.#done());
  }

  readonly #onData = (d: Buffer): void => {
    this.#chunks.push(d);
    this.#bytes += d.length;
    const buf = this.#chunks.length === 1 ? d : Buffer.concat(this.#chunks);
    this.#chunks = [buf];
    const hello = parseClientHello(buf);
    if (hello.kind === 'partial' && this.#bytes <= MAX_CLIENT_HELLO + 64) return;
    const raw = this.#raw;
    raw.removeListener('data', this.#onData);
    raw.pause();
    if (hello.kind === 'invalid') {
      // nginx's courtesy: a plain HTTP request on an https port gets a readable answer.
      if (hello.http) raw.end(PLAIN_HTTP_ON_TLS_PORT);
      else raw.destroy();
      this.#done();
      return;
    }
    raw.unshift(buf); // TLSSocket feeds what the socket has buffered to OpenSSL first
    this.#chunks = [];
    this.#handOver(hello.kind === 'hello' ? hello.serverName : undefined, hello.kind === 'hello' ? hello.alpn : []);
  };

  #done(): void {
    if (this.#timer.armed) this.#timers.disarm(this.#timer);
  }

  onTimer(): void {
    if (this.#tls !== undefined) this.#tls.destroy();
    this.#raw.destroy();
  }
}

const PLAIN_HTTP_ON_TLS_PORT = Buffer.from(
  'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=us-ascii\r\nConnection: close\r\nContent-Length: 49\r\n\r\nA plain HTTP request was sent to an https port.\r\n',
  'latin1',
);
