/**
 * Wharf's built-in pipeline modules. They register through the same ModuleDefinition API as
 * third-party modules (STYLE.md §5); `<modules>` and the `<handlers>` entries decide where they run.
 */
import type { ModuleDefinition } from '../worker/module-api.js';
import { AnonymousAuthenticationModule, BasicAuthenticationModule, DigestAuthenticationModule } from './authentication/index.js';
import { CgiModule } from './cgi/index.js';
import { DynamicCompressionModule, StaticCompressionModule } from './compression/index.js';
import { CustomErrorModule } from './custom-error/index.js';
import { DefaultDocumentModule } from './default-document/index.js';
import { DirectoryListingModule } from './directory-listing/index.js';
import { FastCgiModule } from './fastcgi/index.js';
import { IisCertificateMappingModule } from './certificate-mapping/index.js';
import { HttpLoggingModule } from './http-logging/index.js';
import { HttpRedirectionModule } from './http-redirect/index.js';
import { IisNodeModule } from './iisnode/index.js';
import { DynamicIpRestrictionModule, IpRestrictionModule } from './ip-security/index.js';
import { ProtocolSupportModule } from './protocol-support/index.js';
import { RequestFilteringModule } from './request-filtering/index.js';
import { ServerSideIncludeModule } from './server-side-include/index.js';
import { StaticFileModule } from './static-file/index.js';
import { RewriteModule } from './url-rewrite/index.js';
import { UrlAuthorizationModule } from './url-authorization/index.js';
import { WindowsAuthenticationModule } from './windows-authentication/index.js';

export { AnonymousAuthenticationModule, BasicAuthenticationModule, DigestAuthenticationModule, addChallenge } from './authentication/index.js';
export { CgiModule } from './cgi/index.js';
export { DynamicCompressionModule, StaticCompressionModule } from './compression/index.js';
export { CustomErrorModule, createCustomErrorModule, preloadBuiltinErrorPages } from './custom-error/index.js';
export type { CustomErrorOptions } from './custom-error/index.js';
export { DefaultDocumentModule } from './default-document/index.js';
export { DirectoryListingModule } from './directory-listing/index.js';
export { FastCgiModule } from './fastcgi/index.js';
export { IisCertificateMappingModule } from './certificate-mapping/index.js';
export { HttpLoggingModule } from './http-logging/index.js';
export { HttpRedirectionModule } from './http-redirect/index.js';
export { IisNodeModule } from './iisnode/index.js';
export { DynamicIpRestrictionModule, IpRestrictionModule } from './ip-security/index.js';
export { ProtocolSupportModule } from './protocol-support/index.js';
export { RequestFilteringModule, REMOVE_SERVER_HEADER_ITEM } from './request-filtering/index.js';
export { ServerSideIncludeModule } from './server-side-include/index.js';
export { StaticFileModule } from './static-file/index.js';
export { RewriteModule } from './url-rewrite/index.js';
export { UrlAuthorizationModule } from './url-authorization/index.js';
export { WindowsAuthenticationModule } from './windows-authentication/index.js';
export { statusText } from './sub-status.js';
export type { StatusText } from './sub-status.js';

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
