/**
 * The TLS facts of a connection as the worker receives them (HTTPS_KEYSIZE, CERT_SUBJECT …):
 * computed once per connection, on its first dispatched request, and encoded in one string.
 */
import { encodeTlsInfo } from '../ipc/messages.js';
import type { SecureConnection } from './tls-termination.js';

/** Bits of a suite's bulk cipher key, from its standard name. */
export function cipherKeyBits(name: string): number {
  if (name.includes('AES_256') || name.includes('AES256') || name.includes('CHACHA20')) return 256;
  if (name.includes('AES_128') || name.includes('AES128')) return 128;
  return 0;
}

/** Bits of a certificate's public key: the RSA modulus, or the EC curve's size. */
export function publicKeyBits(c: SecureConnection['certificate']): number {
  const d = c.leaf.publicKey.asymmetricKeyDetails;
  if (d === undefined) return 0;
  if (d.modulusLength !== undefined) return d.modulusLength;
  switch (d.namedCurve) {
    case 'prime256v1':
      return 256;
    case 'secp384r1':
      return 384;
    case 'secp521r1':
      return 521;
    default:
      return c.leaf.publicKey.asymmetricKeyType === 'ed25519' ? 256 : 0;
  }
}

export function tlsInfoOf(c: SecureConnection): string {
  const s = c.socket;
  const cipher = s.getCipher();
  const name = cipher.standardName ?? cipher.name;
  let clientCert = '';
  let clientCertError = '';
  const peer = s.getPeerCertificate(false);
  if (peer !== null && peer !== undefined && peer.raw !== undefined) {
    clientCert = peer.raw.toString('base64');
    if (!s.authorized) clientCertError = String(s.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  }
  const servername = (s as unknown as { servername?: string | false }).servername;
  return encodeTlsInfo({
    protocol: s.getProtocol() ?? '',
    cipher: name,
    keySize: cipherKeyBits(name),
    secretKeySize: publicKeyBits(c.certificate),
    serverSubject: c.certificate.leaf.subject,
    serverIssuer: c.certificate.leaf.issuer,
    serverName: typeof servername === 'string' ? servername : '',
    alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : '',
    clientCert,
    clientCertError,
  });
}
