// Amazon ECR data-plane credentials, shared by the CLI (a credential source for ECR hosts) and the Lambda
// handler (which also takes the registry address from the answer). ecr:GetAuthorizationToken returns
// base64 `AWS:<password>`, valid for 12 hours for every registry of that region the caller may use, and
// `proxyEndpoint`, the caller's own registry. The SDK is imported lazily so that non-ECR use never loads
// it; it honours AWS_ENDPOINT_URL_ECR by itself (which is how tests point it at a loopback fake).
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { Credentials } from './auth.ts';
import type { CredentialSource } from './credentials.ts';
import { RegistryError } from './errors.ts';

const ECR_HOST = /^(\d{12})\.dkr[.-]ecr(?:-fips)?\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|on\.aws)$/;

/** Account and region of an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`, FIPS, dual-stack, China), else undefined. */
export function parseEcrHost(registry: string): { accountId: string; region: string } | undefined {
  const match = ECR_HOST.exec(registry.replace(/:443$/, '').toLowerCase());
  return match ? { accountId: match[1]!, region: match[2]! } : undefined;
}

/**
 * The one refresh rule: a token is reused while it stays valid this long beyond the moment the caller
 * needs it until (now, or a Lambda invocation's deadline); otherwise a new one is asked for.
 */
export const ECR_TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** ECR tokens last 12 hours; assumed when an answer carries no expiry. */
const TOKEN_LIFETIME_MS = 12 * 3600_000;

export interface EcrToken {
  credentials: Credentials;
  /** `proxyEndpoint`: the caller's registry, e.g. `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  endpoint?: URL;
  /** Epoch ms at which the credentials stop working. */
  expiresAt: number;
}

/** GetAuthorizationToken failed or answered nothing usable; `cause` is the SDK's error when there is one. */
export class EcrTokenError extends Error {
  override readonly name = 'EcrTokenError';
}

export interface EcrTokensOptions {
  /** The SDK client for a region (undefined = the SDK's default region). Default: `new ECRClient({ region })`. */
  clientFor?: (region: string | undefined) => ECRClient | Promise<ECRClient>;
  /** The clock (tests inject one). */
  now?: () => number;
}

interface CacheEntry {
  token: Promise<EcrToken>;
  /** Infinity while in flight, so concurrent callers share one request. */
  expiresAt: number;
}

/** ECR tokens per region, cached under the one refresh rule. */
export class EcrTokens {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly clientFor: (region: string | undefined) => ECRClient | Promise<ECRClient>;
  private readonly now: () => number;

  constructor(options: EcrTokensOptions = {}) {
    this.clientFor = options.clientFor ?? (async (region) => new (await import('@aws-sdk/client-ecr')).ECRClient(region ? { region } : {}));
    this.now = options.now ?? Date.now;
  }

  /** A token of `region` valid at least until `validUntil` (epoch ms, default now) plus the margin. */
  token(region?: string, validUntil?: number): Promise<EcrToken> {
    const key = region ?? '';
    const cached = this.cache.get(key);
    if (cached && cached.expiresAt - ECR_TOKEN_REFRESH_MARGIN_MS > Math.max(this.now(), validUntil ?? 0)) return cached.token;
    const entry: CacheEntry = { token: this.fetch(region), expiresAt: Infinity };
    this.cache.set(key, entry);
    entry.token.then(
      (t) => (entry.expiresAt = t.expiresAt),
      () => this.cache.get(key) === entry && this.cache.delete(key), // a failure is forgotten: the next call asks again
    );
    return entry.token;
  }

  private async fetch(region: string | undefined): Promise<EcrToken> {
    const { GetAuthorizationTokenCommand } = await import('@aws-sdk/client-ecr');
    let data;
    try {
      const client = await this.clientFor(region);
      data = (await client.send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
    } catch (err) {
      const { name, message } = (err ?? {}) as Error;
      throw new EcrTokenError(`ECR GetAuthorizationToken failed (${name ?? 'Error'}: ${String(message ?? err).split('\n')[0]})`, {
        cause: err,
      });
    }
    const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new EcrTokenError('ECR GetAuthorizationToken returned no usable token');
    let endpoint: URL | undefined;
    try {
      endpoint = data?.proxyEndpoint ? new URL(data.proxyEndpoint) : undefined;
    } catch {
      endpoint = undefined;
    }
    return {
      credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      ...(endpoint && { endpoint }),
      expiresAt: data?.expiresAt?.getTime() ?? this.now() + TOKEN_LIFETIME_MS,
    };
  }
}

export interface EcrCredentialOptions extends EcrTokensOptions {
  /** Answer for every host with this region's token (default: only ECR hosts, for the region in the host). */
  region?: string;
  /** The token cache to use (default: a new one). */
  tokens?: EcrTokens;
}

/** The ECR credential source: a token for ECR hosts (or for any host when `region` is given), else nothing. */
export function ecrCredentialSource(options: EcrCredentialOptions = {}): CredentialSource {
  const tokens = options.tokens ?? new EcrTokens(options);
  return {
    name: 'ecr',
    async resolve(registry) {
      const region = options.region ?? parseEcrHost(registry)?.region;
      if (region === undefined) return undefined;
      try {
        return (await tokens.token(region)).credentials;
      } catch (err) {
        throw new RegistryError('unauthorized', `registry ${registry}: ${(err as Error).message}`, undefined, undefined, { cause: err });
      }
    },
  };
}
