/**
 * The "detailed error" page (IIS's page for local requests under DetailedLocalOnly): status and
 * sub-status with their meaning, who set it (module, notification, handler, HRESULT), the request
 * (URL, physical path, logon), likely causes and things to try, and for 500.19 the configuration
 * file and source lines around the failing one.
 */
import { formatHResult } from '../../errors.js';
import type { ErrorDetail } from '../../worker/module-api.js';
import { escapeHtml } from '../html-response.js';
import { statusText } from '../sub-status.js';

export interface DetailedPageInput {
  readonly status: number;
  readonly subStatus: number;
  /** From ctx.errorDetail; undefined when the status was set without setStatus (e.g. by an app). */
  readonly detail: ErrorDetail | undefined;
  /** Module to show when `detail` is undefined (the handler's module). */
  readonly fallbackModule: string;
  readonly handlerName: string | undefined;
  readonly requestedUrl: string;
  readonly physicalPath: string;
  readonly logonMethod: string;
  readonly logonUser: string;
  /** "Site/app" shown in the page header. */
  readonly applicationName: string;
  readonly moreInformationLink: string;
}

const NOT_YET = 'Not yet determined';

/** Lines shown before and after the failing configuration line. */
const CONTEXT_LINES = 2;

/**
 * Number the configuration lines around `line` the way IIS shows them ("   12: <add …/>").
 * `source` is the configuration file's text; if it does not reach `line`, it is shown unnumbered.
 */
export function configSourceExcerpt(source: string, line: number | undefined): string {
  const lines = source.split(/\r?\n/);
  if (line === undefined || line < 1 || line > lines.length) return source;
  const from = Math.max(1, line - CONTEXT_LINES);
  const to = Math.min(lines.length, line + CONTEXT_LINES);
  const out: string[] = [];
  for (let n = from; n <= to; n++) out.push(`${String(n).padStart(5)}: ${lines[n - 1] ?? ''}`);
  return out.join('\n');
}

function row(name: string, value: string): string {
  return `<tr><th>${name}</th><td>${escapeHtml(value)}</td></tr>`;
}

function list(title: string, items: readonly string[]): string {
  if (items.length === 0) return '';
  return `<section><h3>${title}</h3><ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul></section>\n`;
}

const STYLE =
  'body{margin:0;font:0.8em "Segoe UI",Verdana,Arial,sans-serif;background:#fff;color:#222}' +
  'header{background:#5c87b2;color:#fff;padding:8px 2%}header h1{margin:0;font-size:1.6em;font-weight:normal}' +
  'main{margin:0 2%}section{border:1px solid #ddd;border-radius:3px;margin:12px 0;padding:6px 14px}' +
  '.summary h2{color:#c00;font-size:1.6em}h3{font-size:1.1em;margin:6px 0}' +
  'table{border-collapse:collapse;display:inline-table;margin-right:2em;vertical-align:top}' +
  'th{text-align:right;padding:2px 10px 2px 0;font-weight:normal;color:#555}td{padding:2px 0}' +
  'pre{background:#f6f6f6;border:1px solid #ddd;padding:6px;overflow:auto}';

export function renderDetailedPage(p: DetailedPageInput): string {
  const t = statusText(p.status, p.subStatus);
  const code = `${p.status}.${p.subStatus}`;
  const d = p.detail;
  const is50019 = p.status === 500 && p.subStatus === 19;
  // The summary line: what the module said, else the generic meaning of the code. For 500.19 the
  // module's text is the configuration error and gets its own row below.
  const summary = d !== undefined && d.description !== '' && !is50019 ? d.description : t.description;

  let html =
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    `<title>Wharf Detailed Error - ${code} - ${escapeHtml(t.reason)}</title>\n` +
    `<style>${STYLE}</style>\n</head>\n<body>\n` +
    `<header><h1>Server Error in Application "${escapeHtml(p.applicationName)}"</h1><div>Wharf</div></header>\n<main>\n` +
    `<section class="summary"><h2>HTTP Error ${code} - ${escapeHtml(t.reason)}</h2><h3>${escapeHtml(summary)}</h3></section>\n`;
  html += list('Most likely causes:', t.causes);
  html += list('Things you can try:', t.tries);

  html +=
    '<section><h3>Detailed Error Information:</h3>\n<table>' +
    row('Module', d?.module ?? p.fallbackModule) +
    row('Notification', d?.notification ?? 'ExecuteRequestHandler') +
    row('Handler', p.handlerName ?? NOT_YET) +
    row('Error Code', formatHResult(d?.hresult ?? 0)) +
    '</table>\n<table>' +
    row('Requested URL', p.requestedUrl) +
    row('Physical Path', p.physicalPath) +
    row('Logon Method', p.logonMethod) +
    row('Logon User', p.logonUser) +
    '</table>\n';
  if (is50019 && d !== undefined) {
    html += '<table>' + row('Config Error', d.description);
    if (d.configFile !== undefined) html += row('Config File', d.configFile);
    html += '</table>\n';
    if (d.configSource !== undefined && d.configSource !== '') {
      html += `<h3>Config Source:</h3><pre>${escapeHtml(configSourceExcerpt(d.configSource, d.configLine))}</pre>\n`;
    }
  }
  html += '</section>\n';

  if (p.moreInformationLink !== '') {
    html +=
      '<section><h3>More Information:</h3><p>This page is shown because detailed errors are enabled for this request ' +
      '(httpErrors errorMode). Remote clients get the custom error page instead by default. ' +
      `<a href="${escapeHtml(p.moreInformationLink)}">View more information &raquo;</a></p></section>\n`;
  }
  html += '</main>\n</body>\n</html>\n';
  return html;
}

export { NOT_YET };
