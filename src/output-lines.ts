/**
 * A child process's output (a worker's stdout and stderr, a CGI program's or a FastCGI process's
 * stderr) as lines for a log: text is split at '\n' (a trailing '\r' dropped), a line longer than
 * `maxLine` without a newline is handed on at that point so memory stays bounded, and the last
 * words before the end come out even without a final newline. Empty lines are skipped.
 */
import type { Readable } from 'node:stream';

export function readOutputLines(stream: Readable, maxLine: number, line: (text: string) => void): void {
  let partial = '';
  const emit = (text: string): void => {
    const l = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (l !== '') line(l);
  };
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    if (partial.length > maxLine) {
      lines.push(partial);
      partial = '';
    }
    for (const l of lines) emit(l);
  });
  stream.on('end', () => {
    emit(partial);
    partial = '';
  });
}
