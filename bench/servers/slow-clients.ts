// Slow clients for the bench (a slowloris, bounded): opens COUNT connections to 127.0.0.1:PORT,
// each sends the start of a request head and then one more header byte every second, for at
// most SECONDS. Prints "ready" once all are connected. Used to see what they cost normal clients.
import { connect, type Socket } from 'node:net';

const port = Number(process.argv[2]);
const count = Number(process.argv[3] ?? 1000);
const seconds = Number(process.argv[4] ?? 30);
const sockets: Socket[] = [];
let connected = 0;

function open(): void {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  s.on('close', () => {
    const i = sockets.indexOf(s);
    if (i !== -1) sockets.splice(i, 1);
  });
  s.once('connect', () => {
    s.write('GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    if (++connected === count) process.stdout.write('ready\n');
  });
  sockets.push(s);
}

// In batches, so the listen backlog is not overrun.
let opened = 0;
const opener = setInterval(() => {
  for (let i = 0; i < 100 && opened < count; i++, opened++) open();
  if (opened >= count) clearInterval(opener);
}, 20);
setInterval(() => {
  for (const s of sockets) if (!s.destroyed) s.write('a');
}, 1000);
setTimeout(() => process.exit(0), seconds * 1000);
