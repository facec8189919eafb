// What the handler hands the soci core: the full BuildOptions derived from each variable (deep equality,
// so a variable the handler ignores fails), the deadline from Lambda's remaining time, and the hard stop
// that aborts an overrunning core halfway through the safety margin. The registry and ECR are stubbed
// (their own tests use real ones) so that the clock can be mocked: nothing here sleeps.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import type { RegistryAccess } from '../../lambda/handler/ecr-auth.ts';
import type { BuildFn } from '../../lambda/handler/invoke.ts';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import type { Descriptor, Target } from '../../lambda/oci/target.ts';
import { type BuildOptions, type BuildResult, SociError } from '../../lambda/soci/types.ts';
import { RepositoryZtocCache } from '../../lambda/soci/ztoc-cache.ts';
import { DEFAULT_BUILD_TOOL_ID } from '../../lambda/ztoc/builder.ts';
import { capture, enablePowertoolsCapture, fixture } from './helpers.ts';

enablePowertoolsCapture();
const digest = `sha256:${'a'.repeat(64)}`;
const pushEvent = () => fixture('ecr-push-image', { 'image-digest': digest, 'image-tag': 'v1', 'repository-name': 'team/app' });

/** A registry where tag v1 still names the pushed digest (the handler checks before building). */
const registry: Target = {
  description: 'stub registry',
  async resolve(): Promise<Descriptor> {
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 100 };
  },
  fetch: () => Promise.reject(new Error('not used')),
  fetchBytes: () => Promise.reject(new Error('not used')),
  exists: () => Promise.reject(new Error('not used')),
  push: () => Promise.reject(new Error('not used')),
  tag: () => Promise.reject(new Error('not used')),
  referrers: () => Promise.reject(new Error('not used')),
};
const access: RegistryAccess = {
  endpoint: new URL('https://123456789012.dkr.ecr.eu-west-1.amazonaws.com'),
  credentials: { username: 'AWS', password: 'x' },
  expiresAt: Number.MAX_SAFE_INTEGER,
};

function created(options: BuildOptions): BuildResult {
  return {
    status: 'created',
    message: 'ok',
    source: { reference: 'v1', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
    indexVersion: options.indexVersion,
    platforms: [],
    bytesRead: 0,
    ztocBytes: 0,
    durationMs: 0,
    dryRun: false,
  };
}

/** Runs one push through a handler built from `env`; returns the options the core got. */
async function optionsFor(
  env: Record<string, string>,
  overrides: { now?: () => number; remainingMs?: () => number; build?: BuildFn } = {},
) {
  const calls: BuildOptions[] = [];
  /** The targets the handler opened, by repository (the cache gets its own). */
  const opened = new Map<string, Target>();
  const build: BuildFn = overrides.build ?? (async (_source, _reference, options) => created(options));
  const handler = handlerFromEnvironment(
    { SOCI_REPOSITORY_FILTERS: 'team/*', ...env },
    async (...args) => {
      calls.push(args[2]);
      return build(...args);
    },
    {
      auth: { access: async () => access },
      openTarget: (_access, repository) => {
        const target = { ...registry, description: `stub ${repository}` };
        opened.set(repository, target);
        return target;
      },
      ...(overrides.now && { now: overrides.now }),
    },
  );
  const run = await capture(() => handler(pushEvent(), { getRemainingTimeInMillis: overrides.remainingMs ?? (() => 600_000) }));
  return { run, calls, opened };
}

/** BuildOptions without the per-invocation parts (deadline, signal, event sink). */
function settings(options: BuildOptions | undefined): Partial<BuildOptions> {
  assert.ok(options, 'the core was called');
  const { deadline, signal, onEvent, ...rest } = options;
  assert.equal(typeof deadline, 'number');
  assert.ok(signal instanceof AbortSignal);
  assert.equal(typeof onEvent, 'function');
  return rest;
}

const DEFAULTS: Partial<BuildOptions> = {
  spanSize: 4194304,
  minLayerSize: 10485760,
  indexVersion: 'v2',
  platforms: 'all',
  buildToolId: DEFAULT_BUILD_TOOL_ID,
  concurrency: availableParallelism(),
  tagPolicy: { mode: 'suffix', suffix: '-soci' },
};

describe('handler: each variable reaches the core', () => {
  test('no variable: the documented defaults (concurrency = CPUs)', async () => {
    const { calls } = await optionsFor({});
    assert.deepEqual(settings(calls[0]), DEFAULTS);
  });

  const CASES: [string, Record<string, string>, Partial<BuildOptions>][] = [
    ['SOCI_SPAN_SIZE', { SOCI_SPAN_SIZE: '65536' }, { spanSize: 65536 }],
    ['SOCI_MIN_LAYER_SIZE', { SOCI_MIN_LAYER_SIZE: '0' }, { minLayerSize: 0 }],
    ['SOCI_INDEX_VERSION', { SOCI_INDEX_VERSION: 'v1' }, { indexVersion: 'v1' }],
    ['SOCI_PLATFORMS', { SOCI_PLATFORMS: 'linux/arm64/v8, linux/amd64' }, { platforms: ['linux/arm64/v8', 'linux/amd64'] }],
    ['SOCI_BUILD_TOOL_ID', { SOCI_BUILD_TOOL_ID: 'AWS SOCI CLI v0.2' }, { buildToolId: 'AWS SOCI CLI v0.2' }],
    ['SOCI_CONCURRENCY', { SOCI_CONCURRENCY: '3' }, { concurrency: 3 }],
    ['SOCI_TAG_SUFFIX', { SOCI_TAG_SUFFIX: '.lazy' }, { tagPolicy: { mode: 'suffix', suffix: '.lazy' } }],
    ['SOCI_IN_PLACE', { SOCI_IN_PLACE: 'true' }, { tagPolicy: { mode: 'in-place' } }],
    ['SOCI_IN_PLACE=false', { SOCI_IN_PLACE: 'false', SOCI_TAG_SUFFIX: '-x' }, { tagPolicy: { mode: 'suffix', suffix: '-x' } }],
  ];
  for (const [name, env, changed] of CASES) {
    test(name, async () => {
      const { calls } = await optionsFor(env);
      assert.deepEqual(settings(calls[0]), { ...DEFAULTS, ...changed });
    });
  }

  test("SOCI_ZTOC_CACHE: a cache on that repository of the pushed image's registry", async () => {
    const { calls, opened } = await optionsFor({ SOCI_ZTOC_CACHE: 'soci-indexer/ztoc-cache' });
    const { ztocCache, ...rest } = settings(calls[0]);
    assert.deepEqual(rest, DEFAULTS);
    assert.deepEqual([...opened.keys()], ['team/app', 'soci-indexer/ztoc-cache']);
    assert.ok(ztocCache instanceof RepositoryZtocCache, 'a zTOC cache reaches the core');
    assert.equal(ztocCache.target, opened.get('soci-indexer/ztoc-cache'));
  });
});

describe('handler: deadline and hard stop', () => {
  test('the deadline is the end of the invocation minus the margin, however long the handler already ran', async () => {
    // Lambda's end is at 1_000_000 + 600_000; 7 s pass between the handler's start and the build.
    let clock = 1_000_000;
    const end = clock + 600_000;
    let first = true;
    const now = () => {
      const t = clock;
      if (first) clock += 7_000;
      first = false;
      return t;
    };
    const { calls } = await optionsFor({ SOCI_DEADLINE_MARGIN_MS: '20000' }, { now, remainingMs: () => end - clock });
    assert.equal(calls[0]!.deadline, end - 20_000);
  });

  for (const spent of [0, 7_000]) {
    test(`an overrunning core is aborted at deadline + margin/2, before Lambda ends (${spent} ms spent before the build)`, async (t) => {
      t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
      // Lambda's clock is the mocked one plus `spent` from the handler's first reading on: the handler spent
      // that long before the build (parsing, auth) while no timer ran, so the hard stop must count from now.
      let skew = 0;
      const lambdaNow = () => Date.now() + skew;
      let first = true;
      const now = () => {
        const time = lambdaNow();
        if (first) skew = spent;
        first = false;
        return time;
      };
      const margin = 10_000;
      const remaining = 60_000;
      const deadlineAt = remaining - margin; // Lambda's clock starts at 0
      const stopAt = deadlineAt + margin / 2;
      let entered!: () => void;
      const inCore = new Promise<void>((resolve) => (entered = resolve));
      let abortedAt: number | undefined;
      const stuck: BuildFn = (_source, _reference, options) =>
        new Promise((_, reject) => {
          entered();
          options.signal!.addEventListener(
            'abort',
            () => {
              abortedAt = lambdaNow();
              reject(options.signal!.reason);
            },
            { once: true },
          );
        });
      const running = optionsFor(
        { SOCI_DEADLINE_MARGIN_MS: String(margin) },
        { now, remainingMs: () => remaining - lambdaNow(), build: stuck },
      );
      await inCore;
      t.mock.timers.tick(stopAt - spent - 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(abortedAt, undefined, 'not aborted before deadline + margin/2');
      t.mock.timers.tick(1);
      assert.equal(abortedAt, stopAt, 'aborted at deadline + margin/2');
      assert.ok(abortedAt < remaining, 'the abort comes before Lambda ends the invocation');
      const { run, calls } = await running;
      assert.equal(calls[0]!.deadline, deadlineAt);
      assert.ok(run.error instanceof SociError && run.error.kind === 'transient', String(run.error));
      assert.match((run.error as Error).message, /^deadline exceeded: the build did not stop in time$/);
    });
  }
});
