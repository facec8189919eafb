// Consumer-side check of a zTOC against its layer (docs/format.md §3.4, §4.7). Deliberately independent
// of the builder: span digests are recomputed from the checkpoints, every regular file is extracted the
// way the snapshotter does it (raw inflate from its span's checkpoint, here with pako instead of native
// zlib), and the expected entries come from our own minimal tar walk over a plain gunzip of the layer.
// Memory stays bounded: the layer is streamed, never held.
// One file per part: range-hasher, gzip framing, extraction from a checkpoint, tar walk, plan, passes.
export type { LayerSource, VerifyReport } from './types.ts';
export { verifyZtoc } from './verify-ztoc.ts';
