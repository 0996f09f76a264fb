/**
 * HttpLoggingModule (IIS loghttp): decides whether the listener writes this request's W3C line,
 * from system.webServer/httpLogging — `dontLog="true"` suppresses it, `selectiveLogging`
 * LogSuccessful / LogError keeps only statuses below / from 400. The line itself is written by
 * the listener, as HTTP.sys writes it for IIS. (Difference from IIS: without this module in
 * `<modules>` Wharf still logs every request; IIS would log none.)
 */
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';

export const HTTP_LOGGING_SECTION = 'system.webServer/httpLogging';

function sendResponse(ctx: HttpContext): void {
  if (ctx.isChildRequest) return;
  const section = ctx.config.section(HTTP_LOGGING_SECTION);
  if (section.bool('dontLog')) {
    ctx.response.logRequest = false;
    return;
  }
  const mode = section.enumName('selectiveLogging');
  const error = ctx.response.statusCode >= 400;
  if ((mode === 'LogSuccessful' && error) || (mode === 'LogError' && !error)) ctx.response.logRequest = false;
}

export const HttpLoggingModule: ModuleDefinition = {
  name: 'HttpLoggingModule',
  notifications: { SendResponse: sendResponse },
};
