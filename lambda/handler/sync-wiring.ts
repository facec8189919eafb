// Assembles the sync handler from the environment, as wiring.ts does for the indexer: configuration
// validated at cold start (a bad value logs one line naming the variable, then throws), lazily created
// SDK clients, the ECR token and the registry client.
import { ECRClient } from '@aws-sdk/client-ecr';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ConfigError } from './config.ts';
import { EcrAuth } from './ecr-auth.ts';
import { lambdaInvoker } from './lambda-invoke.ts';
import { createMetrics } from './metrics.ts';
import { createSyncHandler, parseSyncConfig, type SyncConfig, type SyncHandlerDeps } from './sync.ts';
import { createLogger, loadConfig, openRegistryTarget } from './wiring.ts';

type Env = Readonly<Record<string, string | undefined>>;

function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

export function syncHandlerFromEnvironment(env: Env, overrides: Partial<SyncHandlerDeps> = {}) {
  const logger = overrides.logger ?? createLogger(env);
  const config = overrides.config ?? loadConfig(env, logger);
  let sync: SyncConfig;
  try {
    sync = overrides.sync ?? parseSyncConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) logger.error(`invalid configuration: ${err.message}`, { variable: err.variable });
    throw err;
  }
  // One policy for throttling (withBackoff), so the SDK's own retries are off for the listing calls.
  const ecr = once(() => new ECRClient({ maxAttempts: 1 }));
  return createSyncHandler({
    config,
    sync,
    logger,
    metrics: overrides.metrics ?? createMetrics(env),
    auth: overrides.auth ?? new EcrAuth(once(() => new ECRClient({}))),
    openTarget: overrides.openTarget ?? openRegistryTarget,
    ecr: overrides.ecr ?? ecr,
    invoke: overrides.invoke ?? lambdaInvoker(env),
    eventBridge: overrides.eventBridge ?? once(() => new EventBridgeClient({})),
    ...(overrides.backoffBaseMs !== undefined && { backoffBaseMs: overrides.backoffBaseMs }),
  });
}
