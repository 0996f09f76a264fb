/**
 * W3C custom log fields (IIS 8.5+ `logFile/customFields`): extra columns after the standard ones,
 * taken from a request header, a response header or a server variable.
 *
 * As IIS writes them: the `#Fields:` line names each column by its `logFieldName` as configured;
 * a value is cut to `maxCustomFieldLength` characters, all custom values of one line together to
 * 65,536; then W3C-encoded like every other field (empty → `-`, spaces and controls → `+`).
 *
 * The listener knows the server variables that describe the connection and the request line; the
 * ones a worker module sets (URL Rewrite's, ASP.NET's) never reach it and log as `-`, as does any
 * name it does not know.
 */
import { w3cField } from './w3c-log.js';
import type { LogRecord } from './log-record.js';

export type CustomFieldSourceType = 'RequestHeader' | 'ResponseHeader' | 'ServerVariable';

/** One `<add logFieldName sourceName sourceType/>`. */
export interface CustomFieldDefinition {
  readonly logFieldName: string;
  readonly sourceName: string;
  readonly sourceType: CustomFieldSourceType;
}

/** IIS's cap on all custom data in one line, whatever maxCustomFieldLength says. */
export const MAX_CUSTOM_DATA = 65_536;
/** `customFields maxCustomFieldLength` default. */
export const DEFAULT_MAX_CUSTOM_FIELD_LENGTH = 4096;

type Reader = (r: LogRecord) => string;

/** The value of a header in name/value pairs (any case); repeated headers are joined with `,`. */
export function headerValue(pairs: readonly string[], lowerName: string): string {
  let out: string | undefined;
  for (let i = 0; i < pairs.length; i += 2) {
    const n = pairs[i]!;
    if (n.length !== lowerName.length || n.toLowerCase() !== lowerName) continue;
    const v = pairs[i + 1]!;
    out = out === undefined ? v : out + ',' + v;
  }
  return out ?? '';
}

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** Server variables the listener can answer, by upper-case name. */
const SERVER_VARIABLES: ReadonlyMap<string, Reader> = new Map<string, Reader>([
  ['REMOTE_ADDR', (r) => r.clientIp],
  ['REMOTE_HOST', (r) => r.clientIp], // IIS without reverse DNS lookups: the address
  ['REMOTE_PORT', (r) => String(r.clientPort)],
  ['LOCAL_ADDR', (r) => r.serverIp],
  ['SERVER_PORT', (r) => String(r.serverPort)],
  ['SERVER_PORT_SECURE', (r) => (r.secure ? '1' : '0')],
  ['HTTPS', (r) => (r.secure ? 'on' : 'off')],
  ['SERVER_NAME', (r) => (r.host === '' ? r.serverIp : hostWithoutPort(r.host))],
  ['SERVER_PROTOCOL', (r) => r.protocolVersion],
  ['REQUEST_METHOD', (r) => r.method],
  ['URL', (r) => r.uriStem],
  ['PATH_INFO', (r) => r.uriStem],
  ['SCRIPT_NAME', (r) => r.uriStem],
  ['QUERY_STRING', (r) => r.uriQuery],
  ['CONTENT_LENGTH', (r) => headerValue(r.requestHeaders, 'content-length') || '0'],
  ['CONTENT_TYPE', (r) => headerValue(r.requestHeaders, 'content-type')],
  ['INSTANCE_ID', (r) => String(r.siteId)],
  ['INSTANCE_NAME', (r) => r.siteName.toUpperCase()],
  ['APP_POOL_ID', (r) => r.appPoolId],
  ['AUTH_USER', (r) => r.username],
  ['LOGON_USER', (r) => r.username],
  ['REMOTE_USER', (r) => r.username],
]);

/** The reader for a server variable name; `HTTP_X_FOO` reads the request header `X-Foo`. */
function serverVariableReader(name: string): Reader | undefined {
  const upper = name.toUpperCase();
  const known = SERVER_VARIABLES.get(upper);
  if (known !== undefined) return known;
  if (upper.startsWith('HTTP_') && upper.length > 5) {
    const header = upper.slice(5).toLowerCase().replace(/_/g, '-');
    return (r) => headerValue(r.requestHeaders, header);
  }
  return undefined;
}

/** A site's custom fields, compiled once per configuration. */
export class CustomLogFields {
  /** The names for the `#Fields:` line, space-separated, in configured order. */
  readonly names: string;
  /** Some field reads a response header: the listener must keep the response's headers. */
  readonly needsResponseHeaders: boolean;
  readonly count: number;
  readonly #readers: readonly Reader[];
  readonly #maxLength: number;

  constructor(fields: readonly CustomFieldDefinition[], maxCustomFieldLength = DEFAULT_MAX_CUSTOM_FIELD_LENGTH) {
    this.count = fields.length;
    this.#maxLength = maxCustomFieldLength;
    this.names = fields.map((f) => w3cField(f.logFieldName)).join(' ');
    this.needsResponseHeaders = fields.some((f) => f.sourceType === 'ResponseHeader');
    this.#readers = fields.map((f): Reader => {
      switch (f.sourceType) {
        case 'RequestHeader': {
          const lower = f.sourceName.toLowerCase();
          return (r) => headerValue(r.requestHeaders, lower);
        }
        case 'ResponseHeader': {
          const lower = f.sourceName.toLowerCase();
          return (r) => headerValue(r.responseHeaders, lower);
        }
        case 'ServerVariable':
          return serverVariableReader(f.sourceName) ?? (() => '');
      }
    });
  }

  /** The custom columns of one line, each preceded by a space, W3C-encoded. */
  format(r: LogRecord): string {
    let out = '';
    let budget = MAX_CUSTOM_DATA;
    const readers = this.#readers;
    for (let i = 0; i < readers.length; i++) {
      let v = readers[i]!(r);
      const limit = Math.min(this.#maxLength, budget);
      if (v.length > limit) v = v.slice(0, limit);
      budget -= v.length;
      out += ' ' + w3cField(v);
    }
    return out;
  }
}
