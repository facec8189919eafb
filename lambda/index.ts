// The package's public API (`import ... from 'soci-indexer'`): build a SOCI index for an image in any
// Target (an OCI registry or a local OCI image layout), or build, read and verify one zTOC. Everything
// else under lambda/ is internal and may change in any release; what is exported here follows SemVer.
export { VERSION } from './version.ts';

// Index building
export { DEFAULT_BUILD_OPTIONS, buildSociIndex } from './soci/build.ts';
export { DEFAULTS } from './soci/defaults.ts';
export {
  SociError,
  type BuildEvent,
  type BuildOptions,
  type BuildResult,
  type BuildStatus,
  type IndexVersion,
  type LayerResult,
  type PlatformResult,
  type TagPolicy,
  type CacheStats,
} from './soci/types.ts';
export { RepositoryZtocCache, cacheTag, type CacheLookup, type CachedZtoc, type ZtocCache, type ZtocCacheKey } from './soci/ztoc-cache.ts';

// Targets: the interface and its implementations
export type { Descriptor, FetchOptions, Platform, Target } from './oci/target.ts';
export { RegistryTarget, type RegistryTargetOptions } from './registry/client.ts';
export type { Credentials } from './registry/auth.ts';
export {
  anonymous,
  chainCredentials,
  defaultCredentialSource,
  explicitCredentials,
  standardCredentialChain,
  type CredentialFunc,
  type CredentialFunc as CredentialProvider,
  type CredentialSource,
} from './registry/credentials.ts';
export { dockerConfigCredentials, dockerConfigSource } from './registry/docker-config.ts';
export { EcrTokens, ecrCredentialSource, parseEcrHost, type EcrCredentialOptions, type EcrToken } from './registry/ecr-credentials.ts';
export { RegistryError, type RegistryErrorKind } from './registry/errors.ts';
export { LayoutError, OciLayoutTarget, type OpenLayoutOptions } from './layout/oci-layout.ts';
export { MemoryTarget } from './memory/memory-target.ts';
export {
  formatReference,
  parseReference,
  registryReferenceTarget,
  type ImageReference,
  type LayoutReference,
  type RegistryReference,
} from './oci/reference.ts';
export { DigestMismatchError, InvalidReferenceError, LimitExceededError, NotFoundError, SociIndexerError, errorKind, type ErrorKind, type TargetFailure } from './oci/errors.ts';

// zTOCs
export {
  DEFAULT_BUILD_TOOL_ID,
  buildZtoc,
  detectFormat,
  type BuildZtocOptions,
  type CompressionChoice,
  type DetectedFormat,
  type ZtocBuildOutcome,
  type ZtocSummary,
} from './ztoc/builder.ts';
export { parseZtoc } from './ztoc/codec.ts';
export { verifyZtoc, type LayerSource, type VerifyReport } from './ztoc/verify/index.ts';
export {
  DEFAULT_SPAN_SIZE,
  UPSTREAM_BUILD_TOOL_ID,
  ZtocError,
  type CompressionAlgorithm,
  type EntryType,
  type FileMetadata,
  type PaxRecord,
  type Ztoc,
} from './ztoc/types.ts';
