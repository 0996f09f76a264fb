/**
 * The environment a worker process starts with.
 *
 * IIS starts w3wp.exe with the machine's environment plus the pool's `environmentVariables`
 * (IIS 10 1709+), never with the environment of whoever started the service. Wharf's main process
 * is often started from a root shell or a CI job whose variables (cloud keys, tokens, SSH agent
 * sockets, NOTIFY_SOCKET) are nobody's business in a pool, so a worker gets only:
 *
 *   1. WORKER_ENVIRONMENT_ALLOW_LIST, the LC_* locale family and the OTEL_* OpenTelemetry family,
 *      copied from Wharf's environment when set there (docs/configuration.md, "The worker's
 *      environment");
 *   2. the pool's `environmentVariables`, then APP_POOL_ID;
 *   3. what WAS adds for the launch (identity.ts, server.ts): WHARF_WORKER_UID/GID/USER (read and
 *      removed by the worker before it runs any configuration), USER, LOGNAME and HOME of the
 *      pool's user, TMPDIR and WHARF_RUNTIME_DIR.
 *
 * Anything else an administrator wants a pool to see goes in its `environmentVariables`.
 */

/**
 * Names copied from Wharf's environment. USER, LOGNAME and HOME describe Wharf's own user and are
 * replaced by the pool user's when the worker runs as one (Wharf started as root).
 * WHARF_W3SVC_PARAMETERS stands for IIS's machine-wide W3SVC registry values, which every w3wp
 * reads (SSIEnableCmdDirective: src/modules/server-side-include/w3svc-parameters.ts).
 */
export const WORKER_ENVIRONMENT_ALLOW_LIST: readonly string[] = ['PATH', 'LANG', 'LANGUAGE', 'TZ', 'USER', 'LOGNAME', 'HOME', 'WHARF_W3SVC_PARAMETERS'];

/** Locale categories (LC_ALL, LC_CTYPE, LC_TIME …) are allowed as a family. */
const LOCALE = /^LC_[A-Z_]+$/;

/**
 * OpenTelemetry's standard variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER,
 * OTEL_SERVICE_NAME …) are allowed as a family: a worker exports its own spans (src/tracing/) with
 * the settings the main process has, and a hosted app's own OpenTelemetry SDK finds the same
 * collector. They may carry an exporter's credentials (OTEL_EXPORTER_OTLP_HEADERS), which the
 * pools' code then sees: docs/configuration.md says so.
 */
const OPENTELEMETRY = /^OTEL_[A-Z0-9_]+$/;

/** Used when Wharf itself was started without PATH (`env -i`): what login shells give. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The allow-listed part of `env` (Wharf's environment), the base every worker starts from. */
export function workerBaseEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of WORKER_ENVIRONMENT_ALLOW_LIST) {
    const v = env[name];
    if (v !== undefined) out[name] = v;
  }
  for (const [name, v] of Object.entries(env)) if (v !== undefined && (LOCALE.test(name) || OPENTELEMETRY.test(name))) out[name] = v;
  out['PATH'] ??= DEFAULT_PATH;
  return out;
}

/**
 * `%NAME%` references in applicationHost.config are expanded from Wharf's environment (after the
 * configured variables, src/config/path-map.ts). Workers parse the same text without that
 * environment, so the values of the names the text references, and only those, travel with the
 * configuration (ConfigMessage.variables) and both processes map paths alike. Names already in
 * `configured` are left out: those win, as in the main process.
 */
export function referencedEnvironment(
  text: string,
  configured: Readonly<Record<string, string>>,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const taken = new Set(Object.keys(configured).map((k) => k.toLowerCase()));
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/%([^%\r\n<>"]+)%/g)) {
    const name = m[1]!;
    const key = name.toLowerCase();
    if (taken.has(key) || key === 'systemdrive') continue;
    taken.add(key);
    // As path-map.ts: the name as written, else any case.
    const found = env[name] !== undefined ? name : Object.keys(env).find((k) => k.toLowerCase() === key);
    if (found !== undefined && env[found] !== undefined) out[found] = env[found]!;
  }
  return out;
}
