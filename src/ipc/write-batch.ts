/**
 * Write the buffers one event-loop turn produced for a socket in one go. Small batches are
 * joined into a single buffer: measured cheaper than writev through cork/uncork, whose per-chunk
 * bookkeeping in node's stream layer costs more than copying a few hundred bytes. Large batches
 * keep their buffers (no copy) and go out as one writev.
 */
import type { Writable } from 'node:stream';

/**
 * Past this a batch goes out as a writev. 64 KiB made a 100 KiB PHP response copy ~64 KiB per
 * batch on both sides of the channel; at 16 KiB the worker + listener CPU per such response fell
 * from 711 to 542 µs (BENCH_ONLY=php) while small responses (hello.php) stayed as they were.
 */
const JOIN_LIMIT = 16384;

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
