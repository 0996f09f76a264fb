/**
 * Micro-benchmark: encode the FastCGI start of one PHP request — the ~50 CGI and IIS variables
 * FastCgiModule sends for a browser GET (cgi/environment.ts) as name-value pairs, wrapped in
 * BEGIN_REQUEST, PARAMS and the empty STDIN — and print ns/op.
 * Run: npx tsc -p . && node dist/bench/micro/fastcgi-params.js [iterations]
 */
import { encodePairs, encodeRequestStart } from '../../src/modules/fastcgi/records.js';

const root = '/var/www/shop';
const variables = [
  'GATEWAY_INTERFACE', 'CGI/1.1',
  'SERVER_SOFTWARE', 'Microsoft-IIS/10.0 (Wharf)',
  'SERVER_PROTOCOL', 'HTTP/1.1',
  'SERVER_NAME', 'shop.example.com',
  'SERVER_PORT', '443',
  'SERVER_ADDR', '10.0.0.5',
  'REQUEST_METHOD', 'GET',
  'REQUEST_URI', '/products/list.php?category=7&page=2',
  'QUERY_STRING', 'category=7&page=2',
  'SCRIPT_NAME', '/products/list.php',
  'SCRIPT_FILENAME', `${root}/products/list.php`,
  'PATH_INFO', '',
  'PATH_TRANSLATED', `${root}/products/list.php`,
  'DOCUMENT_ROOT', root,
  'APPL_PHYSICAL_PATH', `${root}/`,
  'REMOTE_ADDR', '203.0.113.9',
  'REMOTE_PORT', '50123',
  'HTTPS', 'off',
  'CONTENT_LENGTH', '',
  'CONTENT_TYPE', '',
  'URL', '/products/list.php',
  'SERVER_PORT_SECURE', '0',
  'REMOTE_HOST', '203.0.113.9',
  'LOCAL_ADDR', '10.0.0.5',
  'INSTANCE_ID', '1',
  'INSTANCE_NAME', 'Shop',
  'APPL_MD_PATH', '/LM/W3SVC/1/ROOT',
  'APP_POOL_ID', 'ShopPool',
  'AUTH_TYPE', '',
  'AUTH_USER', '',
  'AUTH_PASSWORD', '',
  'LOGON_USER', '',
  'REMOTE_USER', '',
  'UNENCODED_URL', '/products/list.php?category=7&page=2',
  'REQUEST_SCHEME', 'http',
  'IIS_UrlRewriteModule', '7,1,1993,2351',
];
const headersFrom = variables.length;
variables.push(
  'HTTP_HOST', 'shop.example.com',
  'HTTP_CONNECTION', 'keep-alive',
  'HTTP_USER_AGENT', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'HTTP_ACCEPT', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'HTTP_ACCEPT_ENCODING', 'gzip, deflate, br',
  'HTTP_ACCEPT_LANGUAGE', 'en-US,en;q=0.9',
  'HTTP_COOKIE', 'PHPSESSID=abc123def456; wp-settings-1=libraryContent%3Dbrowse',
);

const iterations = Number(process.argv[2] ?? 1e6);
let bytes = 0;
const once = (): void => {
  bytes += encodeRequestStart(1, true, encodePairs(variables, headersFrom), true).length;
};
for (let i = 0; i < 50_000; i++) once(); // warm-up
bytes = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) once();
const ns = Number(process.hrtime.bigint() - start);
console.log(`fastcgi-params: ${variables.length / 2} variables, ${bytes / iterations} bytes, ${iterations} iterations: ${(ns / iterations).toFixed(1)} ns/op`);
