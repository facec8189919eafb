// The metric namespace and names the handler emits, without the Powertools runtime: the CDK construct
// reads them to build its alarms and metric helpers, and must not load (or bundle) Powertools for that.
export const DEFAULT_METRICS_NAMESPACE = 'SociIndexer';

export const METRIC = {
  imagesIndexed: 'ImagesIndexed',
  imagesSkipped: 'ImagesSkipped',
  imagesFailed: 'ImagesFailed',
  layersIndexed: 'LayersIndexed',
  layersSkipped: 'LayersSkipped',
  bytesRead: 'BytesRead',
  ztocBytes: 'ZtocBytes',
  durationMs: 'DurationMs',
  layersReused: 'LayersReused',
  bytesSaved: 'BytesSaved',
  ztocCacheFailures: 'ZtocCacheFailures',
  /** Registry or ECR API requests answered "slow down" (429, ThrottlingException), retried or not. */
  throttled: 'Throttled',
} as const;

/** The scheduled sync's metrics: planned items per `action` dimension, invocations sent, failures. */
export const SYNC_METRIC = {
  items: 'SyncItems',
  invocations: 'SyncInvocations',
  failures: 'SyncFailures',
} as const;
