/**
 * Micro-benchmark: parse a typical ~400-byte browser GET 1e6 times and print ns/op.
 * Run: npx tsc -p . && node dist/bench/micro/http-parser.js [iterations]
 */
import { DEFAULT_PARSER_LIMITS, RequestParser, type ParserSink, type RequestHead } from '../../src/listener/http-parser.js';

const request = Buffer.from(
  'GET /products/list.aspx?category=7&page=2 HTTP/1.1\r\n' +
    'Host: shop.example.com\r\n' +
    'Connection: keep-alive\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n' +
    'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\n' +
    'Cookie: ASP.NET_SessionId=abc123def456\r\n' +
    '\r\n',
  'latin1',
);

let heads = 0;
let lastHead: RequestHead | undefined;
const sink: ParserSink = {
  onRequestHead(head) {
    heads++;
    lastHead = head;
  },
  onBody() {},
  onRequestEnd() {},
  onError(err) {
    throw err;
  },
};

const iterations = Number(process.argv[2] ?? 1e6);
const parser = new RequestParser(DEFAULT_PARSER_LIMITS, sink);
for (let i = 0; i < 50_000; i++) parser.execute(request); // warm-up
heads = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < iterations; i++) parser.execute(request);
const ns = Number(process.hrtime.bigint() - start);
if (heads !== iterations || lastHead === undefined) throw new Error('parser did not emit every request');
console.log(`http-parser: ${request.length}-byte GET, ${iterations} iterations: ${(ns / iterations).toFixed(1)} ns/op`);
