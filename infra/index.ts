// `soci-indexer/cdk`: the SociIndexer construct for your own CDK app, and the ready-made stack that this
// repository's `cdk.json` deploys. The function code is the prebuilt asset dist/lambda of this package.
export {
  parseRepositoryFilters,
  type RepositoryFilterEntry,
  SociIndexer,
  SociIndexerConfigError,
  type SociIndexerMetricName,
  type SociIndexerProps,
} from './soci-indexer.ts';
export {
  PLACEHOLDER_REPOSITORY,
  type SociIndexerSettings,
  SociIndexerStack,
  type SociIndexerStackProps,
  settingsFromContext,
} from './stack.ts';
