/**
 * Which admin socket a CLI command talks to, and how to name that server in its messages: the
 * socket of the server started with the same --config (none: the embedded default, whose socket
 * also depends on --port).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { adminSocketCandidates } from '../admin/paths.js';
import { DEFAULT_CONFIG } from '../server.js';

export interface AdminTarget {
  readonly socketPath: string;
  readonly label: string;
}

export function adminTarget(configFileArg: string | undefined, port: number | undefined): AdminTarget {
  const configFile = resolve(configFileArg ?? DEFAULT_CONFIG);
  const candidates = adminSocketCandidates(configFile, { port: configFileArg === undefined ? port : undefined });
  const socketPath = candidates.find((p) => existsSync(p)) ?? candidates[0]!;
  // The embedded default's socket depends on its port: say so when nothing answers.
  const label =
    configFileArg !== undefined
      ? configFile
      : `${configFile} (the embedded default on port ${port ?? 8080}${port === undefined ? '; for a server started with --port, pass the same --port' : ''})`;
  return { socketPath, label };
}
