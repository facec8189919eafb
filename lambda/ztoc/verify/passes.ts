// The passes over the layer and the comparisons of what they saw with the zTOC.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { VerifyMethod } from '../compression/algorithm.ts';
import { sameBytes } from '../toc-table.ts';
import type { Checkpoint, Ztoc } from '../types.ts';
import { concatBytes, gzipHeaderLength } from './gzip.ts';
import { display, type Extraction, message, type Plan } from './plan.ts';
import { RangeHasher } from './range-hasher.ts';
import type { TarWalker } from './tar.ts';
import type { LayerSource } from './types.ts';

export function compareEntries(ztoc: Ztoc, walker: TarWalker, problems: string[]): void {
  const tar = walker.entries;
  if (walker.error) problems.push(`tar stream: ${walker.error}`);
  if (ztoc.toc.length !== tar.length) problems.push(`TOC lists ${ztoc.toc.length} entries but the tar stream has ${tar.length}`);
  for (let i = 0; i < Math.min(ztoc.toc.length, tar.length); i++) {
    const [m, t] = [ztoc.toc[i]!, tar[i]!];
    const label = `entry ${display(m.name)}`;
    if (!sameBytes(m.name, t.name)) problems.push(`${label}: the tar entry at position ${i} is named ${display(t.name)}`);
    if (m.type !== t.type) problems.push(`${label}: type ${m.type} but the tar entry is ${t.type}`);
    if (m.uncompressedOffset !== t.offset) {
      problems.push(`${label}: uncompressed_offset ${m.uncompressedOffset} but its data starts at ${t.offset}`);
    }
    if (m.uncompressedSize !== t.size) problems.push(`${label}: uncompressed_size ${m.uncompressedSize} but the tar entry has ${t.size}`);
    if (!sameBytes(m.linkname, t.linkname))
      problems.push(`${label}: linkname ${display(m.linkname)} but the tar entry has ${display(t.linkname)}`);
  }
  if (walker.end !== null && walker.end !== ztoc.uncompressedArchiveSize) {
    problems.push(`uncompressed_archive_size ${ztoc.uncompressedArchiveSize} but the tar stream ends at ${walker.end}`);
  }
}

export interface LayerPass {
  layerSize: number;
  spanDigests: (string | null)[];
  /** The layer bytes before the first span (`plan.prefixEnd` of them). */
  prefix: Uint8Array;
  /** Extracted sha256 per TOC entry index (null when extraction did not finish). */
  extracted: Map<number, string | null>;
  unfinished: Map<number, string>;
}

/**
 * Pass 1, over the layer blob: span digests, the prefix, extractions from checkpoints, slices; and the tar
 * walk when the blob is itself the tar stream (`walkTar`).
 */
export async function readLayer(layer: LayerSource, plan: Plan | null, walker: TarWalker, walkTar: boolean): Promise<LayerPass> {
  const spanHasher = new RangeHasher(plan?.spanRanges ?? []);
  const sliceHasher = new RangeHasher(plan?.slices ?? []);
  const prefixEnd = plan?.prefixEnd ?? 0;
  let prefix: Uint8Array = new Uint8Array(0);
  const extractions = plan?.extractions ?? [];
  let nextExtraction = 0;
  let active: Extraction[] = [];
  let layerSize = 0;
  for await (const chunk of layer()) {
    const pos = layerSize;
    layerSize += chunk.length;
    spanHasher.update(pos, chunk);
    sliceHasher.update(pos, chunk);
    if (walkTar) walker.push(chunk);
    if (pos < prefixEnd) prefix = concatBytes(prefix, chunk.subarray(0, prefixEnd - pos));
    while (nextExtraction < extractions.length && extractions[nextExtraction]!.startByte < layerSize) {
      active.push(extractions[nextExtraction++]!);
    }
    for (const extraction of active) extraction.feed(chunk, pos);
    active = active.filter((e) => !e.done);
  }
  if (walkTar) walker.finish();

  const extracted = new Map<number, string | null>();
  const unfinished = new Map<number, string>();
  const sliceDigests = sliceHasher.finish();
  for (const [i, f] of (plan?.slices ?? []).entries()) extracted.set(f.entry, sliceDigests[i] ?? null);
  for (const extraction of extractions) {
    const digests = extraction.hasher.finish();
    extraction.files.forEach((f, i) => {
      extracted.set(f.entry, digests[i] ?? null);
      if (digests[i] == null) unfinished.set(f.entry, extraction.unfinishedReason());
    });
  }
  return { layerSize, spanDigests: spanHasher.finish(), prefix, extracted, unfinished };
}

export function checkGzipHeader(header: Uint8Array, checkpoint0: Checkpoint, problems: string[]): void {
  try {
    const length = gzipHeaderLength(header);
    if (length !== checkpoint0.in) {
      const actual = length === 0 ? 'longer than that' : `${length} bytes long`;
      problems.push(`gzip header: checkpoint 0 is at in=${checkpoint0.in} but the gzip header is ${actual}`);
    }
  } catch (err) {
    problems.push(`gzip header: layer bytes [0, ${checkpoint0.in}) are not a gzip header (${message(err)})`);
  }
}

/** Pass 2, for a compressed layer: the tar walk over an independent full decompression, and the checkpoint windows. */
export async function readUncompressed(
  layer: LayerSource,
  decompress: NonNullable<VerifyMethod['decompress']>,
  plan: Plan | null,
  walker: TarWalker,
  problems: string[],
): Promise<void> {
  const windowHasher = new RangeHasher(plan?.windowRanges ?? []);
  await decompress(layer, problems, (pos, chunk) => {
    windowHasher.update(pos, chunk);
    walker.push(chunk);
  });
  walker.finish();
  windowHasher.finish().forEach((hex, i) => {
    const cp = plan!.checkpoints[i]!;
    const expected = createHash('sha256').update(cp.window).digest('hex');
    if (hex !== expected) problems.push(`checkpoint ${i} window differs from the 32 KiB of uncompressed data before out=${cp.out}`);
  });
}

/** Compares extracted contents with the tar walk's; returns how many files were compared. */
export function compareFiles(ztoc: Ztoc, plan: Plan | null, pass: LayerPass, walker: TarWalker, problems: string[]): number {
  let filesChecked = 0;
  for (const [entry, got] of pass.extracted) {
    const name = display(ztoc.toc[entry]!.name);
    const source = plan!.sourceOf.get(entry)!;
    if (got === null) {
      problems.push(`file ${name}: could not be extracted from ${source}: ${pass.unfinished.get(entry) ?? 'it lies outside the layer'}`);
      continue;
    }
    const expected = walker.entries[entry]?.sha256;
    if (expected == null) continue; // no tar data to compare with; compareEntries reported why
    filesChecked++;
    if (got !== expected) problems.push(`file ${name}: content differs when extracted from ${source}`);
  }
  return filesChecked;
}

/** Streams the gunzipped layer into `sink`; a decompression failure is a problem, a read failure is thrown. */
export async function gunzipInto(layer: LayerSource, problems: string[], sink: (pos: number, chunk: Uint8Array) => void): Promise<void> {
  let readError: unknown = null;
  async function* source(): AsyncIterable<Uint8Array> {
    try {
      yield* layer();
    } catch (err) {
      readError = err;
      throw err;
    }
  }
  let pos = 0;
  try {
    await pipeline(source(), createGunzip(), async (chunks: AsyncIterable<Uint8Array>) => {
      for await (const chunk of chunks) {
        sink(pos, chunk);
        pos += chunk.length;
      }
    });
  } catch (err) {
    if (readError !== null) throw readError;
    problems.push(`layer does not decompress: ${message(err)}`);
  }
}
