// Amazon ECR data-plane credentials: ecr:GetAuthorizationToken returns base64 `AWS:<password>`, valid for
// 12 hours, for every registry of that region the caller may use. The SDK is imported lazily so that
// non-ECR use never loads it; it honours AWS_ENDPOINT_URL_ECR by itself.
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { CredentialProvider, Credentials } from './auth.ts';
import { RegistryError } from './errors.ts';

const ECR_HOST = /^(\d{12})\.dkr[.-]ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$/;

/** Account and region of an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`), else undefined. */
export function parseEcrHost(registry: string): { accountId: string; region: string } | undefined {
  const match = ECR_HOST.exec(registry.replace(/:443$/, '').toLowerCase());
  return match ? { accountId: match[1]!, region: match[2]! } : undefined;
}

export interface EcrCredentialOptions {
  /** Refresh this long before the token's `expiresAt` (default 15 minutes). */
  expiryMarginMs?: number;
  /** Builds the SDK client for a region (default: `new ECRClient({ region })`). */
  clientFor?: (region: string | undefined) => ECRClient | Promise<ECRClient>;
}

interface CachedCredentials {
  credentials: Promise<Credentials>;
  expiresAt: number;
}

/**
 * Credentials for ECR registries. The region is `region` when given, else parsed from the registry host,
 * else the SDK's default (AWS_REGION). Tokens are cached per region until `expiresAt` minus a margin.
 */
export function ecrCredentialProvider(region?: string, options: EcrCredentialOptions = {}): CredentialProvider {
  const margin = options.expiryMarginMs ?? 15 * 60_000;
  const cache = new Map<string, CachedCredentials>();
  const clientFor = options.clientFor ?? (async (r: string | undefined) => new (await import('@aws-sdk/client-ecr')).ECRClient(r ? { region: r } : {}));

  async function fetchCredentials(registry: string, tokenRegion: string | undefined, entry: CachedCredentials): Promise<Credentials> {
    const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
    let data;
    try {
      const client = await clientFor(tokenRegion);
      data = (await client.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
    } catch (err) {
      const { name, message } = err as Error;
      throw new RegistryError('unauthorized', `registry ${registry}: ECR GetAuthorizationToken failed (${name}: ${String(message).split('\n')[0]})`, undefined, undefined, { cause: err });
    }
    const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new RegistryError('unauthorized', `registry ${registry}: ECR GetAuthorizationToken returned no usable token`);
    entry.expiresAt = (data?.expiresAt ? data.expiresAt.getTime() : Date.now() + 12 * 3600_000) - margin;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }

  return async (registry) => {
    const tokenRegion = region ?? parseEcrHost(registry)?.region;
    const key = tokenRegion ?? '';
    const cached = cache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.credentials;
    // Concurrent callers share one request; a failed one is forgotten so the next call tries again.
    const entry: CachedCredentials = { credentials: Promise.resolve({ username: '', password: '' }), expiresAt: Infinity };
    entry.credentials = fetchCredentials(registry, tokenRegion, entry);
    cache.set(key, entry);
    entry.credentials.catch(() => cache.get(key) === entry && cache.delete(key));
    return entry.credentials;
  };
}
