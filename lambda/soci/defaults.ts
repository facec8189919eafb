// The one home of the build defaults. The core, the Lambda handler's configuration, the CLI (and its help
// text), sync and the CDK construct all read them here, so a default is changed in this file alone. A leaf
// module on purpose: the construct imports it without pulling the engine into the CDK app.
import { DEFAULT_BUILD_TOOL_ID, DEFAULT_SPAN_SIZE } from '../ztoc/types.ts';

export const DEFAULTS = {
  /** Uncompressed bytes between two checkpoints (4 MiB, as soci-snapshotter). */
  spanSize: DEFAULT_SPAN_SIZE,
  /** Layers smaller than this get no zTOC (10 MiB, as soci-snapshotter). */
  minLayerSize: 10_485_760,
  indexVersion: 'v2',
  /** The output tag is `<source tag><tagSuffix>`. */
  tagSuffix: '-soci',
  /** Off: the output gets its own tag and the source tag is left alone. */
  inPlace: false,
  platforms: 'all',
  buildToolId: DEFAULT_BUILD_TOOL_ID,
  /** The Lambda handler stops pushing this long before its timeout. */
  deadlineMarginMs: 15_000,
  /** The handler's repository filter when none is configured (as AWS's SOCI Index Builder). */
  repositoryFilters: '*:*',
} as const;
