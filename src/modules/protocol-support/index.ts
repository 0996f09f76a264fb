/**
 * ProtocolSupportModule (IIS protsup): in SendResponse it adds httpProtocol customHeaders (every
 * response) and redirectHeaders (redirects), and `Connection: close` when allowKeepAlive is false;
 * as a handler it answers OPTIONS (OPTIONSVerbHandler) and TRACE (TRACEVerbHandler).
 */
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, HttpResponse, ModuleDefinition } from '../../worker/module-api.js';
import { requestFilterFor } from '../request-filtering/index.js';
import { statusText } from '../sub-status.js';

export const HTTP_PROTOCOL_SECTION = 'system.webServer/httpProtocol';

interface HeaderPair {
  readonly name: string;
  readonly value: string;
}

interface CompiledProtocol {
  readonly customHeaders: readonly HeaderPair[];
  readonly redirectHeaders: readonly HeaderPair[];
  readonly allowKeepAlive: boolean;
}

// One compiled copy per section element (the config hands out one element per scope).
const compiled = new WeakMap<ConfigElement, CompiledProtocol>();

function pairs(items: readonly ConfigElement[]): HeaderPair[] {
  return items.map((i) => ({ name: i.str('name'), value: i.str('value') }));
}

function protocolFor(ctx: HttpContext): CompiledProtocol {
  const section = ctx.config.section(HTTP_PROTOCOL_SECTION);
  let p = compiled.get(section);
  if (!p) {
    p = {
      customHeaders: pairs(section.child('customHeaders').items),
      redirectHeaders: pairs(section.child('redirectHeaders').items),
      allowKeepAlive: section.bool('allowKeepAlive'),
    };
    compiled.set(section, p);
  }
  return p;
}

/**
 * Add a header without replacing one the application set: IIS adds custom headers with
 * fReplace=FALSE, so a value set twice is sent as "a, b" (Set-Cookie stays separate lines).
 */
function appendHeader(res: HttpResponse, name: string, value: string): void {
  const existing = res.getHeader(name);
  if (existing === undefined) res.setHeader(name, value);
  else if (typeof existing !== 'string' || name.toLowerCase() === 'set-cookie') {
    res.setHeader(name, typeof existing === 'string' ? [existing, value] : [...existing, value]);
  } else res.setHeader(name, `${existing}, ${value}`);
}

function isRedirect(status: number): boolean {
  // 3xx except 304, which revalidates a cached response rather than redirecting.
  return status >= 300 && status < 400 && status !== 304;
}

function sendResponse(ctx: HttpContext): void {
  const p = protocolFor(ctx);
  const res = ctx.response;
  for (const h of p.customHeaders) appendHeader(res, h.name, h.value);
  if (p.redirectHeaders.length > 0 && isRedirect(res.statusCode)) {
    for (const h of p.redirectHeaders) appendHeader(res, h.name, h.value);
  }
  if (!p.allowKeepAlive) {
    res.setHeader('Connection', 'close');
    requestClose(res);
  }
}

/**
 * The listener owns connections and drops hop-by-hop headers such as Connection, so the header
 * alone does not close anything. The worker's response offers requestClose() outside the module
 * contract; use it when present until the contract carries the request.
 */
function requestClose(res: HttpResponse): void {
  const r: HttpResponse & { requestClose?: unknown } = res;
  if (typeof r.requestClose === 'function') r.requestClose();
}

/** The methods IIS advertises for OPTIONS, in its order, minus those request filtering denies. */
const ADVERTISED_VERBS = ['OPTIONS', 'TRACE', 'GET', 'HEAD', 'POST'] as const;

function allowedVerbs(ctx: HttpContext): string {
  const filter = requestFilterFor(ctx);
  const out: string[] = [];
  for (const verb of ADVERTISED_VERBS) {
    const allowed = filter.verbs.get(verb);
    if (allowed === true || (allowed === undefined && filter.verbsAllowUnlisted)) out.push(verb);
  }
  return out.join(', ');
}

function options(ctx: HttpContext): void {
  const res = ctx.response;
  res.statusCode = 200;
  const verbs = allowedVerbs(ctx);
  res.setHeader('Allow', verbs);
  // IIS also sends the RFC 2068 "Public" header with the same list.
  res.setHeader('Public', verbs);
  res.setHeader('Content-Length', '0');
  ctx.finish();
}

/**
 * Header fields a TRACE echo leaves out: RFC 9110 §9.3.8 asks servers not to reflect fields that
 * likely carry credentials, which also defeats cross-site tracing (reading HttpOnly cookies).
 */
const TRACE_EXCLUDED = new Set(['authorization', 'proxy-authorization', 'cookie']);

function trace(ctx: HttpContext): void {
  const req = ctx.request;
  let text = `${req.method} ${req.rawUrl} ${req.protocol}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (TRACE_EXCLUDED.has(name.toLowerCase())) continue;
    text += `${name}: ${raw[i + 1] ?? ''}\r\n`;
  }
  text += '\r\n';
  const body = Buffer.from(text, 'latin1');
  const res = ctx.response;
  res.statusCode = 200;
  res.setHeader('Content-Type', 'message/http');
  res.setHeader('Content-Length', String(body.length));
  res.write(body);
  ctx.finish();
}

async function executeHandler(ctx: HttpContext): Promise<void> {
  const method = ctx.request.method;
  if (method === 'OPTIONS') return options(ctx);
  if (method === 'TRACE') return trace(ctx);
  // Mapped to another verb by a custom handler entry: this module only implements these two.
  ctx.setStatus(405, 0, {
    module: 'ProtocolSupportModule',
    notification: ctx.notification,
    hresult: 0x80070001,
    description: statusText(405, 0).description,
  });
  ctx.response.setHeader('Allow', 'OPTIONS, TRACE');
  ctx.finish();
}

export const ProtocolSupportModule: ModuleDefinition = {
  name: 'ProtocolSupportModule',
  notifications: { SendResponse: sendResponse },
  executeHandler,
};
