// ECR data-plane access for the Lambda: one ecr:GetAuthorizationToken call gives both the basic
// credentials and the registry address (`proxyEndpoint`), and its answer is kept across warm invocations
// until shortly before it expires. Taking the address from proxyEndpoint (rather than building
// `<account>.dkr.ecr.<region>.amazonaws.com`) is what lets tests point the whole handler at a loopback
// registry through AWS_ENDPOINT_URL_ECR. proxyEndpoint is the function's own account's registry, the only
// one it indexes (pushes of other accounts are refused by the guards).
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

export class EcrAuth {
  private cached?: { access: Promise<RegistryAccess>; expiresAt: number };

  constructor(
    private readonly client: () => ECRClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** Credentials and address valid at least until `validUntil` (epoch ms), from cache when possible. */
  async access(validUntil: number): Promise<RegistryAccess> {
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
    return entry.access;
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
