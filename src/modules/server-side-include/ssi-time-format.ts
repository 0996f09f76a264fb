/**
 * `#config timefmt`: the C strftime tokens, in the C ("English") locale, as IIS documents them for
 * #flastmod, DATE_LOCAL, DATE_GMT and LAST_MODIFIED (IIS 6 SDK, "#config": "the formatting tokens
 * are the same as those you would use for the ANSI C strftime function … the C library locale is
 * usually set to English"). Microsoft's CRT spellings are kept where they differ from glibc's
 * (`%c` is `%m/%d/%y %H:%M:%S`, `%z`/`%Z` the time zone's name) and its `#` flag is honoured
 * (`%#d` drops the leading zero, `%#c` and `%#x` are the long forms). C99's `%C %D %e %F %g %G %h
 * %n %r %R %t %T %u %V` work too. An unknown token makes the format invalid: #config reports it.
 */

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** The format used until a #config timefmt sets another (Wharf's choice: IIS does not document its own). */
export const DEFAULT_TIME_FORMAT = '%A, %B %d, %Y %H:%M:%S';

/** The longest timefmt #config accepts (IIS caps #config strings at 1024 bytes); it bounds the output too. */
export const MAX_TIME_FORMAT_LENGTH = 1024;

interface Parts {
  readonly year: number;
  /** 0-11 */
  readonly month: number;
  readonly day: number;
  /** 0 = Sunday */
  readonly weekday: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** 0-based day of the year. */
  readonly yearDay: number;
  /** Minutes east of UTC. */
  readonly offset: number;
  readonly zone: string;
}

function dayOfYear(year: number, month: number, day: number): number {
  return Math.round((Date.UTC(year, month, day) - Date.UTC(year, 0, 1)) / 86_400_000);
}

let zoneFormat: Intl.DateTimeFormat | undefined;

/** The local time zone's short name ("CET", "EST", "UTC", or "GMT+2" where there is none). */
function localZoneName(date: Date): string {
  zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  return zoneFormat.formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? '';
}

function partsOf(date: Date, utc: boolean): Parts {
  if (utc) {
    const year = date.getUTCFullYear();
    const month = date.getUTCMonth();
    const day = date.getUTCDate();
    return {
      year,
      month,
      day,
      weekday: date.getUTCDay(),
      hour: date.getUTCHours(),
      minute: date.getUTCMinutes(),
      second: date.getUTCSeconds(),
      yearDay: dayOfYear(year, month, day),
      offset: 0,
      zone: 'GMT',
    };
  }
  const year = date.getFullYear();
  const month = date.getMonth();
  const day = date.getDate();
  return {
    year,
    month,
    day,
    weekday: date.getDay(),
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds(),
    yearDay: dayOfYear(year, month, day),
    offset: -date.getTimezoneOffset(),
    zone: localZoneName(date),
  };
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/** ISO 8601 week number and week-based year (C99 %V, %G). */
function isoWeek(p: Parts): { week: number; year: number } {
  const mondayBased = (p.weekday + 6) % 7;
  const thursday = p.yearDay - mondayBased + 3;
  if (thursday < 0) {
    const prevDays = isLeap(p.year - 1) ? 366 : 365;
    return { week: Math.floor((thursday + prevDays) / 7) + 1, year: p.year - 1 };
  }
  const days = isLeap(p.year) ? 366 : 365;
  if (thursday >= days) return { week: 1, year: p.year + 1 };
  return { week: Math.floor(thursday / 7) + 1, year: p.year };
}

function pad(n: number, width: number, noPad: boolean): string {
  const s = String(n);
  return noPad || s.length >= width ? s : '0'.repeat(width - s.length) + s;
}

/** One token's text, or undefined when the token is unknown. */
function token(c: string, p: Parts, alt: boolean): string | undefined {
  const hour12 = p.hour % 12 === 0 ? 12 : p.hour % 12;
  switch (c) {
    case 'a':
      return DAYS[p.weekday]!.slice(0, 3);
    case 'A':
      return DAYS[p.weekday]!;
    case 'b':
    case 'h':
      return MONTHS[p.month]!.slice(0, 3);
    case 'B':
      return MONTHS[p.month]!;
    case 'c':
      return alt ? `${token('x', p, true)}, ${token('X', p, false)}` : `${token('x', p, false)} ${token('X', p, false)}`;
    case 'C':
      return pad(Math.floor(p.year / 100), 2, alt);
    case 'd':
      return pad(p.day, 2, alt);
    case 'D':
      return `${pad(p.month + 1, 2, false)}/${pad(p.day, 2, false)}/${pad(p.year % 100, 2, false)}`;
    case 'e':
      return alt ? String(p.day) : String(p.day).padStart(2, ' ');
    case 'F':
      return `${p.year}-${pad(p.month + 1, 2, false)}-${pad(p.day, 2, false)}`;
    case 'g':
      return pad(isoWeek(p).year % 100, 2, alt);
    case 'G':
      return String(isoWeek(p).year);
    case 'H':
      return pad(p.hour, 2, alt);
    case 'I':
      return pad(hour12, 2, alt);
    case 'j':
      return pad(p.yearDay + 1, 3, alt);
    case 'm':
      return pad(p.month + 1, 2, alt);
    case 'M':
      return pad(p.minute, 2, alt);
    case 'n':
      return '\n';
    case 'p':
      return p.hour < 12 ? 'AM' : 'PM';
    case 'r':
      return `${pad(hour12, 2, false)}:${pad(p.minute, 2, false)}:${pad(p.second, 2, false)} ${p.hour < 12 ? 'AM' : 'PM'}`;
    case 'R':
      return `${pad(p.hour, 2, false)}:${pad(p.minute, 2, false)}`;
    case 'S':
      return pad(p.second, 2, alt);
    case 't':
      return '\t';
    case 'T':
    case 'X':
      return `${pad(p.hour, 2, false)}:${pad(p.minute, 2, false)}:${pad(p.second, 2, false)}`;
    case 'u':
      return String(p.weekday === 0 ? 7 : p.weekday);
    case 'U':
      return pad(Math.floor((p.yearDay + 7 - p.weekday) / 7), 2, alt);
    case 'V':
      return pad(isoWeek(p).week, 2, alt);
    case 'w':
      return String(p.weekday);
    case 'W':
      return pad(Math.floor((p.yearDay + 7 - ((p.weekday + 6) % 7)) / 7), 2, alt);
    case 'x':
      return alt
        ? `${DAYS[p.weekday]}, ${MONTHS[p.month]} ${pad(p.day, 2, false)}, ${p.year}`
        : `${pad(p.month + 1, 2, false)}/${pad(p.day, 2, false)}/${pad(p.year % 100, 2, false)}`;
    case 'y':
      return pad(p.year % 100, 2, alt);
    case 'Y':
      return String(p.year);
    case 'z':
    case 'Z':
      return p.zone;
    case '%':
      return '%';
    default:
      return undefined;
  }
}

/** Why `format` cannot be used as a timefmt, or undefined when it can. */
export function checkTimeFormat(format: string): string | undefined {
  if (format.length > MAX_TIME_FORMAT_LENGTH) return `the time format is longer than ${MAX_TIME_FORMAT_LENGTH} characters`;
  const probe = partsOf(new Date(0), true);
  for (let i = 0; i < format.length; i++) {
    if (format[i] !== '%') continue;
    let c = format[++i];
    if (c === '#') c = format[++i];
    if (c === undefined) return 'the time format ends with a lone %';
    if (token(c, probe, false) === undefined) return `the time format has the unknown token %${c}`;
  }
  return undefined;
}

/** `date` as `format` says, in local time or (utc) in GMT. The format was checked by checkTimeFormat. */
export function formatTime(date: Date, format: string, utc: boolean): string {
  const p = partsOf(date, utc);
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!;
    if (ch !== '%') {
      out += ch;
      continue;
    }
    let c = format[++i];
    const alt = c === '#';
    if (alt) c = format[++i];
    if (c === undefined) break;
    out += token(c, p, alt) ?? `%${alt ? '#' : ''}${c}`;
  }
  return out;
}
