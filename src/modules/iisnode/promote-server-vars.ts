/**
 * iisnode's promoteServerVars: the named IIS server variables reach the application as
 * `X-iisnode-<NAME>` request headers (iisnode's own naming), read through the worker's server
 * variables (src/worker/server-variables.ts). A name Wharf cannot compute is sent empty, as IIS
 * returns an unset variable.
 */
import type { HttpContext } from '../../worker/module-api.js';

/** Append [header, value] pairs for the comma-separated variable names in `list`. */
export function promotedServerVariables(ctx: HttpContext, list: string, out: string[]): void {
  for (const raw of list.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const value = ctx.getServerVariable(name);
    // Header values are latin1 on the wire: a non-latin1 user name is sent UTF-8 encoded.
    out.push('X-iisnode-' + name, /[^\x20-\x7e]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1').replace(/[\r\n\0]/g, '') : value);
  }
}
