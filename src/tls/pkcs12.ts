/**
 * PKCS#12 (PFX) reading, on node-forge: Node's crypto has no PKCS#12 parser, and the other
 * candidate (pkijs) decrypts through WebCrypto, which has neither 3DES nor RC2, the ciphers of
 * every PFX Windows exports (and of `openssl pkcs12 -export -legacy`). forge reads those and
 * OpenSSL 3's default (PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC). forge only decrypts;
 * keys and certificates go to node:crypto as DER (forge cannot use EC keys, and does not need to).
 */
import forge from 'node-forge';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { TlsError } from '../errors.js';

export interface Pkcs12Contents {
  /** Private keys, in file order. */
  readonly keys: readonly KeyObject[];
  /** Certificates as DER, in file order (the exact bytes of the file: thumbprints depend on them). */
  readonly certificates: readonly Buffer[];
  /** The first friendlyName attribute (Windows' "Friendly name"), if any. */
  readonly friendlyName: string | undefined;
}

function toBuffer(bytes: string): Buffer {
  return Buffer.from(bytes, 'binary');
}

/**
 * The certificate's DER. forge keeps the ASN.1 of certificates it cannot parse (EC keys); for the
 * ones it parses it keeps the original TBSCertificate node, and the outer signatureAlgorithm is by
 * definition a copy of the TBSCertificate's `signature` field (RFC 5280 §4.1.1.2), so the DER
 * rebuilt from those is the file's, byte for byte.
 */
function certificateDer(bag: forge.pkcs12.Bag): Buffer | undefined {
  const raw = (bag as forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 }).asn1;
  if (raw !== undefined) return toBuffer(forge.asn1.toDer(raw).getBytes());
  const cert = bag.cert as (forge.pki.Certificate & { tbsCertificate?: forge.asn1.Asn1 }) | undefined;
  const tbs = cert?.tbsCertificate;
  if (cert === undefined || tbs === undefined || !Array.isArray(tbs.value)) return undefined;
  const fields = tbs.value as forge.asn1.Asn1[];
  // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, … }
  const signatureAlgorithm = fields[0]?.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? fields[2] : fields[1];
  if (signatureAlgorithm === undefined) return undefined;
  const { asn1 } = forge;
  const outer = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    signatureAlgorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + (cert.signature as string)),
  ]);
  return toBuffer(asn1.toDer(outer).getBytes());
}

function keyObject(bag: forge.pkcs12.Bag): KeyObject | undefined {
  let info: forge.asn1.Asn1 | undefined = (bag as forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 }).asn1;
  if (info === undefined && bag.key) {
    // An RSA key forge parsed: back to PrivateKeyInfo.
    info = forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key as forge.pki.rsa.PrivateKey));
  }
  if (info === undefined) return undefined;
  return createPrivateKey({ key: toBuffer(forge.asn1.toDer(info).getBytes()), format: 'der', type: 'pkcs8' });
}

/** Password failures forge reports by message (it has no codes): the MAC, a key or data that will not decrypt. */
const PASSWORD_MESSAGE = /password|MAC could not be verified|decrypt/i;

/** Reads a PFX. `source` names the file in messages. Throws TlsError TLS_PASSWORD or TLS_FORMAT. */
export function readPkcs12(der: Buffer, password: string, source: string): Pkcs12Contents {
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(der.toString('binary'), true); // strict DER, every byte parsed
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, true, password);
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (PASSWORD_MESSAGE.test(message)) {
      throw new TlsError('TLS_PASSWORD', `${source}: the password does not open this PFX file (${password === '' ? 'no password was given' : 'wrong password'}; ${message})`, { cause: err });
    }
    throw new TlsError('TLS_FORMAT', `${source}: not a PKCS#12 (PFX) file Wharf can read (${message})`, { cause: err });
  }
  const keys: KeyObject[] = [];
  const certificates: Buffer[] = [];
  let friendlyName: string | undefined;
  for (const safeContents of p12.safeContents) {
    for (const bag of safeContents.safeBags) {
      const name = bag.attributes?.['friendlyName']?.[0];
      if (friendlyName === undefined && typeof name === 'string' && name !== '') friendlyName = name;
      try {
        if (bag.type === forge.pki.oids['certBag']) {
          const der = certificateDer(bag);
          if (der !== undefined) certificates.push(der);
        } else if (bag.type === forge.pki.oids['pkcs8ShroudedKeyBag'] || bag.type === forge.pki.oids['keyBag']) {
          const key = keyObject(bag);
          if (key !== undefined) keys.push(key);
        }
      } catch (err) {
        throw new TlsError('TLS_FORMAT', `${source}: a ${bag.type === forge.pki.oids['certBag'] ? 'certificate' : 'key'} in this PFX file cannot be read (${(err as Error).message})`, { cause: err });
      }
    }
  }
  return { keys, certificates, friendlyName };
}

/** OIDs of the PKCS#12 structures written below (RFC 7292, RFC 2985, RFC 5652). */
const OID = {
  data: '1.2.840.113549.1.7.1',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** The MAC's PKCS#12 key derivation iterations (OpenSSL's default). */
const MAC_ITERATIONS = 2048;

/**
 * Writes a PFX: the key shrouded with PBES2 (AES-256-CBC, PBKDF2-HMAC-SHA256, by node:crypto's
 * PKCS#8 export) and the certificates, with a SHA-256 MAC; OpenSSL 3's default format, which
 * Windows Server 2019 and later import too. Any key type (forge's own writer is RSA-only). With an
 * empty password the key is stored unencrypted (a keyBag) and the MAC uses the empty password.
 */
export function writePkcs12(options: { key: KeyObject; certificates: readonly Buffer[]; password: string; friendlyName?: string }): Buffer {
  const { asn1 } = forge;
  const seq = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
  const set = (items: forge.asn1.Asn1[]): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
  const oid = (o: string): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
  const octets = (bytes: string): forge.asn1.Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
  const explicit0 = (inner: forge.asn1.Asn1): forge.asn1.Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [inner]);
  const der = (node: forge.asn1.Asn1): string => asn1.toDer(node).getBytes();
  const fromDer = (buf: Buffer): forge.asn1.Asn1 => asn1.fromDer(buf.toString('binary'));

  // Attributes that tie the key to its certificate (localKeyId) and name it (friendlyName).
  const localKeyId = forge.md.sha1.create().update(options.certificates[0]!.toString('binary')).digest().getBytes();
  const attributes: forge.asn1.Asn1[] = [seq([oid(OID.localKeyId), set([octets(localKeyId)])])];
  if (options.friendlyName !== undefined) {
    // forge encodes a BMPString's characters as UTF-16BE itself.
    const bmp = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BMPSTRING, false, options.friendlyName);
    attributes.push(seq([oid(OID.friendlyName), set([bmp])]));
  }

  const keyBag =
    options.password === ''
      ? seq([oid(OID.keyBag), explicit0(fromDer(options.key.export({ format: 'der', type: 'pkcs8' }))), set(attributes)])
      : seq([
          oid(OID.pkcs8ShroudedKeyBag),
          explicit0(fromDer(options.key.export({ format: 'der', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: options.password }))),
          set(attributes),
        ]);
  const certBags = options.certificates.map((cert, i) =>
    seq([oid(OID.certBag), explicit0(seq([oid(OID.x509Certificate), explicit0(octets(cert.toString('binary')))])), ...(i === 0 ? [set(attributes.slice(0, 1))] : [])]),
  );
  const dataContentInfo = (safeContents: forge.asn1.Asn1): forge.asn1.Asn1 => seq([oid(OID.data), explicit0(octets(der(safeContents)))]);
  // The certificates are public: a plain data SafeContents, as `openssl pkcs12 -certpbe NONE` writes.
  const authSafe = der(seq([dataContentInfo(seq(certBags)), dataContentInfo(seq([keyBag]))]));

  const salt = forge.random.getBytesSync(16);
  const macKey = forge.pkcs12.generateKey(options.password, forge.util.createBuffer(salt), 3, MAC_ITERATIONS, 32, forge.md.sha256.create());
  const hmac = forge.hmac.create();
  hmac.start('sha256', macKey.getBytes());
  hmac.update(authSafe);
  const mac = hmac.digest().getBytes();
  const pfx = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, String.fromCharCode(3)),
    seq([oid(OID.data), explicit0(octets(authSafe))]),
    seq([
      seq([seq([oid(OID.sha256), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]), octets(mac)]),
      octets(salt),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(MAC_ITERATIONS).getBytes()),
    ]),
  ]);
  return toBuffer(der(pfx));
}
