/**
 * A failed request's trace as IIS writes it (reference §5.2): `<failedRequest>` with the request's
 * summary as attributes, then one `<Event>` per event in the Windows event schema (System,
 * EventData, RenderingInfo), with `freb.xsl` named as its stylesheet so a browser renders it.
 *
 * The record comes from a worker, which runs the pool's code: validateTraceRecord checks every
 * field's type and bound before anything is rendered, and every value is escaped here (the file is
 * opened by administrators in a browser).
 */
import type { TraceEventRecord, TraceRecordMessage } from '../../ipc/messages.js';

export const FREB_NAMESPACE = 'http://schemas.microsoft.com/win/2006/06/iis/freb';
export const EVENT_NAMESPACE = 'http://schemas.microsoft.com/win/2004/08/events/event';
/** The WWW Server trace provider (traceProviderDefinitions). */
const WWW_SERVER_GUID = '{3A2A4E84-4C21-4981-AE10-3FDA0D9B0F83}';

/** Keyword bits of the WWW Server provider's areas; 'General' events have none. */
const AREA_KEYWORDS: Readonly<Record<string, number>> = {
  General: 0,
  Authentication: 2,
  Security: 4,
  Filter: 8,
  StaticFile: 16,
  CGI: 32,
  Compression: 64,
  Cache: 128,
  RequestNotifications: 256,
  Module: 512,
  Rewrite: 1024,
  RequestRouting: 2048,
  FastCGI: 4096,
  WebSocket: 16384,
  ANCM: 65536,
};

const LEVEL_NAMES = ['General', 'Critical Error', 'Error', 'Warning', 'Informational', 'Verbose'] as const;

/** Event names paired as start/end (Opcode 1/2 of their event class, as IIS numbers them); others 0. */
function opcodeNumber(opcode: string): number {
  if (opcode.endsWith('_START')) return 1;
  if (opcode.endsWith('_END')) return 2;
  return 0;
}

// ---- validation ------------------------------------------------------------------------------

const MAX_STRING = 64 * 1024;
const MAX_DATA = 64;
const FAILURE_REASONS = new Set(['STATUS_CODE', 'TIME_TAKEN', 'VERBOSITY']);
const OPCODE = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,79}$/;
const STATUS = /^\d{3}(?:\.\d{1,5})?$/;
const ACTIVITY = /^\{[0-9A-Fa-f-]{36}\}$/;

function str(v: unknown, max = MAX_STRING): v is string {
  return typeof v === 'string' && v.length <= max;
}

/**
 * The record when every field has its type and bound, else why not (for the log). Unknown
 * fields are ignored; nothing of the input is kept by reference.
 */
export function validateTraceRecord(input: unknown): TraceRecordMessage | string {
  if (typeof input !== 'object' || input === null) return 'not an object';
  const r = input as Record<string, unknown>;
  if (typeof r.siteId !== 'number' || !Number.isSafeInteger(r.siteId) || r.siteId < 1) return 'siteId is not a site id';
  if (!str(r.url) || !str(r.verb, 64) || !str(r.userName, 1024) || !str(r.authenticationType, 64)) return 'url, verb, userName or authenticationType is not a bounded string';
  if (!str(r.activityId) || !ACTIVITY.test(r.activityId)) return 'activityId is not a {GUID}';
  if (typeof r.failureReason !== 'string' || !FAILURE_REASONS.has(r.failureReason)) return 'failureReason is not STATUS_CODE, TIME_TAKEN or VERBOSITY';
  if (!str(r.statusCode, 16) || !STATUS.test(r.statusCode) || !str(r.triggerStatusCode, 16) || !STATUS.test(r.triggerStatusCode)) return 'statusCode or triggerStatusCode is not a status';
  if (typeof r.timeTaken !== 'number' || !Number.isSafeInteger(r.timeTaken) || r.timeTaken < 0) return 'timeTaken is not a whole number of ms';
  if (!Array.isArray(r.events)) return 'events is not a list';
  const events: TraceEventRecord[] = [];
  for (const e of r.events as unknown[]) {
    if (typeof e !== 'object' || e === null) return 'an event is not an object';
    const ev = e as Record<string, unknown>;
    if (!str(ev.opcode, 80) || !OPCODE.test(ev.opcode)) return 'an event has an invalid opcode';
    if (!str(ev.area, 40) || !(ev.area in AREA_KEYWORDS)) return `event ${ev.opcode} has an unknown area`;
    if (typeof ev.level !== 'number' || !Number.isInteger(ev.level) || ev.level < 0 || ev.level > 5) return `event ${ev.opcode} has a level outside 0..5`;
    if (typeof ev.time !== 'number' || !Number.isFinite(ev.time) || ev.time < 0 || ev.time > 8.64e15) return `event ${ev.opcode} has an invalid time`;
    if (!Array.isArray(ev.data) || ev.data.length > MAX_DATA) return `event ${ev.opcode} has invalid data`;
    const data: [string, string, string][] = [];
    for (const d of ev.data as unknown[]) {
      if (!Array.isArray(d) || d.length !== 3 || !str(d[0], 80) || !NAME.test(d[0]) || !str(d[1]) || !str(d[2], 1024)) return `event ${ev.opcode} has an invalid data item`;
      data.push([d[0], d[1], d[2]]);
    }
    events.push({ opcode: ev.opcode, area: ev.area, level: ev.level, time: ev.time, data });
  }
  return {
    siteId: r.siteId,
    url: r.url,
    verb: r.verb,
    userName: r.userName,
    authenticationType: r.authenticationType,
    activityId: r.activityId,
    failureReason: r.failureReason as TraceRecordMessage['failureReason'],
    statusCode: r.statusCode,
    triggerStatusCode: r.triggerStatusCode,
    timeTaken: r.timeTaken,
    events,
  };
}

// ---- rendering -------------------------------------------------------------------------------

/** What the main process adds to a worker's record: facts the worker is not trusted to state. */
export interface TraceContext {
  readonly appPoolId: string;
  readonly processId: number;
  readonly computer: string;
  /** Bytes the file may take (maxLogFileSizeKB); 0: no limit. Events past it are left out. */
  readonly maxBytes: number;
}

/** Characters XML 1.0 cannot carry (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) become U+FFFD. */
const NOT_XML = /[\0-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;', '\n': '&#10;', '\t': '&#9;' };

/** Text or attribute value, escaped (line breaks as references, so attribute values keep them). */
export function xmlEscape(text: string): string {
  return text.replace(NOT_XML, '\ufffd').replace(/[&<>"'\r\n\t]/g, (c) => ESCAPES[c]!);
}

/** The trace file's text. */
export function renderTrace(record: TraceRecordMessage, context: TraceContext): string {
  const head =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<?xml-stylesheet type='text/xsl' href='freb.xsl'?>\n` +
    `<!-- saved from url=(0014)about:internet -->\n` +
    `<failedRequest url="${xmlEscape(record.url)}"\n` +
    `               siteId="${record.siteId}"\n` +
    `               appPoolId="${xmlEscape(context.appPoolId)}"\n` +
    `               processId="${context.processId}"\n` +
    `               verb="${xmlEscape(record.verb)}"\n` +
    `               remoteUserName="${xmlEscape(record.userName)}"\n` +
    `               userName="${xmlEscape(record.userName)}"\n` +
    `               tokenUserName="${xmlEscape(record.userName === '' ? '' : record.userName)}"\n` +
    `               authenticationType="${xmlEscape(record.authenticationType)}"\n` +
    `               activityId="${xmlEscape(record.activityId)}"\n` +
    `               failureReason="${record.failureReason}"\n` +
    `               statusCode="${record.statusCode}"\n` +
    `               triggerStatusCode="${record.triggerStatusCode}"\n` +
    `               timeTaken="${record.timeTaken}"\n` +
    `               xmlns:freb="${FREB_NAMESPACE}"\n` +
    `               >\n`;
  const tail = '</failedRequest>\n';
  const limit = context.maxBytes > 0 ? context.maxBytes : Infinity;
  let size = Buffer.byteLength(head) + Buffer.byteLength(tail);
  const parts = [head];
  for (const e of record.events) {
    const xml = renderEvent(e, record.activityId, context);
    const bytes = Buffer.byteLength(xml);
    // IIS stops writing a trace at maxLogFileSizeKB; the file stays well-formed.
    if (size + bytes > limit) break;
    size += bytes;
    parts.push(xml);
  }
  parts.push(tail);
  return parts.join('');
}

function renderEvent(e: TraceEventRecord, activityId: string, context: TraceContext): string {
  const keywords = AREA_KEYWORDS[e.area] ?? 0;
  let data = ` <EventData>\n  <Data Name="ContextId">${xmlEscape(activityId)}</Data>\n`;
  let descriptions = '';
  for (const [name, value, description] of e.data) {
    data += `  <Data Name="${xmlEscape(name)}">${xmlEscape(value)}</Data>\n`;
    if (description !== '') descriptions += `  <freb:Description Data="${xmlEscape(name)}">${xmlEscape(description)}</freb:Description>\n`;
  }
  data += ' </EventData>\n';
  return (
    `<Event xmlns="${EVENT_NAMESPACE}">\n` +
    ` <System>\n` +
    `  <Provider Name="WWW Server" Guid="${WWW_SERVER_GUID}"/>\n` +
    `  <EventID>0</EventID>\n` +
    `  <Version>1</Version>\n` +
    `  <Level>${e.level}</Level>\n` +
    `  <Opcode>${opcodeNumber(e.opcode)}</Opcode>\n` +
    `  <Keywords>0x${keywords.toString(16)}</Keywords>\n` +
    `  <TimeCreated SystemTime="${systemTime(e.time)}"/>\n` +
    `  <Correlation ActivityID="${xmlEscape(activityId)}"/>\n` +
    `  <Execution ProcessID="${context.processId}" ThreadID="0"/>\n` +
    `  <Computer>${xmlEscape(context.computer)}</Computer>\n` +
    ` </System>\n` +
    data +
    ` <RenderingInfo Culture="en-US">\n` +
    `  <Opcode>${xmlEscape(e.opcode)}</Opcode>\n` +
    `  <Level>${LEVEL_NAMES[e.level] ?? ''}</Level>\n` +
    (keywords === 0 ? '' : `  <Keywords>\n   <Keyword>${xmlEscape(e.area)}</Keyword>\n  </Keywords>\n`) +
    descriptions +
    ` </RenderingInfo>\n` +
    `</Event>\n`
  );
}

/** ISO 8601 UTC with 100 ns digits, as Windows events show TimeCreated. */
function systemTime(ms: number): string {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // 2026-12-05T14:00:00.123Z
  const ticks = Math.floor((ms - whole) * 10_000); // the 4 digits below the millisecond
  return `${iso.slice(0, 23)}${String(ticks).padStart(4, '0')}Z`;
}
