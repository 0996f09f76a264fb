// Baseline: a bare node:http server answering "hello world".
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('hello world');
createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
