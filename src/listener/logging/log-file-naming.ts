/**
 * How IIS names request log files, for every format. One scheme, three prefixes (logInUTF8, the
 * default, adds `u_`):
 *
 * | period  | W3C                | IIS                | NCSA               |
 * |---------|--------------------|--------------------|--------------------|
 * | Hourly  | `u_exYYMMDDHH.log` | `u_inYYMMDDHH.log` | `u_ncYYMMDDHH.log` |
 * | Daily   | `u_exYYMMDD.log`   | `u_inYYMMDD.log`   | `u_ncYYMMDD.log`   |
 * | Weekly  | `u_exYYMMWW.log`   | `u_inYYMMWW.log`   | `u_ncYYMMWW.log`   |
 * | Monthly | `u_exYYMM.log`     | `u_inYYMM.log`     | `u_ncYYMM.log`     |
 * | MaxSize | `u_extendN.log`    | `u_inetsvN.log`    | `u_ncsaN.log`      |
 *
 * A W3C log with custom fields (IIS 8.5+) adds `_x` before `.log` so tools never mix the two
 * layouts in one file. WW is the week of the month, weeks starting on Sunday.
 */
import type { LogFileNaming, LogPeriod } from './buffered-log-file.js';

/** logFile `period` values. */
export type LogFilePeriod = 'Daily' | 'Hourly' | 'Weekly' | 'Monthly' | 'MaxSize';

/** The two name stems of one log format: time-based files and size-based files. */
export interface LogFileStems {
  /** `u_ex`, `u_in`, `u_nc`. */
  readonly time: string;
  /** `u_extend`, `u_inetsv`, `u_ncsa`. */
  readonly size: string;
}

export const W3C_STEMS: LogFileStems = { time: 'u_ex', size: 'u_extend' };
export const IIS_STEMS: LogFileStems = { time: 'u_in', size: 'u_inetsv' };
export const NCSA_STEMS: LogFileStems = { time: 'u_nc', size: 'u_ncsa' };

/** The stems IIS uses with `log logInUTF8="false"`: no `u_` prefix. */
export function withoutUtf8Prefix(stems: LogFileStems): LogFileStems {
  return { time: stems.time.replace(/^u_/, ''), size: stems.size.replace(/^u_/, '') };
}

interface CalendarFields {
  year: number;
  /** 0-based. */
  month: number;
  day: number;
  hour: number;
  /** 0 = Sunday. */
  weekday: number;
}

interface Calendar {
  fields(time: number): CalendarFields;
  /** The instant of a calendar time; out-of-range days/months carry over (day 32 = next month). */
  at(year: number, month: number, day: number, hour: number): number;
}

const UTC_CALENDAR: Calendar = {
  fields(time) {
    const d = new Date(time);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth(),
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      weekday: d.getUTCDay(),
    };
  },
  at: (year, month, day, hour) => Date.UTC(year, month, day, hour),
};

const LOCAL_CALENDAR: Calendar = {
  fields(time) {
    const d = new Date(time);
    return { year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), hour: d.getHours(), weekday: d.getDay() };
  },
  at: (year, month, day, hour) => new Date(year, month, day, hour).getTime(),
};

function two(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/**
 * The time-based file covering `time`, with its span. Weekly files follow IIS: a new file starts
 * with the first record after Saturday midnight, and WW counts weeks within the month (the 1st is in
 * week 01 whatever its weekday; a 31-day month starting on a Saturday reaches week 06).
 */
export function logFilePeriod(
  stem: string,
  period: Exclude<LogFilePeriod, 'MaxSize'>,
  time: number,
  localTime: boolean,
  suffix = '',
): LogPeriod {
  const cal = localTime ? LOCAL_CALENDAR : UTC_CALENDAR;
  const f = cal.fields(time);
  const yymm = stem + two(f.year % 100) + two(f.month + 1);
  const ext = suffix + '.log';
  switch (period) {
    case 'Hourly':
      return {
        name: yymm + two(f.day) + two(f.hour) + ext,
        start: cal.at(f.year, f.month, f.day, f.hour),
        end: cal.at(f.year, f.month, f.day, f.hour + 1),
      };
    case 'Daily':
      return {
        name: yymm + two(f.day) + ext,
        start: cal.at(f.year, f.month, f.day, 0),
        end: cal.at(f.year, f.month, f.day + 1, 0),
      };
    case 'Weekly': {
      const firstWeekday = (((f.weekday - (f.day - 1)) % 7) + 7) % 7;
      const week = Math.floor((f.day - 1 + firstWeekday) / 7) + 1;
      const sunday = f.day - f.weekday;
      return {
        name: yymm + two(week) + ext,
        start: cal.at(f.year, f.month, Math.max(1, sunday), 0),
        end: Math.min(cal.at(f.year, f.month, sunday + 7, 0), cal.at(f.year, f.month + 1, 1, 0)),
      };
    }
    case 'Monthly':
      return {
        name: yymm + ext,
        start: cal.at(f.year, f.month, 1, 0),
        end: cal.at(f.year, f.month + 1, 1, 0),
      };
  }
}

export interface LogFileNamingOptions {
  readonly stems: LogFileStems;
  readonly period: LogFilePeriod;
  /** MaxSize: the size a file with records in it is not grown past. */
  readonly truncateSize: number;
  /** Roll at local-time boundaries and name files by local dates. */
  readonly localTime: boolean;
  /** `_x` for W3C logs with custom fields, else empty. */
  readonly suffix?: string;
}

/** The BufferedLogFile naming for one log's settings. */
export function logFileNaming(o: LogFileNamingOptions): LogFileNaming {
  const suffix = o.suffix ?? '';
  const period = o.period;
  if (period === 'MaxSize') {
    const stem = o.stems.size;
    const ext = suffix + '.log';
    return {
      kind: 'size',
      truncateSize: o.truncateSize,
      fileName: (n) => stem + n + ext,
      sequenceOf(name) {
        if (!name.startsWith(stem) || !name.endsWith(ext)) return undefined;
        const digits = name.slice(stem.length, name.length - ext.length);
        return /^[1-9][0-9]*$/.test(digits) ? Number(digits) : undefined;
      },
    };
  }
  const stem = o.stems.time;
  const localTime = o.localTime;
  return { kind: 'time', period: (time) => logFilePeriod(stem, period, time, localTime, suffix) };
}
