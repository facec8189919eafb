// RegistryListing over the ECR API: DescribeRepositories and DescribeImages (1000 per page, the most
// ECR allows; DescribeImages gives each tag's digest, so planning needs no manifest request to know it),
// and BatchDeleteImage by tag, which removes only that tag (the image stays while other tags name it).
// The Describe/List rates are unpublished and throttling is common, so every call backs off on
// ThrottlingException and 5xx (the SDK's own retries are off: one policy, counted).
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { RegistryListing, TagRecord } from '../oci/registry.ts';
import type { Target } from '../oci/target.ts';
import { RegistryTarget } from './client.ts';
import { parseEcrHost } from './ecr-credentials.ts';
import { RegistryError, type RegistryErrorKind } from './errors.ts';
import type { RegistryListingOptions } from './listing.ts';

export const ECR_PAGE_SIZE = 1000;

export interface EcrApiListingOptions extends RegistryListingOptions {
  /** The account of the registry (default: from the host, else the caller's). */
  registryId?: string;
  /** An ECR client (default: one for the host's region, SDK retries off). */
  client?: ECRClient;
  /** The Target of a repository (default: a RegistryTarget on `registry`). */
  target?: (repository: string) => Target;
  /** Attempts per call when throttled (default 8) and the first backoff (default 250 ms, doubling, jittered, at most 20 s). */
  attempts?: number;
  backoffBaseMs?: number;
}

const THROTTLING = new Set(['ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailableException']);

export function isThrottling(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return THROTTLING.has(e?.name ?? '') || (e?.$metadata?.httpStatusCode ?? 0) >= 500;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Runs `call`, retrying throttling and 5xx answers with jittered exponential backoff. */
export async function withBackoff<T>(
  call: () => Promise<T>,
  options: { attempts?: number; baseMs?: number; signal?: AbortSignal; onThrottle?: () => void } = {},
): Promise<T> {
  const attempts = options.attempts ?? 8;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isThrottling(err) || attempt >= attempts) throw err;
      options.onThrottle?.();
      const cap = Math.min(20_000, (options.baseMs ?? 250) * 2 ** (attempt - 1));
      await sleep(cap / 2 + Math.random() * (cap / 2), options.signal);
    }
  }
}

export class EcrApiListing implements RegistryListing {
  readonly description: string;
  readonly calls: Record<string, number> = {};
  private readonly registryId: string | undefined;
  private client: Promise<ECRClient> | undefined;
  private readonly targets = new Map<string, Target>();

  readonly deletion = {
    scope: 'tag' as const,
    deleteTag: async (repository: string, tag: string, _digest: string, signal?: AbortSignal): Promise<void> => {
      const { BatchDeleteImageCommand } = await import('@aws-sdk/client-ecr');
      const answer = await this.send(
        'BatchDeleteImage',
        async (client) =>
          client.send(
            new BatchDeleteImageCommand({
              repositoryName: repository,
              imageIds: [{ imageTag: tag }],
              ...(this.registryId && { registryId: this.registryId }),
            }),
          ),
        signal,
      );
      const failure = answer.failures?.find((f) => f.failureCode !== 'ImageNotFound' && f.failureCode !== 'ImageTagDoesNotMatchDigest');
      if (failure)
        throw new RegistryError(
          'failed',
          `ECR BatchDeleteImage ${repository}:${tag}: ${failure.failureCode}: ${failure.failureReason ?? ''}`.trim(),
        );
    },
  };

  constructor(private readonly options: EcrApiListingOptions) {
    this.description = options.registry;
    this.registryId = options.registryId ?? parseEcrHost(options.registry)?.accountId;
    if (options.client) this.client = Promise.resolve(options.client);
  }

  target(repository: string): Target {
    let target = this.targets.get(repository);
    if (!target) {
      target = this.options.target?.(repository) ?? new RegistryTarget({ ...this.options, repository });
      this.targets.set(repository, target);
    }
    return target;
  }

  async *repositories(signal?: AbortSignal): AsyncIterable<string> {
    const { DescribeRepositoriesCommand } = await import('@aws-sdk/client-ecr');
    let nextToken: string | undefined;
    do {
      const page = await this.send(
        'DescribeRepositories',
        (client) =>
          client.send(
            new DescribeRepositoriesCommand({
              maxResults: ECR_PAGE_SIZE,
              ...(nextToken && { nextToken }),
              ...(this.registryId && { registryId: this.registryId }),
            }),
          ),
        signal,
      );
      for (const repository of page.repositories ?? []) if (repository.repositoryName) yield repository.repositoryName;
      nextToken = page.nextToken;
    } while (nextToken);
  }

  async *tags(repository: string, signal?: AbortSignal): AsyncIterable<TagRecord> {
    const { DescribeImagesCommand } = await import('@aws-sdk/client-ecr');
    let nextToken: string | undefined;
    do {
      // ACTIVE images only (the default): archived ones cannot be pulled, so not indexed either.
      const page = await this.send(
        'DescribeImages',
        (client) =>
          client.send(
            new DescribeImagesCommand({
              repositoryName: repository,
              filter: { tagStatus: 'TAGGED' },
              maxResults: ECR_PAGE_SIZE,
              ...(nextToken && { nextToken }),
              ...(this.registryId && { registryId: this.registryId }),
            }),
          ),
        signal,
      );
      for (const image of page.imageDetails ?? []) {
        for (const tag of image.imageTags ?? []) yield { tag, ...(image.imageDigest && { digest: image.imageDigest }) };
      }
      nextToken = page.nextToken;
    } while (nextToken);
  }

  private async send<T>(name: string, call: (client: ECRClient) => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.client ??= (async () => {
      const { ECRClient } = await import('@aws-sdk/client-ecr');
      const region = parseEcrHost(this.options.registry)?.region;
      return new ECRClient({ ...(region && { region }), maxAttempts: 1 });
    })();
    const client = await this.client;
    try {
      return await withBackoff(
        () => {
          this.calls[name] = (this.calls[name] ?? 0) + 1;
          return call(client);
        },
        {
          attempts: this.options.attempts,
          baseMs: this.options.backoffBaseMs,
          signal,
          onThrottle: () => (this.calls[`${name} throttled`] = (this.calls[`${name} throttled`] ?? 0) + 1),
        },
      );
    } catch (err) {
      if (err instanceof RegistryError || signal?.aborted) throw err;
      const { name: type, message } = err as Error;
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const kind: RegistryErrorKind =
        type === 'RepositoryNotFoundException' ? 'not-found' : type === 'AccessDeniedException' ? 'denied' : 'failed';
      throw new RegistryError(
        kind,
        `ECR ${name} failed (${type}: ${String(message).split('\n')[0]})`,
        isThrottling(err) ? 503 : status,
        undefined,
        { cause: err },
      );
    }
  }
}
