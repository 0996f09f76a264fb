/**
 * The bounded load client for integration tests. Its one source is bench/load-client.ts, so
 * `npm run bench` and the tests count requests the same way.
 */
export { runLoad, ResponseParser, type LoadOptions, type LoadResult } from '../../bench/load-client.js';
