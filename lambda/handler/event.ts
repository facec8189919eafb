// Validation of the EventBridge "ECR Image Action" event. Lambda hands us whatever the rule (or a person
// testing the function) sent, so nothing is trusted: the result says whether this is a push we should
// look at, an event of another kind (ignored quietly), or a malformed one (logged and dropped).
import { isEcrRepositoryName, isRegisteredDigest, isTag } from '../oci/reference.ts';

/** The detail of a successful ECR push, with the fields we use. */
export interface EcrPush {
  /** The event id, for correlating logs with EventBridge. */
  eventId?: string;
  account?: string;
  region?: string;
  repository: string;
  digest: string;
  /** Undefined for an untagged push (ECR sends the field absent or as ""). */
  tag?: string;
  manifestMediaType?: string;
  artifactMediaType?: string;
}

export type EventCheck =
  | { kind: 'push'; push: EcrPush }
  /** A well-formed event that is not a successful ECR push (other source, scan, delete, failure). */
  | { kind: 'foreign'; reason: string }
  | { kind: 'malformed'; problems: string[] };

const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Shortens untrusted values quoted in log lines. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function checkEvent(event: unknown): EventCheck {
  if (!isRecord(event))
    return { kind: 'malformed', problems: [`event is ${Array.isArray(event) ? 'an array' : show(event)}, not an object`] };
  if (event.source !== 'aws.ecr') return { kind: 'foreign', reason: `source ${show(event.source)} is not "aws.ecr"` };
  if (event['detail-type'] !== 'ECR Image Action') {
    return { kind: 'foreign', reason: `detail-type ${show(event['detail-type'])} is not "ECR Image Action"` };
  }
  const detail = event.detail;
  if (!isRecord(detail)) return { kind: 'malformed', problems: ['detail is missing or not an object'] };
  if (detail['action-type'] !== 'PUSH') return { kind: 'foreign', reason: `action-type ${show(detail['action-type'])} is not "PUSH"` };
  if (detail.result !== 'SUCCESS') return { kind: 'foreign', reason: `result ${show(detail.result)} is not "SUCCESS"` };

  const problems: string[] = [];
  const repository = detail['repository-name'];
  if (typeof repository !== 'string')
    problems.push(`detail.repository-name is ${repository === undefined ? 'missing' : `not a string (${show(repository)})`}`);
  else if (!isEcrRepositoryName(repository)) problems.push(`detail.repository-name ${show(repository)} is not a repository name`);

  const digest = detail['image-digest'];
  if (typeof digest !== 'string')
    problems.push(`detail.image-digest is ${digest === undefined ? 'missing' : `not a string (${show(digest)})`}`);
  else if (!isRegisteredDigest(digest)) problems.push(`detail.image-digest ${show(digest)} is not a sha256 digest`);

  const tag = detail['image-tag'];
  if (tag !== undefined && tag !== null && typeof tag !== 'string') problems.push(`detail.image-tag is not a string (${show(tag)})`);
  else if (typeof tag === 'string' && tag !== '' && !isTag(tag)) problems.push(`detail.image-tag ${show(tag)} is not a tag`);

  const mediaTypes: Record<'manifest-media-type' | 'artifact-media-type', string | undefined> = {
    'manifest-media-type': undefined,
    'artifact-media-type': undefined,
  };
  for (const field of Object.keys(mediaTypes) as (keyof typeof mediaTypes)[]) {
    const value = detail[field];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !MEDIA_TYPE.test(value)) problems.push(`detail.${field} ${show(value)} is not a media type`);
    else mediaTypes[field] = value;
  }

  const optional = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  if (problems.length > 0) return { kind: 'malformed', problems };
  return {
    kind: 'push',
    push: {
      eventId: optional(event.id),
      account: optional(event.account),
      region: optional(event.region),
      repository: repository as string,
      digest: digest as string,
      tag: optional(tag),
      manifestMediaType: mediaTypes['manifest-media-type'],
      artifactMediaType: mediaTypes['artifact-media-type'],
    },
  };
}
