/**
 * What each IIS status and sub-status code means (reference §4), written for Wharf: the sentence
 * shown under the heading of the detailed error page, plus "most likely causes" and "things you can
 * try". Also the source of the descriptions modules pass to ctx.setStatus.
 */
import { STATUS_CODES } from 'node:http';

export interface StatusText {
  /** Reason phrase ('Not Found'). */
  readonly reason: string;
  /** One sentence: what this status.substatus means. */
  readonly description: string;
  readonly causes: readonly string[];
  readonly tries: readonly string[];
}

interface Entry {
  readonly description: string;
  readonly causes?: readonly string[];
  readonly tries?: readonly string[];
}

const FILTERING_TRY = 'Check the request filtering settings (system.webServer/security/requestFiltering) of the site and its folders.';
const FREB_TRY = 'Turn on failed request tracing for this status code to see which module set it and why.';

/** Per status: used when the exact sub-status has no entry of its own. */
const BY_STATUS: Readonly<Record<number, Entry>> = {
  400: {
    description: 'The server could not understand the request because its syntax is invalid.',
    causes: ['The client sent a malformed request line, header or body.'],
    tries: ['Check the request the client sends, for example with a network trace.'],
  },
  401: {
    description: 'You are not authorized to view this page.',
    causes: ['The page needs authentication and the request carried no acceptable credentials.'],
    tries: ['Check the authentication settings of the site and the credentials the client sends.'],
  },
  403: {
    description: 'Access to this resource is forbidden.',
    causes: ['The server configuration refuses access to this resource.'],
    tries: ['Check the access and authorization settings for this URL.', FREB_TRY],
  },
  404: {
    description: 'The requested resource was not found.',
    causes: ['The file or folder does not exist on the server.', 'The URL contains a typing error.'],
    tries: ['Check that the file exists under the physical path shown below.', 'Check the URL for mistakes.', FREB_TRY],
  },
  405: {
    description: 'The HTTP method used is not allowed for this resource.',
    causes: ['The handler chosen for this URL does not accept the request method.'],
    tries: ['Use a method the handler accepts, or map a handler that accepts this method.'],
  },
  406: {
    description: 'The resource cannot be sent in a media type the client accepts.',
    causes: ['The Accept header of the request excludes the MIME type of the file.'],
    tries: ['Change the Accept header sent by the client, or the mimeMap entry of the file extension.'],
  },
  408: { description: 'The client did not send the whole request in time.' },
  412: {
    description: 'A precondition sent by the client (If-Match or If-Unmodified-Since) did not hold.',
    causes: ['The resource changed since the client last read it.'],
    tries: ['Fetch the resource again and retry the request with the new validators.'],
  },
  413: { description: 'The request body is too large.' },
  416: {
    description: 'None of the byte ranges asked for lies inside the resource.',
    causes: ['The Range header points beyond the end of the file.'],
    tries: ['Ask for ranges inside the current size of the resource.'],
  },
  500: {
    description: 'The server hit an internal error while processing the request.',
    causes: ['A module or an application failed while processing the request.'],
    tries: ['Look at the server log for the error.', FREB_TRY],
  },
  501: { description: 'The server does not implement what the request asks for.' },
  502: {
    description: 'The server, acting as a gateway, received an invalid response from the process behind it.',
    causes: ['The application process crashed, timed out or answered with an invalid response.'],
    tries: ['Look at the server log and the output of the application.'],
  },
  503: {
    description: 'The service is unavailable.',
    causes: ['The application pool is stopped, disabled or overloaded.'],
    tries: ['Check the state of the application pool and the server log.'],
  },
};

/** Per status.substatus (reference §4). */
const BY_SUB_STATUS: Readonly<Record<string, Entry>> = {
  '401.1': { description: 'Logon failed: the credentials sent are not valid.' },
  '401.2': {
    description: 'Logon failed because no enabled authentication method accepted the request.',
    causes: ['No authentication method is enabled, or the client does not support any enabled method.'],
    tries: ['Enable anonymous authentication or another method the client supports.'],
  },
  '401.3': {
    description: 'Access was denied by the file system permissions of the resource.',
    causes: ['The worker process user cannot read the file.'],
    tries: ['Grant the application pool user read access to the file and its folders.'],
  },
  '401.4': { description: 'Access was denied by a filter.' },
  '401.5': { description: 'Access was denied by an ISAPI or CGI application.' },
  '403.1': { description: 'Execute access is forbidden for this folder.' },
  '403.2': { description: 'Read access is forbidden for this folder.' },
  '403.3': { description: 'Write access is forbidden for this folder.' },
  '403.4': { description: 'This resource must be requested over a secure (TLS) connection.' },
  '403.5': { description: 'This resource requires 128-bit TLS encryption.' },
  '403.6': { description: 'The client IP address is not allowed.' },
  '403.7': { description: 'A client certificate is required.' },
  '403.8': { description: 'Access from the client host name is not allowed.' },
  '403.12': { description: 'The client certificate mapping denied access.' },
  '403.13': { description: 'The client certificate has been revoked.' },
  '403.14': {
    description: 'The Web server is configured to not list the contents of this directory.',
    causes: [
      'The URL names a folder, no default document was found in it, and directory browsing is disabled.',
    ],
    tries: [
      'Add a default document to the folder (system.webServer/defaultDocument).',
      'Or enable directory browsing (system.webServer/directoryBrowse enabled="true").',
    ],
  },
  '403.16': { description: 'The client certificate is not trusted or not valid.' },
  '403.17': { description: 'The client certificate has expired or is not yet valid.' },
  '403.18': { description: 'The URL cannot run in the application pool of this request.' },
  '403.19': { description: 'CGI applications cannot run for this client in this application pool.' },
  '403.501': { description: 'Too many concurrent requests from the client IP address.' },
  '403.502': { description: 'Too many requests from the client IP address in a short time.' },
  '403.503': { description: 'The client IP address is denied.' },
  '403.504': { description: 'The client host name is denied.' },
  '404.0': {
    description: 'The file or folder asked for does not exist, or it has been moved or renamed.',
    causes: [
      'There is no file or folder at the physical path shown below.',
      'The URL has a typing error.',
      'A rewrite rule or a custom module changed the path.',
    ],
    tries: [
      'Create the content on the server, or correct the URL.',
      'Check which physical path the URL maps to (shown below).',
      FREB_TRY,
    ],
  },
  '404.1': { description: 'No site is configured for this address and host name.' },
  '404.2': {
    description: 'The ISAPI or CGI restriction list does not allow this program to run.',
    tries: ['Add the program to system.webServer/security/isapiCgiRestriction with allowed="true".'],
  },
  '404.3': {
    description: 'The file cannot be served because its extension has no MIME type mapping.',
    causes: ['The staticContent section has no mimeMap entry for this file name extension.'],
    tries: [
      'Add a mimeMap entry for the extension in system.webServer/staticContent.',
      'If the file should be run rather than sent, map a handler for it.',
    ],
  },
  '404.4': {
    description: 'No handler is configured for this URL and method.',
    tries: ['Add a handler mapping (system.webServer/handlers) that matches this URL.'],
  },
  '404.5': {
    description: 'Request filtering denied the request because the URL contains a denied sequence.',
    causes: ['The URL contains an entry of denyUrlSequences.'],
    tries: [FILTERING_TRY],
  },
  '404.6': {
    description: 'Request filtering denied the request because of its HTTP method.',
    causes: ['The method is denied in the verbs list, or unlisted methods are not allowed.'],
    tries: [FILTERING_TRY],
  },
  '404.7': {
    description: 'Request filtering denied the request because of its file name extension.',
    causes: ['The extension is denied in fileExtensions, or unlisted extensions are not allowed.'],
    tries: [FILTERING_TRY],
  },
  '404.8': {
    description: 'Request filtering denied the request because the URL contains a hidden segment.',
    causes: ['A segment of the URL (such as web.config or bin) is listed in hiddenSegments.'],
    tries: [FILTERING_TRY],
  },
  '404.9': { description: 'The file is hidden and is not served.' },
  '404.10': {
    description: 'Request filtering denied the request because a request header is too long.',
    causes: ['A header is longer than its headerLimits entry allows.'],
    tries: [FILTERING_TRY],
  },
  '404.11': {
    description: 'Request filtering denied the request because the URL is escaped twice.',
    causes: ['The URL still contains an escape sequence (or a plus sign) after it was decoded once, and allowDoubleEscaping is false.'],
    tries: ['Fix the link, or set allowDoubleEscaping="true" if the application needs such URLs.'],
  },
  '404.12': {
    description: 'Request filtering denied the request because the URL contains non-ASCII characters.',
    causes: ['allowHighBitCharacters is false.'],
    tries: [FILTERING_TRY],
  },
  '404.13': {
    description: 'Request filtering denied the request because its body is larger than allowed.',
    causes: ['Content-Length exceeds requestLimits maxAllowedContentLength.'],
    tries: ['Raise maxAllowedContentLength if such uploads are expected.'],
  },
  '404.14': {
    description: 'Request filtering denied the request because the URL is too long.',
    causes: ['The URL path exceeds requestLimits maxUrl.'],
    tries: ['Raise maxUrl if such URLs are expected.'],
  },
  '404.15': {
    description: 'Request filtering denied the request because the query string is too long.',
    causes: ['The query string exceeds requestLimits maxQueryString.'],
    tries: ['Raise maxQueryString if such query strings are expected.'],
  },
  '404.16': { description: 'A WebDAV request reached the static file handler.' },
  '404.17': { description: 'Dynamic content is mapped to the static file handler.' },
  '404.18': {
    description: 'Request filtering denied the request because the query string contains a denied sequence.',
    causes: ['The query string contains an entry of denyQueryStringSequences.'],
    tries: [FILTERING_TRY],
  },
  '404.19': {
    description: 'Request filtering denied the request because of a filtering rule.',
    causes: ['A denied string of a filteringRules rule was found in the request.'],
    tries: [FILTERING_TRY],
  },
  '404.20': {
    description: 'Request filtering denied the request because the URL has too many segments.',
    causes: ['The URL has more segments than the site limits maxUrlSegments allows.'],
    tries: ['Raise maxUrlSegments in the site limits if such URLs are expected.'],
  },
  '405.0': {
    description: 'The HTTP method used is not allowed for this resource.',
    causes: ['The request method is not accepted by the handler chosen for this URL (for example POST to a static file).'],
    tries: ['Use GET or HEAD for static files, or map a handler that accepts this method.'],
  },
  '406.0': BY_STATUS[406] ?? { description: '' },
  '412.0': BY_STATUS[412] ?? { description: '' },
  '500.0': BY_STATUS[500] ?? { description: '' },
  '500.11': { description: 'The application is shutting down.' },
  '500.12': { description: 'The application is restarting.' },
  '500.13': { description: 'The server is too busy.' },
  '500.19': {
    description: 'The page cannot be served because the related configuration data is invalid.',
    causes: [
      'A configuration file is not well-formed XML, or uses an element or attribute the schema does not know.',
      'A section is locked at a parent level, or a collection entry is added twice.',
    ],
    tries: ['Correct the configuration file and line shown below; the change applies without a restart.'],
  },
  '500.21': {
    description: 'The handler for this request names a module that is not registered.',
    causes: ['A handlers entry lists a module in modules="…" that is not installed.'],
    tries: ['Install the module, or correct the handler mapping.'],
  },
  '500.22': { description: 'A system.web/httpModules setting does not apply in integrated pipeline mode.' },
  '500.23': { description: 'A system.web/httpHandlers setting does not apply in integrated pipeline mode.' },
  '500.24': { description: 'A system.web/identity impersonation setting does not apply in integrated pipeline mode.' },
  '500.30': {
    description: 'The Node.js application failed to start.',
    causes: ['The application entry threw an exception while it was loaded.', 'A module the application requires is missing from its node_modules.'],
    tries: ["Read the application's stderr in the pool's log (wharf logs apppool NAME).", 'Run the entry with node directly to see the error.'],
  },
  '500.35': {
    description: 'A second Node.js application cannot be hosted in the same worker process.',
    causes: ['Two handler mappings of one application pool name different entry files.'],
    tries: ['Give each Node.js application an application pool of its own (one application per pool, like ASP.NET Core in-process hosting).'],
  },
  '500.37': {
    description: 'The Node.js application did not start listening within its start-up time limit.',
    causes: ['The application never calls listen() on an http.Server, or waits for something that does not come.'],
    tries: ['Check that the entry creates an http.Server (express, fastify, koa and http.createServer all do) and calls listen().'],
  },
  '500.50': { description: 'A URL rewrite rule failed while processing the request.' },
  '500.51': { description: 'A global URL rewrite rule failed while processing the request.' },
  '500.52': { description: 'An outbound rewrite rule failed while sending the response.' },
  '500.53': { description: 'An outbound rewrite rule failed before the response was cached.' },
  '501.0': { description: 'The request asks for a feature (such as a transfer coding) that is not implemented.' },
  '502.1': { description: 'The CGI application did not finish in time.' },
  '502.2': {
    description: 'The CGI application ended without a complete set of response headers.',
    tries: ['Look at the output of the script; it must print headers and a blank line first.'],
  },
  '502.3': { description: 'The gateway could not connect to the process behind it, or the connection failed.' },
  '502.4': { description: 'No server was available to forward the request to.' },
  '502.5': { description: 'The application process failed to start.' },
  '503.0': { description: 'The application pool is stopped or disabled.' },
  '503.2': {
    description: 'Too many requests are running at once for this application.',
    causes: ['serverRuntime appConcurrentRequestLimit was reached.'],
  },
  '503.3': { description: 'The application request queue is full.' },
  '503.4': { description: 'The FastCGI request queue is full.' },
};

/** Text for a status and sub-status; falls back to the status's general entry. */
export function statusText(status: number, subStatus: number): StatusText {
  const reason = STATUS_CODES[status] ?? 'Error';
  const exact = BY_SUB_STATUS[`${status}.${subStatus}`];
  const general = BY_STATUS[status];
  return {
    reason,
    description: exact?.description ?? general?.description ?? reason + '.',
    causes: exact?.causes ?? general?.causes ?? [],
    tries: exact?.tries ?? general?.tries ?? [FREB_TRY],
  };
}
