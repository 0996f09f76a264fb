/**
 * Write the buffers one event-loop turn produced for a socket in one go. Small batches are
 * joined into a single buffer: measured cheaper than writev through cork/uncork, whose per-chunk
 * bookkeeping in node's stream layer costs more than copying a few hundred bytes. Large batches
 * keep their buffers (no copy) and go out as one writev.
 */
import type { Writable } from 'node:stream';

const JOIN_LIMIT = 65536;

/** Returns socket.write()'s answer: false when the caller should wait for 'drain'. */
export function writeBatch(socket: Writable, buffers: readonly Buffer[], bytes: number): boolean {
  if (buffers.length === 1) return socket.write(buffers[0]!);
  if (bytes <= JOIN_LIMIT) return socket.write(Buffer.concat(buffers as Buffer[], bytes));
  socket.cork();
  let ok = true;
  for (let i = 0; i < buffers.length; i++) ok = socket.write(buffers[i]!);
  socket.uncork();
  return ok;
}
