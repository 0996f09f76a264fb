/**
 * `system.webServer/security/isapiCgiRestriction` for CGI programs (applicationHost.config only):
 * a program runs when an entry names it with allowed="true"; an entry with allowed="false" refuses
 * it; an unlisted one runs only with notListedCgisAllowed="true". Otherwise IIS answers 404.2.
 *
 * An entry's `path` is what the handler would run: its scriptProcessor string (program and
 * arguments, `%s` included), or the script's own path for a script that runs itself. Both sides
 * are compared after `%VAR%` expansion (the schema's expanded="true") and the path rule, so
 * `C:\Perl\bin\perl.exe "%s" %s` in both places matches; see restrictionKey for case.
 */
import { dirname } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import { parseScriptProcessor, programPath, restrictionKey } from './command-line.js';

export const CGI_RESTRICTION_SECTION = 'system.webServer/security/isapiCgiRestriction';

export interface CompiledRestriction {
  /** restrictionKey → allowed. */
  readonly entries: ReadonlyMap<string, boolean>;
  readonly notListedAllowed: boolean;
}

/** Compiled once per effective section element (the section is AppHostOnly: one per configuration). */
const compiled = new WeakMap<ConfigElement, Map<string, CompiledRestriction>>();

function compile(section: ConfigElement, systemDrive: string): CompiledRestriction {
  const entries = new Map<string, boolean>();
  for (const item of section.items) {
    let key: string;
    try {
      const t = parseScriptProcessor(item.str('path'));
      const baseDir = item.source !== undefined ? dirname(item.source.file) : '/';
      key = restrictionKey(programPath(t.program, { systemDrive, baseDir }), t.args);
    } catch {
      // An entry that names no usable program (an unclosed quote, a UNC path) allows nothing.
      continue;
    }
    // Like the collection itself: the first entry for a key decides.
    if (!entries.has(key)) entries.set(key, item.bool('allowed'));
  }
  return { entries, notListedAllowed: section.bool('notListedCgisAllowed') };
}

export function compiledRestriction(section: ConfigElement, systemDrive: string): CompiledRestriction {
  let perDrive = compiled.get(section);
  if (perDrive === undefined) compiled.set(section, (perDrive = new Map()));
  let c = perDrive.get(systemDrive);
  if (c === undefined) perDrive.set(systemDrive, (c = compile(section, systemDrive)));
  return c;
}

/** Whether isapiCgiRestriction lets the program (its restrictionKey) run. */
export function cgiAllowed(restriction: CompiledRestriction, key: string): boolean {
  return restriction.entries.get(key) ?? restriction.notListedAllowed;
}
