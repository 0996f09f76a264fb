/**
 * The configuration system's public face: applicationHost.config + web.config merged the IIS
 * way. The listener, WAS and workers use only what is exported here (STYLE.md §1, §12).
 *
 *   const appHost = loadAppHostFile('/etc/wharf/applicationHost.config', { systemDrive: '/srv/wharf' });
 *   const config = new ConfigSystem(appHost, { systemDrive: '/srv/wharf', onUnsupported: log });
 *   const r = config.resolve(1, '/app/index.html');
 *   if (!r.ok) serve500_19(r.error); else r.config.section('system.webServer/staticContent').items…
 *
 * Values of expanded="true" attributes come back with %VAR% already expanded; turn a path-valued
 * one into a Linux path with resolvePathAttribute (or mapExpandedPath).
 */
export type {
  AppHostConfig,
  AppPoolConfig,
  ApplicationConfig,
  BindingConfig,
  ConfigElement,
  ConfigValue,
  PathMapOptions,
  ResolveResult,
  ResolvedConfig,
  SiteConfig,
  UnsupportedUse,
  VirtualDirectoryConfig,
} from './types.js';
export { loadAppHost, loadAppHostFile, parseBindingInformation, readConfigText, siteLevelSection } from './application-host.js';
export type { LoadAppHostOptions, SiteLevelSection } from './application-host.js';
export { ConfigSystem } from './config-system.js';
export { appHostWarnings, describeWarning, FOREIGN_NOT_ENFORCED, notEnforcedWarnings, servingWarnings, sortWarnings, warningKey } from './config-warnings.js';
export type { ConfigWarning, ConfigWarningCode } from './config-warnings.js';
export { scanSiteConfigs } from './config-scan.js';
export type { ScanOptions, ScanResult } from './config-scan.js';
export type { ConfigSystemOptions } from './config-system.js';
export { expandVariables, mapExpandedPath, mapWindowsPath } from './path-map.js';
export { resolvePathAttribute, SECTION_LOCKED_MESSAGE } from './merge.js';
export { getSectionSchema, SECTION_TABLE, SECTIONS } from './schema.js';
export type {
  AllowDefinition,
  AttributeSchema,
  AttributeType,
  CollectionSchema,
  ElementSchema,
  NotEnforced,
  OverrideModeDefault,
  SectionDef,
  SectionSchema,
  TimeSpanFormat,
  ValidationType,
} from './schema.js';
