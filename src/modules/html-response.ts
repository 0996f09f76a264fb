/**
 * Small pieces the built-in modules share when they write a page of their own: HTML escaping,
 * URL-path encoding for links and Location headers, and sending a complete buffered body.
 */
import type { HttpContext } from '../worker/module-api.js';

const HTML_SPECIAL = /[&<>"']/;
const HTML_SPECIAL_ALL = /[&<>"']/g;
const HTML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  // Most text has nothing to escape: test first so the common case allocates nothing.
  return HTML_SPECIAL.test(text) ? text.replace(HTML_SPECIAL_ALL, (c) => HTML_ENTITIES[c] ?? c) : text;
}

export { encodeUrlPath } from '../http/url-path.js';

/**
 * Send a complete body with Content-Type and Content-Length. HEAD gets the same headers and no
 * body (RFC 9110 §9.3.2).
 */
export function sendBody(ctx: HttpContext, body: Buffer, contentType: string): void {
  const res = ctx.response;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(body.length));
  if (ctx.request.method !== 'HEAD') res.write(body);
}

/** The small HTML body IIS sends with its own redirects ("Document Moved"). */
export function movedPage(location: string): Buffer {
  const href = escapeHtml(location);
  return Buffer.from(
    `<head><title>Document Moved</title></head>\r\n<body><h1>Object Moved</h1>This document may be found <a HREF="${href}">here</a></body>`,
  );
}

/** Redirect the request (status 301/302/…) to `location` with IIS's small "moved" body. */
export function redirect(ctx: HttpContext, status: number, location: string): void {
  const res = ctx.response;
  res.clearBody();
  res.statusCode = status;
  res.subStatus = 0;
  res.statusReason = '';
  res.setHeader('Location', location);
  sendBody(ctx, movedPage(location), 'text/html; charset=UTF-8');
}
