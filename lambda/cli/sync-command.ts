// `soci-indexer sync <registry> --repositories <patterns>`: backfill, repair and (with --prune) clean up a
// whole registry: plan from manifests alone, then build what is missing or stale, one image at a time.
import { parseArgs } from 'node:util';
import { FilterSyntaxError, parseFilters } from '../oci/filters.ts';
import { isRegistryHost, parseReference } from '../oci/reference.ts';
import type { RegistryListing } from '../oci/registry.ts';
import { chainCredentials, defaultCredentialSource, explicitCredentials } from '../registry/credentials.ts';
import { parseEcrHost } from '../registry/ecr-credentials.ts';
import { EcrApiListing } from '../registry/ecr-listing.ts';
import { OciRegistryListing } from '../registry/listing.ts';
import {
  type PlanItem,
  planSync,
  runSync,
  SYNC_ACTIONS,
  type SyncEvent,
  type SyncOptions,
  type SyncResult,
  summarize,
} from '../soci/sync.ts';
import { tagPolicyEntry } from '../soci/tag-policy.ts';
import { BUILD_OPTIONS, buildOptionsFrom, openZtocCache, readStdin } from './build-command.ts';
import { StatusLine, UsageError } from './common.ts';

export const SYNC_USAGE = `Usage: soci-indexer sync <registry> --repositories <patterns> [options]

Indexes every image of the matching repositories that has no SOCI index made with these settings,
rebuilds <tag><suffix> when its tag moved, and (with --prune) deletes <tag><suffix> whose tag is gone.
<registry> is host[:port]: ECR hosts are listed through the ECR API (DescribeRepositories,
DescribeImages), others through /v2/_catalog and tags lists.

Options:
  --repositories P         comma list of repo[:tag] patterns, * matching any characters (required;
                           the syntax of SOCI_REPOSITORY_FILTERS); repeatable
  --prune                  delete <tag><suffix> made by soci-indexer whose source tag no longer exists
  --dry-run                print the plan, change nothing
  --json                   print the plan and the results as JSON
  --span-size N, --min-layer-size N, --index-version v2|v1, --platform P, --concurrency N,
  --tag-suffix S, --in-place, --build-tool-id ID, --optimizations xattr, --prefetch-file PATH
                           as for build (see build --help); they decide what "up to date" means
  --ztoc-cache R           as for build: reuse and store zTOCs in the repository R (never synced itself)
  --username U --password-stdin, --plain-http
                           registry access, as for build`;

const { output: _output, 'output-tag': _outputTag, 'fail-on-superseded': _fail, ...SHARED } = BUILD_OPTIONS;

const OPTIONS = {
  ...SHARED,
  repositories: { type: 'string', multiple: true },
  prune: { type: 'boolean' },
} as const;

/** Live progress on stderr: a status line on a terminal, one line per finished action otherwise. */
class SyncProgress {
  private readonly status = new StatusLine();
  private planned = 0;
  private done = 0;
  private work = 0;

  constructor(private readonly quiet: boolean) {}

  handle = (e: SyncEvent): void => {
    if (this.quiet) return;
    switch (e.type) {
      case 'listed':
        this.log(`listed ${e.repository}: ${e.tags} tag(s)`);
        break;
      case 'planned':
        this.planned++;
        if (['create', 'repair', 'prune'].includes(e.item.action)) this.work++;
        if (e.item.action === 'error') this.log(`error   ${name(e.item)}: ${e.item.reason}`);
        this.status.update(`planning: ${this.planned} tag(s) checked`);
        break;
      case 'started':
        this.status.update(`[${this.done + 1}/${this.work}] ${e.item.action} ${name(e.item)}`, true);
        break;
      case 'finished':
        this.done++;
        this.log(
          `[${this.done}/${this.work}] ${e.item.action.padEnd(6)} ${name(e.item)}: ${e.outcome.ok ? e.outcome.message : `FAILED: ${e.outcome.message}`}`,
        );
        break;
    }
  };

  private log(line: string): void {
    this.status.clear();
    console.error(line);
  }

  finish(): void {
    this.status.clear();
  }
}

function name(item: PlanItem): string {
  return item.tag === '' ? item.repository : `${item.repository}:${item.tag}`;
}

function formatPlan(items: readonly PlanItem[]): string {
  const lines = items
    .filter((i) => i.action !== 'up-to-date')
    .map((i) => `${i.action.padEnd(10)} ${name(i)}${i.outputTag && i.outputTag !== i.tag ? ` -> ${i.outputTag}` : ''}: ${i.reason}`);
  return lines.length > 0 ? lines.join('\n') : 'nothing to do';
}

function formatSummary(result: SyncResult, dryRun: boolean): string {
  const { plan } = result;
  const lines = [
    `registry   ${plan.registry}: ${plan.repositories.length} repository(ies), ${plan.items.length} item(s), planned in ${(plan.durationMs / 1000).toFixed(2)} s`,
  ];
  lines.push('', `action      planned${dryRun ? '' : '  done  failed'}`);
  for (const action of SYNC_ACTIONS) {
    const planned = result.counts[action];
    if (dryRun) lines.push(`${action.padEnd(11)} ${String(planned).padStart(7)}`);
    else {
      const done = result.results.filter((r) => r.item.action === action && r.outcome.ok).length;
      const failed = result.results.filter((r) => r.item.action === action && !r.outcome.ok).length;
      lines.push(`${action.padEnd(11)} ${String(planned).padStart(7)}  ${String(done).padStart(4)}  ${String(failed).padStart(6)}`);
    }
  }
  if (result.failures.length > 0) {
    lines.push('', 'failures');
    for (const f of result.failures) lines.push(`  ${f.tag === '' ? f.repository : `${f.repository}:${f.tag}`} (${f.action}): ${f.reason}`);
  }
  lines.push('', dryRun ? 'dry run: nothing was changed' : result.ok ? 'all succeeded' : `${result.failures.length} failure(s)`);
  return lines.join('\n');
}

export async function syncCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  if (values.help) {
    console.log(SYNC_USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('sync takes exactly one registry (host[:port])');
  const registry = positionals[0]!;
  if (registry.includes('/') || registry.startsWith('oci:'))
    throw new UsageError(`sync takes a registry host[:port], not an image or a layout: ${JSON.stringify(registry)}`);
  if (!isRegistryHost(registry))
    throw new UsageError(`sync takes a registry host[:port]: ${JSON.stringify(registry)} is not a valid registry host`);
  const patterns = (values.repositories ?? []).join(',');
  if (patterns.trim() === '') throw new UsageError('--repositories is required (e.g. --repositories "app-*,ml/trainer:release-*")');
  let filters;
  try {
    filters = parseFilters(patterns);
  } catch (err) {
    if (err instanceof FilterSyntaxError) throw new UsageError(`--repositories: ${err.message}`);
    throw err;
  }
  const build = { ...buildOptionsFrom(values), dryRun: false };
  if (values.prune && (build.indexVersion !== 'v2' || !tagPolicyEntry(build.tagPolicy).prunable)) {
    throw new UsageError('--prune applies to v2 output under a tag suffix (in place and v1 leave no separate tag to prune)');
  }
  if (values['password-stdin'] && !values.username) throw new UsageError('--password-stdin needs --username');
  if (values.username && !values['password-stdin']) throw new UsageError('--username needs --password-stdin');
  const credentials = values.username ? { username: values.username, password: await readStdin() } : undefined;

  const access = {
    registry,
    plainHttp: values['plain-http'] === true,
    ...(credentials && { credentials: chainCredentials(explicitCredentials(credentials, registry), defaultCredentialSource()) }),
  };
  const listing: RegistryListing = parseEcrHost(registry) ? new EcrApiListing(access) : new OciRegistryListing(access);

  const cacheText = values['ztoc-cache'];
  const cacheRef = cacheText !== undefined && !cacheText.startsWith('oci:') ? parseReference(cacheText) : undefined;
  const cacheHere = cacheRef?.kind === 'registry' && cacheRef.registry === registry;
  const ztocCache =
    cacheText !== undefined
      ? await openZtocCache(cacheText, values as Parameters<typeof openZtocCache>[1], cacheHere ? credentials : undefined)
      : undefined;
  if (ztocCache) build.ztocCache = ztocCache;
  const excludeRepositories = cacheHere && cacheRef?.kind === 'registry' ? [cacheRef.repository] : [];

  const progress = new SyncProgress(values.json === true && !process.stderr.isTTY);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  const options: SyncOptions = {
    filters,
    build,
    prune: values.prune === true,
    excludeRepositories,
    signal: controller.signal,
    onEvent: progress.handle,
  };
  try {
    const plan = await planSync(listing, options);
    const dryRun = values['dry-run'] === true;
    if (!dryRun && !values.json) {
      progress.finish();
      console.error(formatPlan(plan.items));
    }
    const result = dryRun ? summarize(plan, []) : await runSync(listing, plan, options);
    progress.finish();
    if (values.json)
      console.log(
        JSON.stringify(
          { dryRun, ok: result.ok, counts: result.counts, failures: result.failures, plan: result.plan, results: result.results },
          null,
          2,
        ),
      );
    else {
      if (dryRun) console.log(formatPlan(plan.items));
      console.log(formatSummary(result, dryRun));
    }
    return result.ok ? 0 : 1;
  } catch (err) {
    // A read stopped by the interrupt fails with a generic abort error; say why it stopped.
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    progress.finish();
    process.off('SIGINT', onSignal);
  }
}
