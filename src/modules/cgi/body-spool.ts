/**
 * A request body of unannounced length (chunked) read whole before a CGI program starts, because
 * the program must be told CONTENT_LENGTH (RFC 3875 §4.1.2) and reads exactly that much. Small
 * bodies stay in memory; past SPOOL_MEMORY_BYTES the rest goes to an unlinked temporary file,
 * which becomes the program's stdin as it is (no copy back through the worker). The caller caps
 * the body first (request.limitBody, requestFiltering maxAllowedContentLength).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Bytes of a spooled body kept in memory before it goes to a file. */
export const SPOOL_MEMORY_BYTES = 256 * 1024;

export interface SpooledBody {
  readonly length: number;
  /** The body in memory, or undefined when it is in `file`. */
  readonly chunks: readonly Buffer[] | undefined;
  /**
   * The unlinked file holding the body, its offset at 0 (written with positional writes), for
   * the program's stdin. Close it once the program started.
   */
  readonly file: FileHandle | undefined;
}

export async function spoolBody(body: AsyncIterable<Buffer>, memoryBytes = SPOOL_MEMORY_BYTES): Promise<SpooledBody> {
  let chunks: Buffer[] = [];
  let length = 0;
  let file: FileHandle | undefined;
  try {
    for await (const chunk of body) {
      if (file === undefined && length + chunk.length <= memoryBytes) {
        chunks.push(chunk);
        length += chunk.length;
        continue;
      }
      if (file === undefined) {
        file = await openUnlinked();
        let at = 0;
        for (const c of chunks) at = await writeAll(file, c, at);
        chunks = [];
      }
      length = await writeAll(file, chunk, length);
    }
  } catch (err) {
    await file?.close();
    throw err;
  }
  return { length, chunks: file === undefined ? chunks : undefined, file };
}

/** Write `data` at `position` (pwrite: the file's own offset stays 0); the position after it. */
async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < data.length) done += (await file.write(data, done, data.length - done, position + done)).bytesWritten;
  return position + done;
}

/** A temporary file only this process can reach: created 0600, its name removed at once. */
async function openUnlinked(): Promise<FileHandle> {
  const path = join(tmpdir(), `wharf-cgi-body-${process.pid}-${randomBytes(8).toString('hex')}`);
  const f = await open(path, 'wx+', 0o600);
  unlinkSync(path);
  return f;
}
