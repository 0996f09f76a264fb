import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSystem, loadAppHost } from '../config/index.js';
import { keepsEvent, parseStatusCodes, pathMatches, ruleFor, statusMatches, traceRules } from './failed-request-rules.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The effective traceFailedRequests rules of `/` for a config with these <add> elements. */
function rulesOf(adds: string) {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-freb-rules-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'www'));
  const text = `<?xml version="1.0"?>
<configuration>
  <system.applicationHost>
    <applicationPools><add name="P" /></applicationPools>
    <sites>
      <site name="S" id="1">
        <application path="/" applicationPool="P"><virtualDirectory path="/" physicalPath="www" /></application>
        <bindings><binding protocol="http" bindingInformation="*:8080:" /></bindings>
      </site>
    </sites>
  </system.applicationHost>
  <system.webServer>
    <tracing><traceFailedRequests>${adds}</traceFailedRequests></tracing>
  </system.webServer>
</configuration>`;
  const file = join(dir, 'applicationHost.config');
  writeFileSync(file, text);
  const config = new ConfigSystem(loadAppHost(file, text, { systemDrive: dir }), { systemDrive: dir });
  const resolved = config.resolve(1, '/');
  assert.ok(resolved.ok);
  return traceRules(resolved.config.section('system.webServer/tracing/traceFailedRequests'));
}

test('statusCodes: single codes, sub-statuses and ranges, as IIS writes them', () => {
  const { ranges, invalid } = parseStatusCodes('404.2, 500-599,401 ');
  assert.deepEqual(invalid, []);
  assert.equal(statusMatches(ranges, 404, 2), true);
  assert.equal(statusMatches(ranges, 404, 0), false, '404.2 names that sub-status only');
  assert.equal(statusMatches(ranges, 404, 3), false);
  assert.equal(statusMatches(ranges, 500, 0), true);
  assert.equal(statusMatches(ranges, 503, 2), true, 'a range covers every sub-status');
  assert.equal(statusMatches(ranges, 599, 0), true);
  assert.equal(statusMatches(ranges, 600, 0), false);
  assert.equal(statusMatches(ranges, 401, 1), true, 'a bare status covers every sub-status');
  assert.equal(statusMatches(ranges, 200, 0), false);
});

test('statusCodes: entries that are not a status, sub-status or range are reported and left out', () => {
  const { ranges, invalid } = parseStatusCodes('404,abc,599-500,5000,40,200-299');
  assert.deepEqual(invalid, ['abc', '599-500', '5000', '40']);
  assert.equal(ranges.length, 2);
  assert.deepEqual(parseStatusCodes('').ranges, []);
});

test('path: * covers every URL, *.aspx and file names match the last segment, a path with / the whole URL', () => {
  assert.equal(pathMatches('*', '/anything/at/all'), true);
  assert.equal(pathMatches('*.aspx', '/app/Default.ASPX'), true, 'case-insensitive');
  assert.equal(pathMatches('*.aspx', '/app/default.aspx.txt'), false);
  assert.equal(pathMatches('*.aspx', '/app.aspx/x'), false);
  assert.equal(pathMatches('default.htm', '/a/default.htm'), true);
  assert.equal(pathMatches('default.htm', '/a/xdefault.htm'), false);
  assert.equal(pathMatches('/api/*', '/api/users/1'), true);
  assert.equal(pathMatches('/api/*', '/web/api/x'), false);
  assert.equal(pathMatches('a*b*c', 'aXbYc'), true);
  assert.equal(pathMatches('a*b*c', 'aXbY'), false);
});

test('rules compile from configuration: first matching path wins, timeTaken in ms, areas and verbosity', () => {
  const rules = rulesOf(`
    <add path="*.aspx">
      <traceAreas><add provider="WWW Server" areas="Rewrite,StaticFile" verbosity="Verbose" /></traceAreas>
      <failureDefinitions statusCodes="404.2,500-599" timeTaken="00:00:02" />
    </add>
    <add path="*">
      <traceAreas><add provider="ASPNET" areas="Infrastructure" verbosity="Verbose" /><add provider="WWW Server" areas="" verbosity="Warning" /></traceAreas>
      <failureDefinitions statusCodes="404" verbosity="Error" timeTaken="00:01:30" traceAllAfterTimeout="true" />
    </add>`);
  assert.equal(rules.length, 2);
  const aspx = ruleFor(rules, '/shop/cart.aspx')!;
  assert.equal(aspx.path, '*.aspx');
  assert.equal(aspx.timeTakenMs, 2000);
  assert.equal(aspx.failureVerbosity, 0, 'verbosity defaults to Ignore');
  assert.equal(keepsEvent(aspx, 'Rewrite', 5), true);
  assert.equal(keepsEvent(aspx, 'RequestNotifications', 5), false, 'an area not listed is left out');
  assert.equal(keepsEvent(aspx, 'General', 4), true, 'General events do not belong to an area');
  const star = ruleFor(rules, '/index.htm')!;
  assert.equal(star.path, '*');
  assert.equal(star.timeTakenMs, 90_000);
  assert.equal(star.traceAllAfterTimeout, true);
  assert.equal(star.failureVerbosity, 2);
  assert.equal(keepsEvent(star, 'RequestNotifications', 3), true, 'areas="" keeps every area');
  assert.equal(keepsEvent(star, 'RequestNotifications', 5), false, 'above the verbosity');
  assert.equal(keepsEvent(star, 'General', 0), true);
  assert.deepEqual(star.problems, []);
  // The same section object compiles once.
  assert.equal(rulesOf('<add path="*"><failureDefinitions statusCodes="500" /></add>').length, 1);
});

test('a rule without a WWW Server provider keeps its request start and end only; problems are collected', () => {
  const [rule] = rulesOf(`<add path="*" customActionExe="/bin/true"><traceAreas><add provider="WWW Server" areas="Rewrite,Bogus" /></traceAreas><failureDefinitions statusCodes="404,4x4" /></add>`);
  assert.ok(rule);
  assert.equal(rule.www?.verbosity, 3, 'verbosity defaults to Warning');
  assert.equal(rule.problems.length, 3);
  assert.match(rule.problems.join('\n'), /"4x4"/);
  assert.match(rule.problems.join('\n'), /"Bogus"/);
  assert.match(rule.problems.join('\n'), /customActionExe/);
  const [bare] = rulesOf('<add path="*"><failureDefinitions statusCodes="500" /></add>');
  assert.equal(keepsEvent(bare!, 'General', 0), true);
  assert.equal(keepsEvent(bare!, 'General', 4), false);
  assert.equal(keepsEvent(bare!, 'RequestNotifications', 3), false);
});
