/**
 * The HTML of IIS's directory listing (dirlist): a <pre> block with one line per entry — date,
 * time, size or <dir>, link — in columns, shaped by directoryBrowse showFlags.
 */
import { escapeHtml, encodeUrlPath } from '../html-response.js';

export interface ListingEntry {
  readonly name: string;
  readonly isDirectory: boolean;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface ListingOptions {
  /** Host name shown in title and heading. */
  readonly host: string;
  /** Decoded URL path of the folder, ending with '/'. */
  readonly path: string;
  /** directoryBrowse showFlags names (Date, Time, Size, Extension, LongDate). */
  readonly flags: ReadonlySet<string>;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Widest long date ("Wednesday, September 30, 2026"), so the following columns line up. */
const LONG_DATE_WIDTH = 29;

// Dates are the server's local time in US format, as IIS renders them with the en-US locale.
function shortDate(d: Date): string {
  return `${d.getMonth() + 1}/${d.getDate()}/${d.getFullYear()}`;
}

function longDate(d: Date): string {
  return `${DAYS[d.getDay()] ?? ''}, ${MONTHS[d.getMonth()] ?? ''} ${d.getDate()}, ${d.getFullYear()}`;
}

function time(d: Date): string {
  const h = d.getHours();
  const m = String(d.getMinutes()).padStart(2, '0');
  return `${h % 12 === 0 ? 12 : h % 12}:${m} ${h < 12 ? 'AM' : 'PM'}`;
}

/** Case-insensitive alphabetical order with folders and files mixed, as IIS lists them. */
export function sortEntries<T extends { readonly name: string }>(entries: T[]): T[] {
  return entries.sort((a, b) => {
    const x = a.name.toLowerCase();
    const y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

function parentOf(path: string): string {
  const trimmed = path.slice(0, -1);
  return trimmed.slice(0, trimmed.lastIndexOf('/') + 1);
}

function entryLine(e: ListingEntry, o: ListingOptions): string {
  const f = o.flags;
  const d = new Date(e.mtimeMs);
  const cols: string[] = [];
  if (f.has('LongDate')) cols.push(longDate(d).padStart(LONG_DATE_WIDTH));
  else if (f.has('Date')) cols.push(shortDate(d).padStart(10));
  if (f.has('Time')) cols.push(time(d).padStart(8));
  // Size is right-aligned in 12 columns; "<dir>" is padded by its visible width, then escaped.
  if (f.has('Size')) cols.push(e.isDirectory ? ' '.repeat(7) + '&lt;dir&gt;' : String(e.size).padStart(12));
  let shown = e.name;
  if (!e.isDirectory && !f.has('Extension')) {
    const dot = shown.lastIndexOf('.');
    if (dot > 0) shown = shown.slice(0, dot);
  }
  const href = escapeHtml(encodeUrlPath(o.path + e.name + (e.isDirectory ? '/' : '')));
  const link = `<A HREF="${href}">${escapeHtml(shown)}</A><br>`;
  return cols.length === 0 ? link : cols.join(' ') + ' ' + link;
}

export function renderListing(entries: readonly ListingEntry[], o: ListingOptions): string {
  const title = `${escapeHtml(o.host)} - ${escapeHtml(o.path)}`;
  let html = `<html><head><title>${title}</title></head><body><H1>${title}</H1><hr>\r\n\r\n<pre>`;
  if (o.path !== '/') {
    html += `<A HREF="${escapeHtml(encodeUrlPath(parentOf(o.path)))}">[To Parent Directory]</A><br><br>`;
  }
  for (const e of entries) html += entryLine(e, o);
  html += '</pre><hr></body></html>';
  return html;
}
