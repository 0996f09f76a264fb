/**
 * The W3SVC registry values ServerSideIncludeModule reads (`HKLM\System\CurrentControlSet\Services\
 * W3SVC\Parameters`). IIS 7+ runs `<!--#exec cmd="…"-->` only when the DWORD SSIEnableCmdDirective
 * is set there (IIS 6 SDK "#exec"; the serverSideInclude reference: otherwise "The CMD option is not
 * enabled for #EXEC calls"). Linux has no registry: as for HTTP.sys's values (WHARF_HTTP_PARAMETERS),
 * the administrator sets it in the environment of `wharf start`, which passes it to every worker:
 *
 *   WHARF_W3SVC_PARAMETERS='SSIEnableCmdDirective=1'
 *
 * Names are registry value names (any case); a value is a DWORD, decimal or 0x hex, non-zero = on.
 * A name or value Wharf does not understand leaves cmd off and is reported in the server log.
 */
export const W3SVC_PARAMETERS_ENV = 'WHARF_W3SVC_PARAMETERS';

export interface W3svcParameters {
  /** SSIEnableCmdDirective: `#exec cmd` may run (still not where ssiExecDisable is true). */
  readonly ssiEnableCmdDirective: boolean;
  /** What could not be understood, one sentence each (empty when all was). */
  readonly problems: readonly string[];
}

const KNOWN = ['SSIEnableCmdDirective'];

export function parseW3svcParameters(text: string | undefined): W3svcParameters {
  const problems: string[] = [];
  let cmd = false;
  let unreadable = false;
  for (const item of (text ?? '').split(/[;,]/)) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const name = (eq === -1 ? item : item.slice(0, eq)).trim();
    const raw = eq === -1 ? '' : item.slice(eq + 1).trim();
    if (name.toLowerCase() !== 'ssienablecmddirective') {
      problems.push(`${W3SVC_PARAMETERS_ENV}: unknown value '${name}' (known: ${KNOWN.join(', ')}); it is ignored`);
      continue;
    }
    const value = /^\d+$/.test(raw) ? Number(raw) : /^0x[0-9a-f]+$/i.test(raw) ? Number.parseInt(raw.slice(2), 16) : Number.NaN;
    if (!(value >= 0 && value <= 0xffffffff)) {
      problems.push(`${W3SVC_PARAMETERS_ENV}: SSIEnableCmdDirective must be a DWORD (0 or 1), not '${raw}'; #exec cmd stays off`);
      unreadable = true;
      continue;
    }
    cmd = value !== 0;
  }
  // A value that could not be read never turns cmd on, whatever came before it.
  return { ssiEnableCmdDirective: cmd && !unreadable, problems };
}
