// ECR data-plane access for the Lambda, over the shared token cache (registry/ecr-credentials.ts): one
// ecr:GetAuthorizationToken answer gives both the basic credentials and the registry address
// (`proxyEndpoint`), kept across warm invocations under the one refresh rule, with the invocation's
// deadline as the time the token must outlive. Taking the address from proxyEndpoint (rather than building
// `<account>.dkr.ecr.<region>.amazonaws.com`) is what lets tests point the whole handler at a loopback
// registry through AWS_ENDPOINT_URL_ECR. proxyEndpoint is the function's own account's registry, the only
// one it indexes (pushes of other accounts are refused by the guards).
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { Credentials } from '../registry/auth.ts';
import { EcrTokenError, EcrTokens } from '../registry/ecr-credentials.ts';
import { SociError } from '../soci/types.ts';
import { awsError } from './aws-errors.ts';

export interface RegistryAccess {
  /** Registry base URL, e.g. `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  endpoint: URL;
  credentials: Credentials;
  /** Epoch ms at which the credentials stop working. */
  expiresAt: number;
}

export class EcrAuth {
  private readonly tokens: EcrTokens;

  constructor(client: () => ECRClient, now: () => number = Date.now) {
    // The function's own region (AWS_REGION, read by the SDK client).
    this.tokens = new EcrTokens({ clientFor: () => client(), now });
  }

  /** Credentials and address valid at least until `validUntil` (epoch ms), from cache when possible. */
  async access(validUntil: number): Promise<RegistryAccess> {
    let token;
    try {
      token = await this.tokens.token(undefined, validUntil);
    } catch (err) {
      // The SDK's failure says whether a retry can help (throttling, 5xx, network) or not.
      if (err instanceof EcrTokenError && err.cause !== undefined) throw awsError('ecr:GetAuthorizationToken', err.cause);
      throw new SociError('permanent', (err as Error).message, { cause: err });
    }
    if (!token.endpoint) throw new SociError('permanent', 'ecr:GetAuthorizationToken returned no usable proxyEndpoint');
    return { endpoint: token.endpoint, credentials: token.credentials, expiresAt: token.expiresAt };
  }
}
