// Baseline for static files in Node: the `send` library (what Express's static serving uses).
import { createServer } from 'node:http';
import send from 'send';

const port = Number(process.argv[2]);
const root = process.argv[3]!;
createServer((req, res) => {
  send(req, new URL(req.url ?? '/', 'http://x').pathname, { root }).pipe(res);
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
