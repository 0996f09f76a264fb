/**
 * Wharf's built-in pipeline modules. They register through the same ModuleDefinition API as
 * third-party modules (STYLE.md §5); `<modules>` and the `<handlers>` entries decide where they run.
 */
import type { ModuleDefinition } from '../worker/module-api.js';
import { AnonymousAuthenticationModule, BasicAuthenticationModule, DigestAuthenticationModule } from './authentication/index.js';
import { DynamicCompressionModule, StaticCompressionModule } from './compression/index.js';
import { CustomErrorModule } from './custom-error/index.js';
import { DefaultDocumentModule } from './default-document/index.js';
import { IisCertificateMappingModule } from './certificate-mapping/index.js';
import { HttpLoggingModule } from './http-logging/index.js';
import { HttpRedirectionModule } from './http-redirect/index.js';
import { DynamicIpRestrictionModule, IpRestrictionModule } from './ip-security/index.js';
import { lazyHandlerModule } from './lazy-module.js';
import { ProtocolSupportModule } from './protocol-support/index.js';
import { RequestFilteringModule } from './request-filtering/index.js';
import { StaticFileModule } from './static-file/index.js';
import { RewriteModule } from './url-rewrite/index.js';
import { UrlAuthorizationModule } from './url-authorization/index.js';
import { WindowsAuthenticationModule } from './windows-authentication/index.js';

export { AnonymousAuthenticationModule, BasicAuthenticationModule, DigestAuthenticationModule, addChallenge } from './authentication/index.js';
export { DynamicCompressionModule, StaticCompressionModule } from './compression/index.js';
export { CustomErrorModule, createCustomErrorModule, preloadBuiltinErrorPages } from './custom-error/index.js';
export type { CustomErrorOptions } from './custom-error/index.js';
export { DefaultDocumentModule } from './default-document/index.js';
export { IisCertificateMappingModule } from './certificate-mapping/index.js';
export { HttpLoggingModule } from './http-logging/index.js';
export { HttpRedirectionModule } from './http-redirect/index.js';
export { DynamicIpRestrictionModule, IpRestrictionModule } from './ip-security/index.js';
export { ProtocolSupportModule } from './protocol-support/index.js';
export { RequestFilteringModule, REMOVE_SERVER_HEADER_ITEM } from './request-filtering/index.js';
export { StaticFileModule } from './static-file/index.js';
export { RewriteModule } from './url-rewrite/index.js';
export { UrlAuthorizationModule } from './url-authorization/index.js';
export { WindowsAuthenticationModule } from './windows-authentication/index.js';
export { statusText } from './sub-status.js';
export type { StatusText } from './sub-status.js';

/*
 * Handler-only modules that most pools never run, imported on the first request mapped to them
 * (lazy-module.ts): their code, and what it pulls in (child processes, node:https, the SSI
 * parser), costs an idle worker nothing until then. Import them from their folders directly.
 */
const DirectoryListingModule = lazyHandlerModule({
  name: 'DirectoryListingModule',
  load: async () => (await import('./directory-listing/index.js')).DirectoryListingModule,
});
const ServerSideIncludeModule = lazyHandlerModule({
  name: 'ServerSideIncludeModule',
  load: async () => (await import('./server-side-include/index.js')).ServerSideIncludeModule,
});
const CgiModule = lazyHandlerModule({ name: 'CgiModule', load: async () => (await import('./cgi/index.js')).CgiModule });
const FastCgiModule = lazyHandlerModule({ name: 'FastCgiModule', load: async () => (await import('./fastcgi/index.js')).FastCgiModule });
const IisNodeModule = lazyHandlerModule({ name: 'iisnode', load: async () => (await import('./iisnode/index.js')).IisNodeModule });

/** In the relative order of IIS's shipped `<modules>` list. */
export const BUILTIN_MODULES: readonly ModuleDefinition[] = [
  HttpLoggingModule,
  DynamicCompressionModule,
  StaticCompressionModule,
  DefaultDocumentModule,
  DirectoryListingModule,
  ProtocolSupportModule,
  HttpRedirectionModule,
  ServerSideIncludeModule,
  StaticFileModule,
  AnonymousAuthenticationModule,
  UrlAuthorizationModule,
  BasicAuthenticationModule,
  WindowsAuthenticationModule,
  DigestAuthenticationModule,
  IisCertificateMappingModule,
  IpRestrictionModule,
  DynamicIpRestrictionModule,
  RequestFilteringModule,
  CustomErrorModule,
  CgiModule,
  FastCgiModule,
  RewriteModule,
  IisNodeModule,
];
