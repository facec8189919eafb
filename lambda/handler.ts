// Lambda entry point for EventBridge "ECR Image Action" events (see README, "Lambda configuration").
// The configuration is parsed here, at module load: a malformed value logs one line naming the variable
// and throws, so Lambda reports an init error on every invocation instead of indexing with a guess.
import { handlerFromEnvironment } from './handler/wiring.ts';
import { buildSociIndex } from './soci/build.ts';

export const handler = handlerFromEnvironment(process.env, buildSociIndex);
