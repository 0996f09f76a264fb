/**
 * `system.webServer/security/access sslFlags` (IIS's "SSL Settings"): the core's check of how the
 * request came, made by IIS Web Core before the authentication modules run (reference §2
 * security/access, §4 403.4/.5/.7/.13/.16/.17).
 *
 * - Ssl: a request over plain http gets 403.4; Ssl128: a TLS session whose cipher key is shorter
 *   than 128 bits gets 403.5 (none of Wharf's suites is; a plain http request gets 403.4).
 * - SslRequireCert: a request without a client certificate gets 403.7.
 * - SslNegotiateCert or SslRequireCert: a client certificate that did not verify gets 403.16
 *   (untrusted or invalid), 403.17 (expired or not yet valid) or 403.13 (revoked). Without either
 *   flag ("Ignore"), a certificate the client sent is not looked at.
 *
 * The client certificate itself was asked for in the TLS handshake (HTTP.sys's
 * clientcertnegotiation=enable on the SSL table entry) and verified by the listener against the
 * system's CAs and the Root/CA stores; the worker gets the certificate and OpenSSL's verdict in the
 * request's TLS facts (TlsInfo.clientCert, clientCertError).
 */
import type { TlsInfo } from './module-api.js';

/** The sslFlags bits (IIS's schema values). */
export const ACCESS_SSL_FLAG = Object.freeze({ Ssl: 8, SslNegotiateCert: 32, SslRequireCert: 64, Ssl128: 256 });

/** What the check refuses a request with. */
export interface SslAccessDenial {
  readonly status: 403;
  readonly subStatus: 4 | 5 | 7 | 13 | 16 | 17;
  /** The HRESULT IIS reports (FREB ErrorCode); its low word, or the whole of it, is sc-win32-status. */
  readonly hresult: number;
  /** Logged as sc-win32-status: 5 (access denied) or the certificate HRESULT, as IIS logs them. */
  readonly win32Status: number;
  readonly description: string;
}

const E_ACCESSDENIED = 0x80070005;
const CERT_E_EXPIRED = 0x800b0101;
const CERT_E_UNTRUSTEDROOT = 0x800b0109;
const CERT_E_CHAINING = 0x800b010a;
const CERT_E_WRONG_USAGE = 0x800b0110;
const TRUST_E_CERT_SIGNATURE = 0x80096004;
const CRYPT_E_REVOKED = 0x80092010;

/**
 * OpenSSL's verification errors (as Node names them in TLSSocket.authorizationError) → the
 * sub-status and the CryptoAPI error Windows reports for the same fault. Anything not listed is
 * "untrusted or invalid" (403.16).
 */
const CERTIFICATE_ERRORS: Readonly<Record<string, { readonly sub: 13 | 16 | 17; readonly hresult: number }>> = {
  CERT_REVOKED: { sub: 13, hresult: CRYPT_E_REVOKED },
  CERT_HAS_EXPIRED: { sub: 17, hresult: CERT_E_EXPIRED },
  CERT_NOT_YET_VALID: { sub: 17, hresult: CERT_E_EXPIRED },
  DEPTH_ZERO_SELF_SIGNED_CERT: { sub: 16, hresult: CERT_E_UNTRUSTEDROOT },
  SELF_SIGNED_CERT_IN_CHAIN: { sub: 16, hresult: CERT_E_UNTRUSTEDROOT },
  UNABLE_TO_GET_ISSUER_CERT: { sub: 16, hresult: CERT_E_CHAINING },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: { sub: 16, hresult: CERT_E_CHAINING },
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: { sub: 16, hresult: CERT_E_CHAINING },
  CERT_SIGNATURE_FAILURE: { sub: 16, hresult: TRUST_E_CERT_SIGNATURE },
  INVALID_PURPOSE: { sub: 16, hresult: CERT_E_WRONG_USAGE },
};

const NEGOTIATION_HINT =
  'Wharf asks for client certificates only during the TLS handshake (TLS 1.3 has no renegotiation): the SSL table entry of the https binding needs clientcertnegotiation=enable (wharf sslcert add … clientcertnegotiation=enable).';

function denial(subStatus: SslAccessDenial['subStatus'], hresult: number, description: string): SslAccessDenial {
  // IIS logs access denied as 5 and certificate faults as the whole HRESULT (e.g. 2148204809).
  return { status: 403, subStatus, hresult, win32Status: hresult === E_ACCESSDENIED ? 5 : hresult, description };
}

/**
 * The refusal for a request with these sslFlags (a bitmask of ACCESS_SSL_FLAG), or undefined when
 * it may go on. `tls` is undefined on plain http.
 */
export function checkSslAccess(sslFlags: number, tls: TlsInfo | undefined): SslAccessDenial | undefined {
  if (sslFlags === 0) return undefined;
  if (tls === undefined) {
    if ((sslFlags & (ACCESS_SSL_FLAG.Ssl | ACCESS_SSL_FLAG.Ssl128)) !== 0) {
      return denial(4, E_ACCESSDENIED, 'This page must be viewed over a secure channel (https): its security/access sslFlags require TLS.');
    }
    if ((sslFlags & ACCESS_SSL_FLAG.SslRequireCert) !== 0) {
      return denial(7, E_ACCESSDENIED, 'This page requires a client certificate, which cannot be sent over plain http.');
    }
    return undefined;
  }
  if ((sslFlags & ACCESS_SSL_FLAG.Ssl128) !== 0 && tls.keySize < 128) {
    return denial(5, E_ACCESSDENIED, `This page requires a cipher key of at least 128 bits; the connection's (${tls.cipher}) has ${tls.keySize}.`);
  }
  const wantsCert = (sslFlags & (ACCESS_SSL_FLAG.SslNegotiateCert | ACCESS_SSL_FLAG.SslRequireCert)) !== 0;
  if (!wantsCert) return undefined;
  if (tls.clientCert === '') {
    if ((sslFlags & ACCESS_SSL_FLAG.SslRequireCert) !== 0) return denial(7, E_ACCESSDENIED, `This page requires a client certificate, and the client sent none. ${NEGOTIATION_HINT}`);
    return undefined;
  }
  if (tls.clientCertError === '') return undefined;
  const known = CERTIFICATE_ERRORS[tls.clientCertError];
  const sub = known?.sub ?? 16;
  const hresult = known?.hresult ?? CERT_E_UNTRUSTEDROOT;
  const what = sub === 13 ? 'has been revoked' : sub === 17 ? 'has expired or is not yet valid' : 'is not trusted or not valid';
  return denial(sub, hresult, `The client certificate ${what} (${tls.clientCertError}).`);
}

/**
 * Whether a response under these flags may be kept by the listener's response cache: not when it
 * depends on the client certificate or the cipher (the cache cannot tell clients apart by those);
 * http and https answers are cached apart already.
 */
export function sslAccessCacheable(sslFlags: number): boolean {
  return (sslFlags & (ACCESS_SSL_FLAG.SslNegotiateCert | ACCESS_SSL_FLAG.SslRequireCert | ACCESS_SSL_FLAG.Ssl128)) === 0;
}
