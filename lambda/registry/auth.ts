// Registry authentication: WWW-Authenticate challenges (Basic, and Bearer via the token endpoint), one
// Authenticator per registry that remembers the scheme, the basic header and a token per scope.
import { errorKind } from '../oci/errors.ts';
import type { CredentialSource } from './credentials.ts';
import { networkError, RegistryError } from './errors.ts';
import { readLimited } from './http.ts';
import { isRetryableStatus, parseRetryAfter, RetryableError, type RetryPolicy, retryPolicy, withRetry } from './retry.ts';
import type { HttpResponse, HttpTransport } from './transport.ts';

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  /** Lower-cased scheme: `basic`, `bearer`, … */
  scheme: string;
  params: Record<string, string>;
}

const CHALLENGE_TOKEN = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/y;
const PARAM = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*/y;

/** Parses a WWW-Authenticate value, possibly holding several comma-separated challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let pos = 0;
  while (pos < header.length) {
    if (header[pos] === ',' || header[pos] === ' ') {
      pos++;
      continue;
    }
    PARAM.lastIndex = pos;
    const param = challenges.length > 0 ? PARAM.exec(header) : null;
    if (param) {
      challenges[challenges.length - 1]!.params[param[1]!.toLowerCase()] =
        param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3]!;
      pos = PARAM.lastIndex;
      continue;
    }
    CHALLENGE_TOKEN.lastIndex = pos;
    const token = CHALLENGE_TOKEN.exec(header);
    if (!token) break;
    challenges.push({ scheme: token[1]!.toLowerCase(), params: {} });
    pos = CHALLENGE_TOKEN.lastIndex;
  }
  return challenges;
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

interface CachedToken {
  value: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  registry: string;
  credentials?: CredentialSource;
  transport: HttpTransport;
  userAgent: string;
  retry?: RetryPolicy;
  /** Whether a token realm may be plain http (same rule as the registry itself). */
  allowHttpRealm: (url: URL) => boolean;
}

/** containers/image's bound on a token response: a token server streaming without end fails at 1 MiB. */
export const MAX_TOKEN_BODY_BYTES = 1 << 20;

/** Tokens are refreshed this long before the expiry the token server states. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;

export class Authenticator {
  private basic?: string;
  private bearer?: { realm: URL; service?: string };
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests under way, so parallel requests for one scope share a single round trip. */
  private readonly pending = new Map<string, Promise<string>>();
  private readonly retry: RetryPolicy;

  constructor(private readonly options: AuthenticatorOptions) {
    this.retry = options.retry ?? retryPolicy();
  }

  /** The Authorization header to send up front for `scope`, once the registry's scheme is known. */
  async authorization(scope: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.bearer) {
      const cached = this.tokens.get(scope);
      if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.value}`;
      return `Bearer ${await this.fetchToken([scope], scope, signal)}`;
    }
    return this.basic;
  }

  /**
   * Learns from a 401. Returns true when a retry with a fresh `authorization()` may succeed; false when
   * there is nothing new to try (no credentials, or the same ones were just refused).
   */
  async challenged(header: string | null, scope: string, sent: string | undefined, signal?: AbortSignal): Promise<boolean> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      const realm = this.realmUrl(bearer.params.realm);
      this.bearer = { realm, service: bearer.params.service };
      this.tokens.delete(scope);
      const scopes = bearer.params.scope ? [...new Set([scope, ...bearer.params.scope.split(' ')])] : [scope];
      const token = await this.fetchToken(scopes, scope, signal);
      return sent !== `Bearer ${token}`;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.bearer = undefined;
      const credentials = await this.options.credentials?.resolve(this.options.registry);
      if (!credentials) return false;
      this.basic = basicAuthorization(credentials);
      return sent !== this.basic;
    }
    return false;
  }

  private realmUrl(realm: string): URL {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('unsupported', `registry ${this.options.registry}: token realm is not a URL`);
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.options.allowHttpRealm(url))) {
      throw new RegistryError('unsupported', `registry ${this.options.registry}: refusing token realm ${url.origin} (not https)`);
    }
    return url;
  }

  private fetchToken(scopes: string[], cacheKey: string, signal?: AbortSignal): Promise<string> {
    const key = `${cacheKey}\n${scopes.join(' ')}`;
    let token = this.pending.get(key);
    if (!token) {
      token = this.requestToken(scopes, cacheKey, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, token);
    }
    return token;
  }

  private async requestToken(scopes: string[], cacheKey: string, signal?: AbortSignal): Promise<string> {
    const { realm, service } = this.bearer!;
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const credentials = await this.options.credentials?.resolve(this.options.registry);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, accept: 'application/json' };
    if (credentials) headers.authorization = basicAuthorization(credentials);
    const what = `registry ${this.options.registry}: token for ${scopes.join(' ')}`;
    const body = await withRetry(this.retry, signal, async () => {
      let response: HttpResponse;
      try {
        response = await this.options.transport(url, { headers, signal, redirect: 'follow', wholeBody: true });
      } catch (err) {
        if (signal?.aborted) throw err;
        if ((err as { code?: unknown }).code === 'ERR_REDIRECT_DOWNGRADE')
          throw new RegistryError('unsupported', `${what}: ${(err as Error).message}`);
        throw new RetryableError(networkError(what, err));
      }
      if (response.ok) {
        let bytes: Uint8Array;
        try {
          bytes = await readLimited(response, MAX_TOKEN_BODY_BYTES, what, 'max-token-body-bytes');
        } catch (err) {
          if (errorKind(err) === 'limit') throw err;
          if (signal?.aborted) throw err;
          throw new RetryableError(networkError(what, err));
        }
        try {
          const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
            return parsed as { token?: unknown; access_token?: unknown; expires_in?: unknown };
        } catch {
          // reported below
        }
        throw new RegistryError('invalid-response', `${what}: token server answered with something other than a JSON object`);
      }
      await response.body?.cancel();
      const error = new RegistryError(
        response.status === 401 ? 'unauthorized' : response.status === 403 ? 'denied' : 'failed',
        `${what} refused (${response.status})`,
        response.status,
      );
      if (isRetryableStatus(response.status)) throw new RetryableError(error, parseRetryAfter(response.headers.get('retry-after')));
      throw error;
    });
    const value = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!value) throw new RegistryError('invalid-response', `${what}: token server answered without a token`);
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60) * 1000;
    this.tokens.set(cacheKey, { value, expiresAt: Date.now() + Math.max(0, lifetimeMs - TOKEN_EXPIRY_MARGIN_MS) });
    return value;
  }
}
