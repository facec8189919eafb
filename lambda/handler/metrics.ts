// CloudWatch metrics (EMF through Powertools). A skipped layer's `reason` dimension is its typed skip
// code (soci/types.ts SKIP_CODE): never free text, which as a dimension would explode cardinality.
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type BuildResult, SKIP_CODE } from '../soci/types.ts';
import { DEFAULT_METRICS_NAMESPACE, METRIC } from './metric-names.ts';

export { DEFAULT_METRICS_NAMESPACE, METRIC };

export function createMetrics(env: Readonly<Record<string, string | undefined>>): Metrics {
  return new Metrics({
    namespace: env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE,
    serviceName: env.POWERTOOLS_SERVICE_NAME || 'soci-indexer',
  });
}

/** Records one invocation's numbers; `flush` writes them (call it once, also on failure). */
export class InvocationMetrics {
  private throttles = 0;

  constructor(private readonly metrics: Metrics) {}

  private countWithReason(name: string, reason: string, value = 1): void {
    const single = this.metrics.singleMetric();
    single.addDimension('reason', reason);
    single.addMetric(name, MetricUnit.Count, value);
  }

  context(fields: Record<string, string | undefined>): void {
    for (const [key, value] of Object.entries(fields)) if (value) this.metrics.addMetadata(key, value);
  }

  imageSkipped(reason: string): void {
    this.countWithReason(METRIC.imagesSkipped, reason);
  }

  imageIndexed(): void {
    this.metrics.addMetric(METRIC.imagesIndexed, MetricUnit.Count, 1);
  }

  imageFailed(kind: 'transient' | 'permanent'): void {
    this.metrics.addMetadata('failure', kind);
    this.metrics.addMetric(METRIC.imagesFailed, MetricUnit.Count, 1);
  }

  build(result: BuildResult): void {
    const layers = result.platforms.flatMap((p) => p.layers);
    this.metrics.addMetric(METRIC.layersIndexed, MetricUnit.Count, layers.filter((l) => l.status === 'indexed').length);
    const skipped = new Map<string, number>();
    for (const layer of layers) {
      if (layer.status !== 'skipped') continue;
      const code = layer.skipCode ?? SKIP_CODE.notIndexed;
      skipped.set(code, (skipped.get(code) ?? 0) + 1);
    }
    for (const [code, count] of skipped) this.countWithReason(METRIC.layersSkipped, code, count);
    this.metrics.addMetric(METRIC.bytesRead, MetricUnit.Bytes, result.bytesRead);
    this.metrics.addMetric(METRIC.ztocBytes, MetricUnit.Bytes, result.ztocBytes);
    if (result.cache) {
      this.metrics.addMetric(METRIC.layersReused, MetricUnit.Count, result.cache.reused);
      this.metrics.addMetric(METRIC.bytesSaved, MetricUnit.Bytes, result.cache.bytesSaved);
      this.metrics.addMetric(METRIC.ztocCacheFailures, MetricUnit.Count, result.cache.failures);
    }
  }

  duration(ms: number): void {
    this.metrics.addMetric(METRIC.durationMs, MetricUnit.Milliseconds, Math.round(ms));
  }

  /** One throttled request; the invocation's count is written once, at flush. */
  throttled(): void {
    this.throttles++;
  }

  flush(): void {
    if (this.throttles > 0) this.metrics.addMetric(METRIC.throttled, MetricUnit.Count, this.throttles);
    this.metrics.publishStoredMetrics();
  }
}
