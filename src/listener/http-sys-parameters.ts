/**
 * HTTP.sys's registry parameters (`HKLM\System\CurrentControlSet\Services\HTTP\Parameters`,
 * iis-behavior.md §4.1) that Wharf's listener honours. Linux has no registry: an administrator sets
 * them in the environment of the `wharf start` process, read once at start like HTTP.sys reads its
 * key when the HTTP service starts:
 *
 *   WHARF_HTTP_PARAMETERS='UrlSegmentMaxCount=1000;UrlSegmentMaxLength=1024;MaxFieldLength=32768'
 *
 * Names are the registry value names (any case), values decimal, ranges HTTP.sys's own. A name
 * Wharf does not know or a value out of range stops the start with LSN_HTTP_PARAMETER: a typo must
 * not silently leave a limit where it was.
 */
import { ListenerError } from '../errors.js';
import { DEFAULT_PARSER_LIMITS, type ParserLimits } from './http-parser.js';

export const HTTP_PARAMETERS_ENV = 'WHARF_HTTP_PARAMETERS';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Parameter {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly apply: (limits: Mutable<ParserLimits>, value: number) => void;
}

/** The values and ranges documented for HTTP.sys (KB 820129); 0 means "no limit" for the segment limits. */
const PARAMETERS: readonly Parameter[] = [
  { name: 'MaxFieldLength', min: 64, max: 65534, apply: (l, v) => (l.maxFieldLength = v) },
  {
    name: 'MaxRequestBytes',
    min: 256,
    max: 16777216,
    // The request line is part of the head: the target may be as long as the head allows.
    apply: (l, v) => {
      l.maxRequestBytes = v;
      l.maxUrlBytes = v;
    },
  },
  { name: 'UrlSegmentMaxCount', min: 0, max: 16383, apply: (l, v) => (l.urlSegmentMaxCount = v) },
  { name: 'UrlSegmentMaxLength', min: 0, max: 32766, apply: (l, v) => (l.urlSegmentMaxLength = v) },
];

/** The parser limits for a WHARF_HTTP_PARAMETERS value (undefined or empty: HTTP.sys's defaults). */
export function httpSysParameters(text: string | undefined): ParserLimits {
  const limits: Mutable<ParserLimits> = { ...DEFAULT_PARSER_LIMITS };
  if (text === undefined || text.trim() === '') return Object.freeze(limits);
  for (const item of text.split(/[;,]/)) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const name = (eq === -1 ? item : item.slice(0, eq)).trim();
    const p = PARAMETERS.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (p === undefined) {
      throw new ListenerError(
        'LSN_HTTP_PARAMETER',
        `${HTTP_PARAMETERS_ENV}: unknown parameter '${name}' (known: ${PARAMETERS.map((x) => x.name).join(', ')})`,
      );
    }
    const raw = eq === -1 ? '' : item.slice(eq + 1).trim();
    const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
    if (!(value >= p.min && value <= p.max)) {
      throw new ListenerError('LSN_HTTP_PARAMETER', `${HTTP_PARAMETERS_ENV}: ${p.name} must be a whole number from ${p.min} to ${p.max}, not '${raw}'`);
    }
    p.apply(limits, value);
  }
  return Object.freeze(limits);
}
