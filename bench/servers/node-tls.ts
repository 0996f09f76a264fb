// The platform's floor for the TLS rows: a bare node:http2 secure server (HTTP/1.1 too, by ALPN)
// answering the 1 KiB file from memory, with Wharf's certificate, protocols, suites and curves.
// HTTP/2 streams are answered on the session's 'stream' event (the API's fastest path, no
// compatibility objects), HTTP/1.1 requests on 'request'. What Wharf spends above this server is
// Wharf's own; what this server spends above nginx is Node's (its TLS sockets, nghttp2 bindings, streams).
import { readFileSync } from 'node:fs';
import { constants } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import { TLS_CIPHERS, TLS_CURVES } from '../../src/listener/tls-termination.js';

const [port, key, cert, file] = process.argv.slice(2);
const body = readFileSync(file!);
const mtime = new Date().toUTCString();
let date = new Date().toUTCString();
setInterval(() => (date = new Date().toUTCString()), 1000).unref();
const headers = (): Record<string, string | number> => ({ 'content-type': 'text/plain', 'content-length': body.length, 'last-modified': mtime, etag: '"1"', 'accept-ranges': 'bytes', date });

const server = createSecureServer({
  key: readFileSync(key!),
  cert: readFileSync(cert!),
  allowHTTP1: true,
  minVersion: 'TLSv1.2',
  ciphers: TLS_CIPHERS,
  ecdhCurve: TLS_CURVES,
  honorCipherOrder: true,
  secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  sessionTimeout: 300,
  settings: { maxConcurrentStreams: 128 },
});
// HTTP/1.1 (allowHTTP1) arrives as 'request'. Adding that listener also installs Node's
// compatibility handler on 'stream', which would wrap every HTTP/2 stream in request/response
// objects: it is taken off again, so HTTP/2 streams take the direct path below.
server.on('request', (_req, res) => {
  res.writeHead(200, headers());
  res.end(body);
});
server.removeAllListeners('stream');
server.on('stream', (stream) => {
  stream.respond({ ':status': 200, ...headers() });
  stream.end(body);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
