// The alternative IPC design, measured for comparison: a front node:http server that forwards
// each request as HTTP/1.1 over a keep-alive unix socket to a backend process (nginx → node
// style), which answers "hello world".
import { createServer, request, Agent } from 'node:http';
import { fork } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const port = Number(process.argv[2]);
if (process.argv[3] === 'backend') {
  const body = Buffer.from('hello world');
  createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
    res.end(body);
  }).listen(process.argv[4]!, () => process.send?.('ready'));
} else {
  const socketPath = join(tmpdir(), `wharf-bench-fwd-${process.pid}.sock`);
  const child = fork(fileURLToPath(import.meta.url), [String(port), 'backend', socketPath]);
  child.on('message', () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    createServer((req, res) => {
      const up = request({ socketPath, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      req.pipe(up);
    }).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  });
  process.on('SIGTERM', () => {
    child.kill();
    process.exit(0);
  });
}
