// Assembles the handler from the environment: configuration (validated now, at cold start), Powertools
// logger and metrics, lazily created SDK clients (which read AWS_REGION and AWS_ENDPOINT_URL_* themselves)
// and the registry client. Clients and the ECR token live as long as the execution environment.
import { Logger } from '@aws-lambda-powertools/logger';
import { ECRClient } from '@aws-sdk/client-ecr';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { RegistryTarget } from '../registry/client.ts';
import { explicitCredentials } from '../registry/credentials.ts';
import { ConfigError, type HandlerConfig, parseConfig } from './config.ts';
import { EcrAuth, type RegistryAccess } from './ecr-auth.ts';
import { type BuildFn, createHandler, type HandlerDeps, type TargetHooks } from './invoke.ts';
import { createMetrics } from './metrics.ts';

type Env = Readonly<Record<string, string | undefined>>;

export function createLogger(env: Env): Logger {
  return new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME || 'soci-indexer' });
}

/** Parses the configuration; on a bad value logs one line naming the variable, then rethrows. */
export function loadConfig(env: Env, logger: Logger): HandlerConfig {
  try {
    return parseConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) logger.error(`invalid configuration: ${err.message}`, { variable: err.variable });
    throw err;
  }
}

/** The registry client for one repository, with the ECR token as basic credentials. */
export function openRegistryTarget(access: RegistryAccess, repository: string, hooks?: TargetHooks): RegistryTarget {
  return new RegistryTarget({
    ...(hooks && { retry: { deadline: hooks.deadline, onRetry: hooks.onRetry } }),
    registry: access.endpoint.host,
    repository,
    credentials: explicitCredentials(access.credentials),
    // proxyEndpoint is https for ECR; a test points it at a plain-http loopback registry.
    plainHttp: access.endpoint.protocol === 'http:',
    userAgent: 'soci-indexer-lambda',
  });
}

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/**
 * The invocation function for this environment. Throws (after logging) when the configuration is bad,
 * which at module load makes Lambda report an init error on every invocation.
 */
export function handlerFromEnvironment(env: Env, build: BuildFn, overrides: Partial<HandlerDeps> = {}) {
  const logger = overrides.logger ?? createLogger(env);
  const config = overrides.config ?? loadConfig(env, logger);
  const ecr = once(() => new ECRClient({}));
  return createHandler({
    config,
    build,
    logger,
    metrics: overrides.metrics ?? createMetrics(env),
    auth: overrides.auth ?? new EcrAuth(ecr),
    openTarget: overrides.openTarget ?? openRegistryTarget,
    eventBridge: overrides.eventBridge ?? once(() => new EventBridgeClient({})),
    now: overrides.now,
  });
}
