/**
 * Where certificates come from (main-process role; the listener and the CLI import this, it
 * imports neither): the certificate store, HTTP.sys's SSL bindings table, IIS's Central
 * Certificate Store and the development certificate. docs/configuration.md, "Certificates".
 */
export type { CertificateLookup, CertificateMaterial, SslBindingEntry, TlsLogger } from './tls-types.js';
export { CertificateSource, type CertificateSourceOptions } from './certificate-source.js';
export { CertificateStore, DEFAULT_STORE, canonicalStoreName, type StoredCertificate } from './certificate-store.js';
export { SslBindingTable, IIS_APPID, formatShow, entryFromAddArguments } from './ssl-bindings.js';
export { CentralStoreConfig, centralStoreFileNames, type CentralStoreSettings } from './central-store.js';
export { DEVELOPMENT_FRIENDLY_NAME, developmentCertificate } from './development-certificate.js';
export { readCertificateFile, thumbprintOf, normalizeThumbprint, windowsName, dnsNames, type CertificateBundle } from './certificate-file.js';
export { tlsPaths, type TlsPaths } from './tls-paths.js';
export { AcmeManager, renewalTime, type AcmeManagerOptions, type AcmeHostState } from './acme.js';
export { writePkcs12 } from './pkcs12.js';
