// `soci-indexer build <image>`: the main job on a registry image or a local OCI layout.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { OciLayoutTarget } from '../layout/oci-layout.ts';
import { type ImageReference, parseReference, registryReferenceTarget } from '../oci/reference.ts';
import type { Target } from '../oci/target.ts';
import type { Credentials } from '../registry/auth.ts';
import { RegistryTarget } from '../registry/client.ts';
import { chainCredentials, defaultCredentialSource, explicitCredentials } from '../registry/credentials.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../soci/build.ts';
import { DEFAULTS } from '../soci/defaults.ts';
import type { BuildEvent, BuildOptions, BuildResult, LayerResult, TagPolicy } from '../soci/types.ts';
import { RepositoryZtocCache, type ZtocCache } from '../soci/ztoc-cache.ts';
import { formatBytes, formatRate, oneOf, parseInteger, StatusLine, shortDigest, UsageError } from './common.ts';

export const BUILD_USAGE = `Usage: soci-indexer build <image> [options]

<image> is a registry reference (host[:port]/repo[:tag|@digest]; credentials from --username, else the
Docker config file and its helpers, else ecr:GetAuthorizationToken for ECR hosts) or a local OCI image
layout (oci:<dir>[:<ref-name>]).

Options:
  --span-size N            uncompressed bytes between checkpoints (default ${DEFAULTS.spanSize})
  --min-layer-size N       skip layers smaller than N bytes (default ${DEFAULTS.minLayerSize})
  --index-version v2|v1    v2 (default): new image index bound to the SOCI index, what ECS/Fargate use;
                           v1: SOCI index with a subject, found through the referrers API
  --platform P             index only this platform (os/arch[/variant]); repeatable; default all
  --concurrency N          layers indexed at once (default: number of CPUs, ${availableParallelism()} here)
  --tag-suffix S           output tag = <source tag>S (default ${DEFAULTS.tagSuffix})
  --output-tag T           tag the output T instead (repeatable)
  --in-place               move the source tag to the SOCI-enabled index (replaces it; off by default)
  --output oci:<dir>       write the result into another OCI layout (the image is copied there first)
  --build-tool-id ID       identifier written into zTOCs and the index (soci's CLI: "AWS SOCI CLI v0.2")
  --optimizations xattr    mark layers without xattrs so the snapshotter skips xattr lookups
  --prefetch-file PATH     ask the snapshotter to prefetch this file's spans (repeatable)
  --username U             registry user name; the password is read from stdin (--password-stdin)
  --password-stdin         read the registry password from standard input
  --plain-http             use http:// for a non-loopback registry
  --ztoc-cache R           reuse zTOCs from the repository R (host[:port]/repo, or oci:<dir>) and store
                           new ones there: shared layers are indexed once, an interrupted build resumes
  --dry-run                build everything, push and tag nothing
  --fail-on-superseded     exit 1 (instead of 0) when the source tag moved during the build, so
                           nothing was tagged (status "superseded")
  --json                   print the result as JSON`;

export const BUILD_OPTIONS = {
  'span-size': { type: 'string' },
  'min-layer-size': { type: 'string' },
  'index-version': { type: 'string' },
  platform: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  'tag-suffix': { type: 'string' },
  'output-tag': { type: 'string', multiple: true },
  'in-place': { type: 'boolean' },
  output: { type: 'string' },
  'build-tool-id': { type: 'string' },
  optimizations: { type: 'string', multiple: true },
  'prefetch-file': { type: 'string', multiple: true },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'plain-http': { type: 'boolean' },
  'ztoc-cache': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'fail-on-superseded': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof BUILD_OPTIONS; allowPositionals: true }>>['values'];

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function openTarget(
  ref: ImageReference,
  values: Values,
  credentials: Credentials | undefined,
  create: boolean,
): Promise<{ target: Target; reference: string }> {
  if (ref.kind === 'layout') {
    return { target: await OciLayoutTarget.open(ref.dir, { create }), reference: ref.refName ?? '' };
  }
  const target = new RegistryTarget({
    registry: ref.registry,
    repository: ref.repository,
    plainHttp: values['plain-http'] === true,
    // --username credentials go first for this host; the standard chain serves the rest.
    ...(credentials ? { credentials: chainCredentials(explicitCredentials(credentials, ref.registry), defaultCredentialSource()) } : {}),
  });
  return { target, reference: registryReferenceTarget(ref) };
}

/** `--ztoc-cache`: a registry repository (no tag or digest: the cache names its own entries) or a layout. */
export async function openZtocCache(text: string, values: Values, credentials: Credentials | undefined): Promise<ZtocCache> {
  if (text.startsWith('oci:')) {
    const ref = parseReference(text);
    if (ref.kind !== 'layout' || ref.refName !== undefined) throw new UsageError('--ztoc-cache oci:<dir> takes no ref name');
    return new RepositoryZtocCache(await OciLayoutTarget.open(ref.dir, { create: true }));
  }
  const ref = parseReference(text);
  if (ref.kind !== 'registry' || ref.tag !== undefined || ref.digest !== undefined || !text.includes('/')) {
    throw new UsageError('--ztoc-cache takes a repository (host[:port]/repository, no tag or digest) or oci:<dir>');
  }
  return new RepositoryZtocCache((await openTarget(ref, values, credentials, false)).target);
}

function tagPolicy(values: Values): TagPolicy {
  const explicit = values['output-tag'] ?? [];
  const chosen = [explicit.length > 0, values['in-place'] === true, values['tag-suffix'] !== undefined].filter(Boolean).length;
  if (chosen > 1) throw new UsageError('choose one of --tag-suffix, --output-tag and --in-place');
  if (explicit.length > 0) return { mode: 'tags', tags: explicit };
  if (values['in-place']) return { mode: 'in-place' };
  return { mode: 'suffix', suffix: values['tag-suffix'] ?? DEFAULTS.tagSuffix };
}

export function buildOptionsFrom(values: Values): BuildOptions {
  const optimizations = (values.optimizations ?? []).flatMap((o) => o.split(',')).filter(Boolean);
  for (const o of optimizations) if (o !== 'xattr') throw new UsageError(`unknown optimization ${JSON.stringify(o)} (known: xattr)`);
  const platforms = (values.platform ?? []).flatMap((p) => p.split(',')).filter(Boolean);
  return {
    ...DEFAULT_BUILD_OPTIONS,
    spanSize: parseInteger('--span-size', values['span-size'], 1) ?? DEFAULT_BUILD_OPTIONS.spanSize,
    minLayerSize: parseInteger('--min-layer-size', values['min-layer-size']) ?? DEFAULT_BUILD_OPTIONS.minLayerSize,
    indexVersion: oneOf('--index-version', values['index-version'], ['v1', 'v2'] as const) ?? DEFAULT_BUILD_OPTIONS.indexVersion,
    platforms: platforms.length > 0 ? platforms : DEFAULT_BUILD_OPTIONS.platforms,
    concurrency: parseInteger('--concurrency', values.concurrency, 1) ?? DEFAULT_BUILD_OPTIONS.concurrency,
    buildToolId: values['build-tool-id'] ?? DEFAULT_BUILD_OPTIONS.buildToolId,
    tagPolicy: tagPolicy(values),
    ...(optimizations.length > 0 ? { optimizations: ['xattr' as const] } : {}),
    ...(values['prefetch-file'] ? { prefetchFiles: values['prefetch-file'] } : {}),
    dryRun: values['dry-run'] === true,
  };
}

/** Live per-layer progress on a TTY, plain log lines otherwise (both on stderr). */
class ProgressReporter {
  private readonly layers = new Map<string, { platform: string; size: number; read: number; started: number; state: string }>();
  private readonly status = new StatusLine();

  constructor(private readonly quiet: boolean) {}

  handle = (e: BuildEvent): void => {
    if (this.quiet) return;
    switch (e.type) {
      case 'resolved':
        this.log(`resolved ${e.reference} to ${e.digest} (${e.platforms.length} platform(s): ${e.platforms.join(', ')})`);
        break;
      case 'layer-start':
        this.layers.set(e.layer, { platform: e.platform, size: e.size, read: 0, started: Date.now(), state: 'indexing' });
        if (!this.status.enabled) this.log(`[${e.platform}] indexing layer ${shortDigest(e.layer)} (${formatBytes(e.size)})`);
        break;
      case 'layer-progress': {
        const l = this.layers.get(e.layer);
        if (l) l.read = e.bytesRead;
        break;
      }
      case 'layer-done': {
        const r = e.result;
        this.layers.delete(r.digest);
        this.log(
          r.status === 'indexed'
            ? `[${e.platform}] layer ${shortDigest(r.digest)} ${r.ztoc === 'reused' ? 'zTOC reused from the cache' : 'indexed'}: zTOC ${shortDigest(r.ztocDigest ?? '')} (${r.spans} spans, ${r.entries} entries)`
            : `[${e.platform}] layer ${shortDigest(r.digest)} skipped (${skipCodes(r)}): ${r.reason}`,
        );
        break;
      }
      case 'push':
        if (!this.status.enabled) this.log(`pushed ${e.what} ${e.digest}`);
        break;
      case 'tag':
        this.log(`tagged ${e.tag} -> ${e.digest}`);
        break;
      case 'log':
        this.log(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
        break;
    }
    this.redraw();
  };

  private log(line: string): void {
    this.status.clear();
    console.error(line);
  }

  private redraw(): void {
    if (!this.status.enabled || this.layers.size === 0) return;
    const now = Date.now();
    const parts = [...this.layers].map(
      ([digest, l]) =>
        `${shortDigest(digest).slice(7, 19)} ${Math.floor((l.read / Math.max(1, l.size)) * 100)}% ${formatRate(l.read, now - l.started)}`,
    );
    this.status.update(`indexing ${this.layers.size} layer(s): ${parts.join(' | ')}`);
  }

  done(): void {
    this.status.clear();
  }
}

/** `below-minimum-size`, or `cannot-be-indexed, bad-gzip` when the engine named a reason code too. */
function skipCodes(layer: LayerResult): string {
  return [layer.skipCode, layer.code].filter((c, i, all) => c !== undefined && all.indexOf(c) === i).join(', ');
}

export function formatSummary(result: BuildResult): string {
  const lines = [`image      ${result.source.reference} (${result.source.digest})`];
  for (const p of result.platforms) {
    lines.push(`platform   ${p.platform}  manifest ${p.manifestDigest}`);
    for (const l of p.layers) {
      lines.push(
        l.status === 'indexed'
          ? `  layer    ${shortDigest(l.digest)} ${formatBytes(l.size).padStart(10)}  zTOC ${l.ztocDigest}${l.spans !== undefined ? ` (${l.spans} spans, ${l.entries} entries)` : ''}${l.ztoc === 'reused' ? ' reused' : l.ztoc === 'built' ? ' built' : ''}`
          : `  layer    ${shortDigest(l.digest)} ${formatBytes(l.size).padStart(10)}  skipped (${skipCodes(l)}): ${l.reason}`,
      );
    }
    if (p.indexDigest) lines.push(`  SOCI index ${p.indexDigest}`);
  }
  if (result.output) {
    const tags = result.output.tags.length > 0 ? ` tagged ${result.output.tags.join(', ')}` : ' (no tag)';
    lines.push(`output     ${result.output.digest}${result.dryRun ? ' (dry run: nothing pushed)' : tags}`);
  }
  lines.push(
    ...(result.cache
      ? [
          `zTOC cache ${result.cache.location}: ${result.cache.reused} reused (${formatBytes(result.cache.bytesSaved)} not read), ${result.cache.stored} stored, ${result.cache.misses} missed${result.cache.invalid > 0 ? ` (${result.cache.invalid} invalid entries ignored)` : ''}${result.cache.failures > 0 ? `, ${result.cache.failures} cache errors` : ''}`,
        ]
      : []),
    `result     ${result.message} in ${(result.durationMs / 1000).toFixed(2)} s (read ${formatBytes(result.bytesRead)}, ${formatRate(result.bytesRead, result.durationMs)}; zTOCs ${formatBytes(result.ztocBytes)})`,
  );
  return lines.join('\n');
}

export async function buildCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: BUILD_OPTIONS });
  if (values.help) {
    console.log(BUILD_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('build takes exactly one image reference');
  const options = buildOptionsFrom(values);
  if (values['password-stdin'] && !values.username) throw new UsageError('--password-stdin needs --username');
  if (values.username && !values['password-stdin']) throw new UsageError('--username needs --password-stdin');
  const credentials = values.username ? { username: values.username, password: await readStdin() } : undefined;

  const sourceRef = parseReference(positionals[0]!);
  const { target: source, reference } = await openTarget(sourceRef, values, credentials, false);
  let output: Target | undefined;
  if (values.output) {
    const outRef = parseReference(values.output);
    if (outRef.kind !== 'layout') throw new UsageError('--output must be an OCI layout (oci:<dir>)');
    output = (await openTarget(outRef, values, undefined, true)).target;
  }

  // --username credentials are the source registry's: sent to the cache only when it is on the same registry.
  const cacheText = values['ztoc-cache'];
  const cacheRef = cacheText !== undefined && !cacheText.startsWith('oci:') ? parseReference(cacheText) : undefined;
  const sameRegistry = cacheRef?.kind === 'registry' && sourceRef.kind === 'registry' && cacheRef.registry === sourceRef.registry;
  const ztocCache = cacheText !== undefined ? await openZtocCache(cacheText, values, sameRegistry ? credentials : undefined) : undefined;

  const progress = new ProgressReporter(values.json === true && !process.stderr.isTTY);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  try {
    // With --output the core copies what the converted image refers to (streamed) into that layout.
    const result = await buildSociIndex(
      source,
      reference,
      { ...options, signal: controller.signal, onEvent: progress.handle, ...(ztocCache && { ztocCache }) },
      output ?? source,
    );
    progress.done();
    console.log(values.json ? JSON.stringify(result, null, 2) : formatSummary(result));
    // A newer push owns the tag: by default that is a result (exit 0), for CI jobs that must notice it a failure.
    if (result.status === 'superseded' && values['fail-on-superseded']) {
      console.error(`soci-indexer: error: ${result.message}`);
      return 1;
    }
    return 0;
  } catch (err) {
    // A read stopped by the interrupt fails with a generic abort error; say why it stopped.
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    progress.done();
    process.off('SIGINT', onSignal);
  }
}
