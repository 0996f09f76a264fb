// A second reporter for scripts/run-tests.js: one JSON line per skipped or todo test (file, name,
// reason) and one per line of the run's closing summary ("pass 612" …), so the runner can list
// the skips, check them against test/helpers/skip.ts's CI allow-list and end on the totals.
export default async function* skipReporter(source) {
  for await (const event of source) {
    if (event.type === 'test:pass' || event.type === 'test:fail') {
      const { skip, todo, name, file } = event.data;
      if (skip !== undefined && skip !== false) yield `${JSON.stringify({ kind: 'skip', file, name, reason: skip === true ? '' : String(skip) })}\n`;
      else if (todo !== undefined && todo !== false) yield `${JSON.stringify({ kind: 'todo', file, name, reason: todo === true ? '' : String(todo) })}\n`;
    } else if (event.type === 'test:diagnostic' && /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) [\d.]+$/.test(event.data.message)) {
      yield `${JSON.stringify({ kind: 'total', message: event.data.message })}\n`;
    }
  }
}
