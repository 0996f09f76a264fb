/**
 * The request logs the listener writes, built from configuration (HTTP.sys's logging as IIS's
 * W3SVC configures it): per site (`siteDefaults/logFile` merged with the site's `<logFile>`), or
 * one central W3C file for every site (`system.applicationHost/log centralLogFileMode="CentralW3C"`).
 *
 * - logFormat `W3C` → W3cLogFile (with the site's custom fields), `IIS` and `NCSA` →
 *   FixedFormatLogFile. `Custom` (an ETW/COM logging plug-in) cannot exist here: reported once,
 *   and the site gets a W3C log instead of none.
 * - CentralW3C: per-site files are not written; the central file takes every site whose own
 *   logFile is enabled, with `centralW3CLogFile`'s fields, period and size. Custom fields are a
 *   per-site feature in IIS and do not apply to it. CentralBinary (`.ibl` files) is reported once
 *   and per-site logging stays in force.
 *
 * A reconfiguration keeps every log whose settings did not change (no header block is repeated,
 * nothing buffered is lost); a changed or removed one is flushed and closed.
 */
import type { AppHostConfig, ConfigElement, SiteConfig } from '../../config/types.js';
import type { ListenerError } from '../../errors.js';
import { CustomLogFields, type CustomFieldDefinition, type CustomFieldSourceType } from './custom-log-fields.js';
import { FixedFormatLogFile } from './fixed-format-log.js';
import type { LogFilePeriod } from './log-file-naming.js';
import type { RequestLogFile } from './log-record.js';
import { W3cLogFile } from './w3c-log.js';

export interface SiteLogsOptions {
  /** Write failures (already throttled to once a minute per file). */
  readonly onError: (err: ListenerError) => void;
  /** A configuration Wharf cannot honour as written (reported once per cause). */
  readonly notice: (message: string) => void;
  /** Injectable clock and flush interval, for tests. */
  readonly now?: (() => number) | undefined;
  readonly flushIntervalMs?: number | undefined;
}

interface Entry {
  readonly log: RequestLogFile;
  readonly signature: string;
}

export class SiteLogs {
  readonly #o: SiteLogsOptions;
  readonly #sites = new Map<number, Entry>();
  #central: Entry | undefined = undefined;
  /** Central mode: the sites whose own logFile is enabled (the others are not logged). */
  #centralSites = new Set<number>();
  /** Sites whose log reads response headers (custom fields), checked once per response. */
  #responseHeaderSites = new Set<number>();
  readonly #noticed = new Set<string>();

  constructor(options: SiteLogsOptions) {
    this.#o = options;
  }

  /** The log a completed request of `siteId` goes to, if any. */
  get(siteId: number): RequestLogFile | undefined {
    const central = this.#central;
    if (central !== undefined) return this.#centralSites.has(siteId) ? central.log : undefined;
    return this.#sites.get(siteId)?.log;
  }

  /** Whether any site writes a request log (the listener subscribes to requestEnd only then). */
  get active(): boolean {
    return this.#central !== undefined ? this.#centralSites.size > 0 : this.#sites.size > 0;
  }

  /** Whether responses of this site must keep their headers for its log (custom fields). */
  needsResponseHeaders(siteId: number): boolean {
    return this.#responseHeaderSites.has(siteId);
  }

  apply(config: AppHostConfig): void {
    const logSection = config.section('system.applicationHost/log');
    const mode = logSection.enumName('centralLogFileMode');
    const utf8 = logSection.bool('logInUTF8');
    if (mode === 'CentralBinary') {
      this.#noticeOnce(
        'CentralBinary',
        'log centralLogFileMode="CentralBinary" (binary .ibl logs) is not supported; sites keep their own logs',
      );
    }
    if (!utf8) this.#noticeOnce('logInUTF8', 'log logInUTF8="false": files are named without the u_ prefix; their content is still UTF-8');
    const responseHeaderSites = new Set<number>();
    if (mode === 'CentralW3C') {
      this.#applyCentral(config, logSection.child('centralW3CLogFile'), utf8);
      for (const [id, e] of this.#sites) {
        void e.log.close();
        this.#sites.delete(id);
      }
      this.#responseHeaderSites = responseHeaderSites;
      return;
    }
    if (this.#central !== undefined) {
      void this.#central.log.close();
      this.#central = undefined;
      this.#centralSites = new Set();
    }
    const seen = new Set<number>();
    for (const site of config.sites) {
      seen.add(site.id);
      const cur = this.#sites.get(site.id);
      const built = this.#siteLog(site, utf8, cur);
      if (built !== cur) {
        if (cur !== undefined) void cur.log.close();
        this.#sites.set(site.id, built);
      }
      if (built.log.needsResponseHeaders) responseHeaderSites.add(site.id);
    }
    for (const [id, e] of this.#sites) {
      if (seen.has(id)) continue;
      void e.log.close();
      this.#sites.delete(id);
    }
    this.#responseHeaderSites = responseHeaderSites;
  }

  async flush(): Promise<void> {
    await Promise.all(this.#all().map((l) => l.flush()));
  }

  async close(): Promise<void> {
    await Promise.all(this.#all().map((l) => l.close()));
  }

  #all(): RequestLogFile[] {
    const logs = [...this.#sites.values()].map((e) => e.log);
    if (this.#central !== undefined) logs.push(this.#central.log);
    return logs;
  }

  #applyCentral(config: AppHostConfig, c: ConfigElement, utf8: boolean): void {
    const sites = new Set<number>();
    for (const site of config.sites) if (site.logFile.bool('enabled')) sites.add(site.id);
    this.#centralSites = sites;
    const signature = [
      config.centralW3CLogDirectory,
      c.bool('enabled'),
      c.num('logExtFileFlags'),
      c.enumName('period'),
      c.num('truncateSize'),
      c.bool('localTimeRollover'),
      utf8,
    ].join('|');
    if (this.#central?.signature === signature) return;
    if (this.#central !== undefined) void this.#central.log.close();
    const log = new W3cLogFile({
      directory: config.centralW3CLogDirectory,
      siteId: 0,
      central: true,
      fields: c.num('logExtFileFlags'),
      period: c.enumName('period') as LogFilePeriod,
      truncateSize: c.num('truncateSize'),
      localTimeRollover: c.bool('localTimeRollover'),
      enabled: c.bool('enabled'),
      utf8,
      now: this.#o.now,
      flushIntervalMs: this.#o.flushIntervalMs,
      onError: this.#o.onError,
    });
    this.#central = { log, signature };
  }

  /** The site's log: the current one when its settings are unchanged, else a new one. */
  #siteLog(site: SiteConfig, utf8: boolean, cur: Entry | undefined): Entry {
    const lf = site.logFile;
    let format = lf.enumName('logFormat');
    if (format === 'Custom') {
      this.#noticeOnce(
        `Custom:${site.id}`,
        `site '${site.name}' (id ${site.id}): logFile logFormat="Custom" (a custom logging module) is not supported; writing W3C logs instead`,
      );
      format = 'W3C';
    }
    const customDefs = format === 'W3C' ? customFieldDefinitions(lf.child('customFields')) : [];
    const maxCustomFieldLength = lf.child('customFields').num('maxCustomFieldLength');
    const signature = JSON.stringify([
      format,
      site.logFileDirectory,
      site.name,
      lf.num('logExtFileFlags'),
      lf.enumName('period'),
      lf.num('truncateSize'),
      lf.bool('localTimeRollover'),
      lf.bool('logSiteId'),
      lf.bool('enabled'),
      utf8,
      customDefs,
      maxCustomFieldLength,
    ]);
    if (cur !== undefined && cur.signature === signature) return cur;
    const common = {
      directory: site.logFileDirectory,
      siteId: site.id,
      period: lf.enumName('period') as LogFilePeriod,
      truncateSize: lf.num('truncateSize'),
      enabled: lf.bool('enabled'),
      utf8,
      now: this.#o.now,
      flushIntervalMs: this.#o.flushIntervalMs,
      onError: this.#o.onError,
    };
    const log: RequestLogFile =
      format === 'IIS' || format === 'NCSA'
        ? new FixedFormatLogFile({ ...common, format })
        : new W3cLogFile({
            ...common,
            fields: lf.num('logExtFileFlags'),
            localTimeRollover: lf.bool('localTimeRollover'),
            logSiteId: lf.bool('logSiteId'),
            customFields: customDefs.length > 0 ? new CustomLogFields(customDefs, maxCustomFieldLength) : undefined,
          });
    return { log, signature };
  }

  #noticeOnce(key: string, message: string): void {
    if (this.#noticed.has(key)) return;
    this.#noticed.add(key);
    this.#o.notice(message);
  }
}

function customFieldDefinitions(customFields: ConfigElement): CustomFieldDefinition[] {
  return customFields.items.map((add) => ({
    logFieldName: add.str('logFieldName'),
    sourceName: add.str('sourceName'),
    sourceType: add.enumName('sourceType') as CustomFieldSourceType,
  }));
}
