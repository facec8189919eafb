// The package's public API (`import ... from 'soci-indexer'`): build a SOCI index for an image in any
// Target (an OCI registry or a local OCI image layout), or build, read and verify one zTOC. Everything
// else under lambda/ is internal and may change in any release; what is exported here follows SemVer.

export { LayoutError, OciLayoutTarget, type OpenLayoutOptions } from './layout/oci-layout.ts';
export { MemoryTarget } from './memory/memory-target.ts';
export {
  DigestMismatchError,
  type ErrorKind,
  errorKind,
  InvalidReferenceError,
  LimitExceededError,
  NotFoundError,
  SociIndexerError,
  type TargetFailure,
} from './oci/errors.ts';
export {
  formatReference,
  type ImageReference,
  type LayoutReference,
  parseReference,
  type RegistryReference,
  registryReferenceTarget,
} from './oci/reference.ts';
// Targets: the interface and its implementations
export type { Descriptor, FetchOptions, Platform, Target } from './oci/target.ts';
export type { Credentials } from './registry/auth.ts';
export { RegistryTarget, type RegistryTargetOptions } from './registry/client.ts';
export {
  anonymous,
  type CredentialFunc,
  type CredentialFunc as CredentialProvider,
  type CredentialSource,
  chainCredentials,
  defaultCredentialSource,
  explicitCredentials,
  standardCredentialChain,
} from './registry/credentials.ts';
export { dockerConfigCredentials, dockerConfigSource } from './registry/docker-config.ts';
export { type EcrCredentialOptions, type EcrToken, EcrTokens, ecrCredentialSource, parseEcrHost } from './registry/ecr-credentials.ts';
export { RegistryError, type RegistryErrorKind } from './registry/errors.ts';
// Index building
export { buildSociIndex, DEFAULT_BUILD_OPTIONS } from './soci/build.ts';
export { DEFAULTS } from './soci/defaults.ts';
export {
  type BuildEvent,
  type BuildOptions,
  type BuildResult,
  type BuildStatus,
  type CacheStats,
  type IndexVersion,
  type LayerResult,
  type PlatformResult,
  SKIP_CODE,
  type SkipCode,
  SociError,
  type TagPolicy,
} from './soci/types.ts';
export { type CachedZtoc, type CacheLookup, cacheTag, RepositoryZtocCache, type ZtocCache, type ZtocCacheKey } from './soci/ztoc-cache.ts';
export { VERSION } from './version.ts';

// zTOCs
export {
  type BuildZtocOptions,
  buildZtoc,
  type CompressionChoice,
  DEFAULT_BUILD_TOOL_ID,
  type DetectedFormat,
  detectFormat,
  type ZtocBuildOutcome,
  type ZtocSummary,
} from './ztoc/builder.ts';
export { parseZtoc } from './ztoc/codec.ts';
export {
  type CompressionAlgorithm,
  DEFAULT_SPAN_SIZE,
  type EntryType,
  type FileMetadata,
  type PaxRecord,
  UPSTREAM_BUILD_TOOL_ID,
  type Ztoc,
  ZtocError,
} from './ztoc/types.ts';
export { type LayerSource, type VerifyReport, verifyZtoc } from './ztoc/verify/index.ts';
