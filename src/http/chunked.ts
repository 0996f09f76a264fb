/** Chunked transfer coding pieces shared by the listener (to clients) and hosted apps' sockets. */

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * The last chunk, with trailer fields when there are any (RFC 9112 §7.1.2; flat name/value
 * pairs). Fields that are not tokens or carry control characters are dropped: a trailer must not
 * split the message either.
 */
export function lastChunk(trailers: readonly string[] | undefined): Buffer {
  if (trailers === undefined || trailers.length === 0) return LAST_CHUNK;
  let s = '0\r\n';
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    const name = trailers[i]!;
    const value = trailers[i + 1]!;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\x00-\x08\x0a-\x1f\x7f]/.test(value)) continue;
    s += name + ': ' + value + '\r\n';
  }
  return Buffer.from(s + '\r\n', 'latin1');
}
