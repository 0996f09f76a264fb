#!/usr/bin/env node
// Wharf's command line. The TypeScript sources compile to dist/ on `npm install` (prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('wharf: dist/ is missing; run `npm install` (or `npm run build`) in the Wharf folder first\n');
  process.exit(1);
}
await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
