// The completion event pipelines wait for: which SOCI-enabled tag/digest to deploy for a pushed image,
// or why there is none. Sent with EventBridge PutEvents to SOCI_EVENT_BUS.
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { type BuildResult, type BuildStatus, type IndexVersion, type SkipCode, SociError } from '../soci/types.ts';
import { awsError } from './aws-errors.ts';

export const COMPLETION_SOURCE = 'soci-indexer';

export type CompletionDetailType = 'SOCI Index Created' | 'SOCI Index Skipped' | 'SOCI Index Failed';

export interface LayerOutcome {
  platform: string;
  digest: string;
  size: number;
  /** Set when the layer got a zTOC. */
  ztocDigest: string | null;
  /** How it got it: built from the layer, or reused from the zTOC cache (the layer was not read); null otherwise. */
  ztoc: 'built' | 'reused' | null;
  /** Set when the layer was skipped: for people. */
  skipReason: string | null;
  /** Set when the layer was skipped: the stable code (README "Layers that get no zTOC"). */
  skipCode: SkipCode | null;
}

/** The event's `detail`. Absent values are `null` so every event has the same shape. */
export interface CompletionDetail {
  /**
   * The core's status (`superseded` also when the tag moved during the build, nothing tagged); `superseded` /
   * `deleted` when the tag had moved on or vanished before the build; `failed`.
   */
  status: BuildStatus | 'superseded' | 'deleted' | 'failed';
  repository: string;
  sourceDigest: string;
  sourceTag: string | null;
  /** v2: the tag of the SOCI-enabled image index; v1: null (found through the referrers API). */
  outputTag: string | null;
  /** v2: the SOCI-enabled image index; v1: the SOCI index manifest. */
  outputDigest: string | null;
  indexVersion: IndexVersion;
  platforms: string[];
  layers: LayerOutcome[];
  durationMs: number;
  /** Why nothing was created (skipped and failed events). */
  reason: string | null;
  /** Failed events only: true when Lambda will retry the push event. */
  retryable?: boolean;
}

export interface Completion {
  detailType: CompletionDetailType;
  detail: CompletionDetail;
}

export interface SourceImage {
  repository: string;
  digest: string;
  tag?: string;
}

function sourceFields(source: SourceImage) {
  return { repository: source.repository, sourceDigest: source.digest, sourceTag: source.tag ?? null };
}

export function completionFromResult(source: SourceImage, result: BuildResult, durationMs: number): Completion {
  const created = result.status === 'created';
  return {
    detailType: created ? 'SOCI Index Created' : 'SOCI Index Skipped',
    detail: {
      status: result.status,
      ...sourceFields(source),
      outputTag: result.output?.tags[0] ?? null,
      outputDigest: result.output?.digest ?? null,
      indexVersion: result.indexVersion,
      platforms: result.platforms.map((p) => p.platform),
      layers: result.platforms.flatMap((p) =>
        p.layers.map((l) => ({
          platform: p.platform,
          digest: l.digest,
          size: l.size,
          ztocDigest: l.ztocDigest ?? null,
          ztoc: l.ztoc ?? null,
          skipReason: l.status === 'skipped' ? (l.reason ?? 'skipped') : null,
          skipCode: l.skipCode ?? null,
        })),
      ),
      durationMs: Math.round(durationMs),
      reason: created ? null : result.message,
    },
  };
}

/** Failed (with `retryable`), or skipped before the core ran because the tag moved on or is gone. */
export function completionWithoutBuild(
  source: SourceImage,
  indexVersion: IndexVersion,
  outcome: { status: 'superseded' | 'deleted'; reason: string } | { status: 'failed'; error: SociError },
  durationMs: number,
): Completion {
  const failed = outcome.status === 'failed';
  return {
    detailType: failed ? 'SOCI Index Failed' : 'SOCI Index Skipped',
    detail: {
      status: outcome.status,
      ...sourceFields(source),
      outputTag: null,
      outputDigest: null,
      indexVersion,
      platforms: [],
      layers: [],
      durationMs: Math.round(durationMs),
      reason: failed ? outcome.error.message : outcome.reason,
      ...(failed ? { retryable: outcome.error.kind === 'transient' } : {}),
    },
  };
}

/** Sends one completion event; a rejected entry is a transient failure (the push event is retried). */
export async function publishCompletion(client: EventBridgeClient, eventBus: string, completion: Completion): Promise<string | undefined> {
  let response;
  try {
    response = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: eventBus,
            Source: COMPLETION_SOURCE,
            DetailType: completion.detailType,
            Detail: JSON.stringify(completion.detail),
          },
        ],
      }),
    );
  } catch (err) {
    throw awsError('events:PutEvents', err);
  }
  const entry = response.Entries?.[0];
  if ((response.FailedEntryCount ?? 0) > 0 || entry?.ErrorCode) {
    throw new SociError(
      'transient',
      `events:PutEvents rejected the completion event (${entry?.ErrorCode ?? 'unknown'}: ${entry?.ErrorMessage ?? 'no message'})`,
    );
  }
  return entry?.EventId;
}
