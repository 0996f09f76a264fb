// An OTLP/HTTP collector stand-in for the bench: accepts every export (any protocol's body),
// counts the requests and bytes, and answers 200 as a collector does.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
let exports = 0;
let bytes = 0;
createServer((req, res) => {
  req.on('data', (d: Buffer) => (bytes += d.length));
  req.on('end', () => {
    exports++;
    res.writeHead(200, { 'Content-Type': req.headers['content-type'] ?? 'application/json' });
    res.end(req.headers['content-type']?.includes('json') ? '{}' : '');
  });
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  process.stdout.write(`exports ${exports} bytes ${bytes}\n`);
  process.exit(0);
});
