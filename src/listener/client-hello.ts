/**
 * Reads the SNI name and ALPN list of a TLS ClientHello before OpenSSL sees it (RFC 8446 §4.1.2,
 * RFC 6066 §3, RFC 7301 §3.1). The listener picks the certificate and the protocol versions from
 * the binding the name belongs to; OpenSSL settles the versions before its SNI callback runs, so a
 * binding's "no TLS 1.3" (sslFlags 32) can only be honoured by choosing the context up front.
 */

export type ClientHelloResult =
  /** More bytes are needed. */
  | { readonly kind: 'partial' }
  /** Not a TLS handshake: `http` when it looks like a plain HTTP request. */
  | { readonly kind: 'invalid'; readonly http: boolean }
  | { readonly kind: 'hello'; readonly serverName: string | undefined; readonly alpn: readonly string[] };

/** A ClientHello longer than this (over all its records) is not read for SNI (real ones are < 4 KiB). */
export const MAX_CLIENT_HELLO = 16 * 1024;

const PARTIAL: ClientHelloResult = Object.freeze({ kind: 'partial' });

/** Parse the ClientHello at the start of `buf` (one or more handshake records). */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length === 0) return PARTIAL;
  if (buf[0] !== 0x16) return { kind: 'invalid', http: buf[0]! >= 0x41 && buf[0]! <= 0x5a };
  // Gather the handshake message's bytes from consecutive handshake records.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let off = 0;
  while (need < 0 || have < need) {
    if (off + 5 > buf.length) return PARTIAL;
    if (buf[off] !== 0x16 || buf[off + 1] !== 0x03) return { kind: 'invalid', http: false };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384 + 2048) return { kind: 'invalid', http: false };
    if (off + 5 + len > buf.length) return PARTIAL;
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0) {
      const first = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      if (first.length < 4) continue;
      if (first[0] !== 0x01) return { kind: 'invalid', http: false }; // not a ClientHello
      need = 4 + ((first[1]! << 16) | (first[2]! << 8) | first[3]!);
      if (need > MAX_CLIENT_HELLO) return { kind: 'hello', serverName: undefined, alpn: [] };
    }
  }
  const hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  return readHello(hs.subarray(4, need));
}

function readHello(b: Buffer): ClientHelloResult {
  const bad: ClientHelloResult = { kind: 'invalid', http: false };
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > b.length) return bad;
  p += 1 + b[p]!; // session id
  if (p + 2 > b.length) return bad;
  p += 2 + b.readUInt16BE(p); // cipher suites
  if (p + 1 > b.length) return bad;
  p += 1 + b[p]!; // compression methods
  let serverName: string | undefined;
  const alpn: string[] = [];
  if (p + 2 > b.length) return { kind: 'hello', serverName, alpn }; // no extensions (TLS 1.2 may omit them)
  const end = Math.min(b.length, p + 2 + b.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = p + 4;
    p = body + len;
    if (p > end) return bad;
    if (type === 0x0000 && len >= 5) {
      // server_name: list length, then entries of (type, length, name); host_name is type 0.
      let q = body + 2;
      while (q + 3 <= p) {
        const nameType = b[q]!;
        const nameLen = b.readUInt16BE(q + 1);
        if (q + 3 + nameLen > p) return bad;
        if (nameType === 0 && serverName === undefined) serverName = b.toString('latin1', q + 3, q + 3 + nameLen).toLowerCase();
        q += 3 + nameLen;
      }
    } else if (type === 0x0010 && len >= 3) {
      let q = body + 2;
      while (q + 1 <= p) {
        const l = b[q]!;
        if (q + 1 + l > p) return bad;
        alpn.push(b.toString('latin1', q + 1, q + 1 + l));
        q += 1 + l;
      }
    }
  }
  return { kind: 'hello', serverName, alpn };
}
