/**
 * What `wharf check` and the server's start say about FastCGI in applicationHost.config: server-
 * level handler mappings to FastCgiModule whose scriptProcessor names no `<application>`, and
 * applications whose program cannot be started. Each would otherwise surface only as a 500 on
 * the first PHP request.
 */
import { accessSync, constants } from 'node:fs';
import type { ConfigWarning } from '../../config/config-warnings.js';
import { mapExpandedPath } from '../../config/index.js';
import type { AppHostConfig, ConfigElement } from '../../config/types.js';
import { lookupApplication, parseAddress } from './settings.js';

export function fastCgiWarnings(appHost: AppHostConfig, systemDrive: string): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  const fastCgi = appHost.section('system.webServer/fastCgi');
  const handlers = appHost.section('system.webServer/handlers');
  for (const h of handlers.items) {
    if (!h.str('modules').split(',').some((m) => m.trim().toLowerCase() === 'fastcgimodule')) continue;
    const found = lookupApplication(fastCgi, h.str('scriptProcessor'), systemDrive);
    if (found.error !== undefined && h.source !== undefined) {
      out.push({ code: 'CFG_FASTCGI', kind: 'serving', position: h.source, message: `handler ${h.str('name')}: ${found.error}; requests it maps (path="${h.str('path')}") will get 500.0` });
    }
  }
  for (const app of fastCgi.items) {
    const problem = programProblem(app, systemDrive);
    if (problem !== undefined && app.source !== undefined) out.push({ code: 'CFG_FASTCGI', kind: 'serving', position: app.source, message: problem });
  }
  return out;
}

function programProblem(app: ConfigElement, systemDrive: string): string | undefined {
  const written = app.str('fullPath').trim();
  if (parseAddress(written) !== undefined) return undefined;
  const path = mapExpandedPath(written, { systemDrive, baseDir: '/' });
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const windows = /^[a-z]:|\\/i.test(written);
    return (
      `fastCgi application ${written}: ${code === 'ENOENT' ? `${path} does not exist` : `${path} cannot be run (${code ?? 'error'})`}` +
      (windows ? ' — point fullPath (and the handlers\' scriptProcessor) at the Linux program, e.g. /usr/bin/php-cgi (apt-get install php-cgi)' : '') +
      '; requests for it will get 500.0'
    );
  }
}
