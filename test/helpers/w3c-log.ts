/** Reading the W3C log files a test's Wharf wrote, as an administrator reads them. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WharfProcess } from './wharf.js';

/** W3C lines of a site as field-name → value maps (the #Fields header of each file names the columns). */
export function w3c(wharf: WharfProcess, siteId: number): Array<Record<string, string>> {
  const dir = join(wharf.systemDrive, 'inetpub', 'logs', 'LogFiles', `W3SVC${siteId}`);
  if (!existsSync(dir)) return [];
  const rows: Array<Record<string, string>> = [];
  for (const f of readdirSync(dir).sort()) {
    let fields: string[] = [];
    for (const line of readFileSync(join(dir, f), 'utf8').split(/\r?\n/)) {
      if (line.startsWith('#Fields: ')) fields = line.slice(9).split(' ');
      else if (line !== '' && !line.startsWith('#')) {
        const values = line.split(' ');
        rows.push(Object.fromEntries(fields.map((n, i) => [n, values[i] ?? ''])));
      }
    }
  }
  return rows;
}
