/**
 * The 500.19 page. IIS shows local clients the file, line, HRESULT and the offending lines of
 * configuration; remote clients get a page that reveals nothing about the server.
 */
import { readFileSync } from 'node:fs';
import { formatHResult, HRESULT, type ConfigError } from '../errors.js';
import type { HttpRequest } from './module-api.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** Up to two lines either side of `line`, numbered, as IIS's "Config Source" box shows them. */
export function configSourceExcerpt(file: string, line: number): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return '';
  }
  const lines = text.split(/\r?\n/);
  const from = Math.max(1, line - 2);
  const to = Math.min(lines.length, line + 2);
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${String(i).padStart(5)}: ${lines[i - 1]}`);
  return out.join('\n');
}

export function renderConfigErrorPage(request: HttpRequest, error: ConfigError): string {
  if (!request.isLocal) {
    return (
      '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>500 - Internal server error.</title></head>\n' +
      '<body><h1>Server Error</h1><h2>500 - Internal server error.</h2>\n' +
      '<h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3></body></html>\n'
    );
  }
  const p = error.position;
  const source = p ? configSourceExcerpt(p.file, p.line) : '';
  const rows: Array<[string, string]> = [
    ['Module', 'IIS Web Core'],
    ['Notification', 'BeginRequest'],
    ['Handler', 'Not yet determined'],
    ['Error Code', formatHResult(error.hresult)],
    ['Config Error', error.message],
    ['Config File', p ? p.file : '(unknown)'],
    // Line 0 is the file as a whole (missing, unreadable): no line to show.
    ['Config Line', p ? (p.line > 0 ? `${p.line}, column ${p.column}` : '(the whole file)') : '(unknown)'],
    ['Requested URL', request.path + (request.queryString ? '?' + request.queryString : '')],
    ['Logon Method', 'Not yet determined'],
    ['Logon User', 'Not yet determined'],
  ];
  return (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n' +
    '<title>Wharf Detailed Error - 500.19 - Internal Server Error</title>\n' +
    '<style>body{font-family:sans-serif;margin:2em}h1{color:#b00}table{border-collapse:collapse}th{text-align:left;padding-right:1em;vertical-align:top}pre{background:#f4f4f4;padding:1em;overflow:auto}</style>\n' +
    '</head><body>\n<h1>HTTP Error 500.19 - Internal Server Error</h1>\n' +
    '<h2>The requested page cannot be accessed because the related configuration data for the page is invalid.</h2>\n' +
    '<h3>Detailed Error Information</h3>\n<table>\n' +
    rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n') +
    '\n</table>\n' +
    (source ? `<h3>Config Source</h3>\n<pre>${escapeHtml(source)}</pre>\n` : '') +
    '<h3>Things you can try</h3>\n<ul><li>' +
    // 0x80070005: the file is fine, a permission is not (the Config Error says whose and which).
    (error.hresult === HRESULT.accessDenied
      ? 'Give the user named in the Config Error the permission it names (the command is there); the configuration file itself needs no change. Wharf picks up the change within a second, without a restart.'
      : 'Fix the configuration file named above; Wharf picks up the change without a restart.') +
    '</li></ul>\n' +
    '</body></html>\n'
  );
}
