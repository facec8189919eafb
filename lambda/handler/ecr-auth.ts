// ECR data-plane access for the Lambda: one ecr:GetAuthorizationToken call gives both the basic
// credentials and the registry address (`proxyEndpoint`), and its answer is kept across warm invocations
// until shortly before it expires. Taking the address from proxyEndpoint (rather than building
// `<account>.dkr.ecr.<region>.amazonaws.com`) is what lets tests point the whole handler at a loopback
// registry through AWS_ENDPOINT_URL_ECR.
import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';
import type { Credentials } from '../registry/auth.ts';
import { SociError } from '../soci/types.ts';
import { awsError } from './aws-errors.ts';

export interface RegistryAccess {
  /** Registry base URL, e.g. `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  endpoint: URL;
  credentials: Credentials;
  /** Epoch ms at which the credentials stop working. */
  expiresAt: number;
}

/** Tokens are replaced this long before they expire, besides outliving the current invocation. */
const EXPIRY_MARGIN_MS = 5 * 60_000;

const ECR_HOST = /^(\d{12})(\.dkr[.-]ecr(?:-fips)?\.[a-z0-9-]+\.(?:amazonaws\.com(?:\.cn)?|on\.aws))$/;

/**
 * The token is valid for every registry the role may use, but proxyEndpoint names the caller's own
 * account: an event forwarded from another account is served by that account's registry host.
 */
export function endpointForAccount(proxyEndpoint: URL, account: string | undefined): URL {
  const match = ECR_HOST.exec(proxyEndpoint.hostname);
  if (!match || account === undefined || !/^\d{12}$/.test(account) || match[1] === account) return proxyEndpoint;
  const url = new URL(proxyEndpoint);
  url.hostname = `${account}${match[2]}`;
  return url;
}

export class EcrAuth {
  private cached?: { access: Promise<RegistryAccess>; expiresAt: number };

  constructor(
    private readonly client: () => ECRClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** Credentials and address valid at least until `validUntil` (epoch ms), from cache when possible. */
  async access(account: string | undefined, validUntil: number): Promise<RegistryAccess> {
    let entry = this.cached;
    if (!entry || entry.expiresAt - EXPIRY_MARGIN_MS <= Math.max(validUntil, this.now())) {
      // In flight the entry never looks expired, so concurrent callers share one request.
      const fresh = { access: this.fetch(), expiresAt: Infinity };
      this.cached = entry = fresh;
      fresh.access.then(
        (a) => (fresh.expiresAt = a.expiresAt),
        () => this.cached === fresh && (this.cached = undefined), // a failure is forgotten: next call asks again
      );
    }
    const access = await entry.access;
    return { ...access, endpoint: endpointForAccount(access.endpoint, account) };
  }

  private async fetch(): Promise<RegistryAccess> {
    let data;
    try {
      data = (await this.client().send(new GetAuthorizationTokenCommand({}))).authorizationData?.[0];
    } catch (err) {
      throw awsError('ecr:GetAuthorizationToken', err);
    }
    const decoded = data?.authorizationToken ? Buffer.from(data.authorizationToken, 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new SociError('permanent', 'ecr:GetAuthorizationToken returned no usable token');
    let endpoint: URL;
    try {
      endpoint = new URL(data?.proxyEndpoint ?? '');
    } catch {
      throw new SociError('permanent', `ecr:GetAuthorizationToken returned no usable proxyEndpoint (${JSON.stringify(data?.proxyEndpoint ?? null)})`);
    }
    return {
      endpoint,
      credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      // ECR tokens last 12 hours; assume that when the answer carries no expiry.
      expiresAt: data?.expiresAt?.getTime() ?? this.now() + 12 * 3600_000,
    };
  }
}
