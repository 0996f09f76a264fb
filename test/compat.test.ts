/**
 * Real-world IIS configuration files (../shared/compat, see SOURCES.md there) must load:
 * applicationHost.config files through loadAppHost, web.config files as the web.config of a site
 * root, schema files as XML. Sections Wharf does not implement are reported, never fatal; this test
 * prints them per file. It also checks that Wharf's schema table matches IIS_schema.xml.
 */
import { compileMaps, compileRules } from '../src/modules/url-rewrite/rules.js';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigSystem, loadAppHost, loadAppHostFile, SECTION_TABLE, SECTIONS } from '../src/config/index.js';
import type { SectionDef, UnsupportedUse } from '../src/config/index.js';
import type { AttributeDef, CollectionDef, ElementDef, SchemaDef } from '../src/config/schema.js';
import { attributeOf, parseXml } from '../src/config/xml-document.js';
import { needs, pathExists } from './helpers/skip.js';
import type { XmlElement } from '../src/config/xml-document.js';

// Compiled to dist/test/compat.test.js: the repository root is two folders up.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const compatDir = resolve(repoRoot, '../shared/compat');
const defaultAppHost = join(repoRoot, 'assets/default/applicationHost.config');

const temp = mkdtempSync(join(tmpdir(), 'wharf-compat-'));
after(() => rmSync(temp, { recursive: true, force: true }));

function show(file: string, uses: readonly UnsupportedUse[]): void {
  const list = uses.length === 0 ? '(none)' : uses.map((u) => `${u.section} (line ${u.position.line})`).join(', ');
  console.log(`[compat] ${file}: unsupported sections: ${list}`);
}

function checkReports(uses: readonly UnsupportedUse[], file: string): void {
  for (const u of uses) {
    assert.equal(u.position.file, file, `${u.section} names its file`);
    assert.ok(u.position.line > 0, `${u.section} has a line`);
  }
}

/** `<a><b><c /></b></a>` for the paths 'a/b/c', … (one tree for all paths). */
function sectionsXml(paths: readonly string[]): string {
  interface Node {
    children: Map<string, Node>;
  }
  const root: Node = { children: new Map() };
  for (const p of paths) {
    let n = root;
    for (const part of p.split('/')) {
      let c = n.children.get(part);
      if (!c) n.children.set(part, (c = { children: new Map() }));
      n = c;
    }
  }
  const render = (n: Node): string => [...n.children].map(([name, c]) => (c.children.size ? `<${name}>${render(c)}</${name}>` : `<${name} />`)).join('');
  return render(root);
}

/**
 * The site for web.config files: Wharf's default applicationHost.config, pointed at a temporary
 * folder, with every section a web.config may hold delegated to the site (IIS Manager's
 * "Feature Delegation: Read/Write", which these files' hosts grant: the ANCM file even says
 * "THE HOST MUST PROVIDE AUTHENTICATION").
 */
function compatSite(): { appHostText: string; siteDir: string } {
  const siteDir = join(temp, 'site');
  mkdirSync(siteDir, { recursive: true });
  const delegated = [...SECTIONS.values()].filter((s) => s.overrideModeDefault === 'Deny' && s.allowDefinition !== 'AppHostOnly').map((s) => s.path);
  const text = readFileSync(defaultAppHost, 'utf8')
    .replace('physicalPath="%WHARF_WWWROOT%"', `physicalPath="${siteDir}"`)
    // These files write their own compression type lists (`<add mimeType="text/*"/>`): they were
    // made for servers whose applicationHost.config has none, which a duplicate key would make 500.19.
    .replace(/<httpCompression[\s\S]*?<\/httpCompression>/, '')
    .replace('</configuration>', `<location path="Default Web Site" overrideMode="Allow">${sectionsXml(delegated)}</location>\n</configuration>`);
  return { appHostText: text, siteDir };
}

function locationPaths(root: XmlElement): string[] {
  const out: string[] = [];
  for (const c of root.children) {
    const p = c.name === 'location' ? attributeOf(c, 'path')?.value : undefined;
    if (p && p !== '.') out.push(p);
  }
  return out;
}

const present = existsSync(compatDir);
const files = present ? readdirSync(compatDir).sort() : [];

describe('compat: real IIS configuration files', () => {
  if (!present) {
    it('has the compat folder', (t) => {
      needs(t, pathExists(compatDir, 'the real IIS configuration files: the real-world configuration tests did NOT run'));
    });
    return;
  }

  it('finds files to check', () => {
    assert.ok(files.some((f) => f.endsWith('.web.config')));
    assert.ok(files.some((f) => f.endsWith('.config') && !f.endsWith('.web.config')));
    // Anything else is documentation (SOURCES.md says where the files come from), not a file left unchecked.
    assert.deepEqual(files.filter((f) => !/\.(config|xml|md)$/.test(f)), []);
  });

  for (const name of files) {
    const file = join(compatDir, name);
    if (name.endsWith('.web.config')) {
      it(`${name} works as a site's web.config`, () => {
        const { appHostText, siteDir } = compatSite();
        const webConfig = join(siteDir, 'web.config');
        writeFileSync(webConfig, readFileSync(file));
        const appHost = loadAppHost(join(temp, 'applicationHost.config'), appHostText, { systemDrive: join(temp, 'c') });
        const reports: UnsupportedUse[] = [];
        const system = new ConfigSystem(appHost, { systemDrive: join(temp, 'c'), onUnsupported: (u) => reports.push(u) });
        const urls = ['/', ...locationPaths(parseXml(file, readFileSync(file, 'utf8')).root).map((p) => '/' + p)];
        for (const url of urls) {
          const r = system.resolve(1, url);
          assert.ok(r.ok, `${url}: ${r.ok ? '' : r.error.describe()}`);
          // The site really is the folder holding the file under test.
          assert.ok(r.config.physicalPath.startsWith(siteDir), r.config.physicalPath);
          // Its URL Rewrite rules compile (patterns, substitutions, maps, actions).
          const maps = compileMaps(r.config.section('system.webServer/rewrite/rewriteMaps'));
          const rules = compileRules(r.config.section('system.webServer/rewrite/rules'), r.config, maps);
          assert.ok(Array.isArray(rules), `${url}: ${(rules as { error?: string }).error}`);
        }
        const own = reports.filter((u) => u.position.file === webConfig);
        show(name, own);
        checkReports(own, webConfig);
      });
    } else if (name.endsWith('.config')) {
      it(`${name} loads as applicationHost.config`, () => {
        const appHost = loadAppHostFile(file, { systemDrive: join(temp, 'c') });
        assert.ok(appHost.sites.length > 0);
        show(name, appHost.unsupported);
        checkReports(appHost.unsupported, file);
        // Every site's root resolves too (merging the file's <location>s for it).
        const system = new ConfigSystem(appHost, { systemDrive: join(temp, 'c') });
        for (const site of appHost.sites) {
          const r = system.resolve(site.id, '/');
          assert.ok(r.ok, `${site.name}: ${r.ok ? '' : r.error.describe()}`);
        }
      });
    } else if (name.endsWith('.xml')) {
      it(`${name} is well-formed XML`, () => {
        assert.equal(parseXml(file, readFileSync(file, 'utf8')).root.name, 'configSchema');
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// The schema table against IIS_schema.xml

function describeXmlAttribute(a: XmlElement): string {
  const get = (n: string): string | undefined => attributeOf(a, n)?.value;
  const values = a.children.filter((c) => c.name === 'enum' || c.name === 'flag').map((c) => `${attributeOf(c, 'name')!.value}=${attributeOf(c, 'value')!.value}`);
  return JSON.stringify({
    name: get('name'),
    type: get('type'),
    default: get('defaultValue'),
    required: get('required') === 'true',
    key: get('isUniqueKey') === 'true' ? 'unique' : get('isCombinedKey') === 'true' ? 'combined' : undefined,
    caseSensitive: get('caseSensitive') === 'true',
    expanded: get('expanded') === 'true',
    encrypted: get('encrypted') === 'true',
    timeSpanFormat: get('timeSpanFormat'),
    validation: get('validationType') ? [get('validationType'), get('validationParameter') || undefined].filter((x) => x !== undefined) : undefined,
    values: values.length ? values : undefined,
  });
}

function describeDefAttribute(a: AttributeDef): string {
  return JSON.stringify({
    name: a.name,
    type: a.type,
    default: a.default,
    required: a.required === true,
    key: a.key,
    caseSensitive: a.caseSensitive === true,
    expanded: a.expanded === true,
    encrypted: a.encrypted === true,
    timeSpanFormat: a.timeSpanFormat,
    validation: a.validation ? [...a.validation] : undefined,
    values: a.values ? Object.entries(a.values).map(([n, v]) => `${n}=${v}`) : undefined,
  });
}

function describeXmlBody(el: XmlElement): string[] {
  const out: string[] = [];
  for (const c of el.children) {
    if (c.name === 'attribute') out.push(describeXmlAttribute(c));
    else if (c.name === 'element') {
      out.push(`element ${attributeOf(c, 'name')!.value} default=${attributeOf(c, 'isCollectionDefault')?.value === 'true'} {`, ...describeXmlBody(c), '}');
    } else if (c.name === 'collection') {
      const g = (n: string): string => attributeOf(c, n)?.value ?? '';
      out.push(`collection add=${g('addElement')} remove=${g('removeElement')} clear=${g('clearElement')} default=${g('defaultElement')} mergeAppend=${g('mergeAppend') || 'true'} dup=${g('allowDuplicates') || 'false'} {`, ...describeXmlBody(c), '}');
    }
  }
  return out;
}

/** Elements IIS added after the IIS_schema.xml in ../shared/compat (site hsts: IIS 10 1709). */
const NEWER_THAN_SHIPPED_SCHEMA: ReadonlySet<string> = new Set(['hsts']);

function describeDefBody(body: readonly SchemaDef[]): string[] {
  const out: string[] = [];
  for (const d of body) {
    if (d.kind === 'attribute') out.push(describeDefAttribute(d));
    else if (d.kind === 'element' && NEWER_THAN_SHIPPED_SCHEMA.has((d as ElementDef).name)) continue;
    else if (d.kind === 'element') out.push(`element ${(d as ElementDef).name} default=${d.isCollectionDefault} {`, ...describeDefBody(d.body), '}');
    else {
      const o = (d as CollectionDef).options;
      out.push(`collection add=${o.add} remove=${o.remove ?? ''} clear=${o.clear ?? ''} default=${o.defaultElement ?? ''} mergeAppend=${o.mergeAppend ?? true} dup=${o.allowDuplicates ?? false} {`, ...describeDefBody(d.body), '}');
    }
  }
  return out;
}

describe('compat: the schema table is IIS_schema.xml', () => {
  const schemaFile = join(compatDir, 'iis10-IIS_schema.xml');
  it('matches every implemented section attribute by attribute', (t) => {
    if (!needs(t, pathExists(schemaFile, 'IIS\'s own schema: the schema transcription is NOT checked'))) return;
    const root = parseXml(schemaFile, readFileSync(schemaFile, 'utf8')).root;
    const xmlSections = new Map(root.children.filter((c) => c.name === 'sectionSchema').map((c) => [attributeOf(c, 'name')!.value, c]));
    for (const def of SECTION_TABLE as readonly SectionDef[]) {
      if (def.schemaFile !== undefined) continue; // a module's own schema (iisnode, URL Rewrite), not IIS's
      const xml = xmlSections.get(def.path);
      assert.ok(xml, `${def.path} is in IIS_schema.xml`);
      assert.deepEqual(describeDefBody(def.body), describeXmlBody(xml), def.path);
    }
  });

  it('matches URL Rewrite\'s sections against rewrite_schema.xml', (t) => {
    const rewriteSchema = join(compatDir, 'iis10-rewrite_schema.xml');
    if (!needs(t, pathExists(rewriteSchema, 'URL Rewrite\'s schema: its transcription is NOT checked'))) return;
    const root = parseXml(rewriteSchema, readFileSync(rewriteSchema, 'utf8')).root;
    const xmlSections = new Map(root.children.filter((c) => c.name === 'sectionSchema').map((c) => [attributeOf(c, 'name')!.value, c]));
    const rewrite = (SECTION_TABLE as readonly SectionDef[]).filter((d) => d.schemaFile === 'rewrite_schema.xml');
    assert.equal(rewrite.length, 4);
    for (const def of rewrite) {
      const xml = xmlSections.get(def.path);
      assert.ok(xml, `${def.path} is in rewrite_schema.xml`);
      assert.deepEqual(describeDefBody(def.body), describeXmlBody(xml), def.path);
    }
  });
});
