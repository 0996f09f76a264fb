/**
 * Local-time stamps for the IIS and NCSA log formats, which (unlike W3C) record local time.
 * Recomputed only when the second changes, as W3cTimestamp does for UTC: formatting a Date per
 * record would dominate a busy site's logging cost.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

function two(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** `+hhmm` / `-hhmm` for a Date's local offset from UTC. */
export function utcOffset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return (minutes < 0 ? '-' : '+') + two(Math.floor(abs / 60)) + two(abs % 60);
}

export class LocalTimestamp {
  /** IIS format date: `M/D/YYYY`. */
  iisDate = '';
  /** IIS format time: `H:mm:ss`. */
  iisTime = '';
  /** NCSA: `dd/MMM/yyyy:HH:mm:ss +zzzz`. */
  ncsa = '';
  #second = Number.NaN;

  set(time: number): void {
    const second = Math.floor(time / 1000);
    if (second === this.#second) return;
    this.#second = second;
    const d = new Date(second * 1000);
    const year = d.getFullYear();
    const month = d.getMonth();
    const day = d.getDate();
    const hh = d.getHours();
    const mmss = two(d.getMinutes()) + ':' + two(d.getSeconds());
    this.iisDate = `${month + 1}/${day}/${year}`;
    this.iisTime = `${hh}:${mmss}`;
    this.ncsa = `${two(day)}/${MONTHS[month]}/${year}:${two(hh)}:${mmss} ${utcOffset(d)}`;
  }
}
