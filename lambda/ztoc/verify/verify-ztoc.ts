// The verifier's entry point: plan, read the layer, compare.
import { compressionNamed } from '../compression/table.ts';
import type { Ztoc } from '../types.ts';
import { compareEntries, compareFiles, readLayer, readUncompressed } from './passes.ts';
import { TarWalker } from './tar.ts';
import type { LayerSource, VerifyReport } from './types.ts';

/**
 * Verifies a zTOC against its layer like a consumer would, plus a full extraction check.
 * `layer` is called once per pass (twice for a compressed layer) and must yield the layer blob's bytes in order.
 */
export async function verifyZtoc(
  layer: LayerSource,
  ztoc: Ztoc,
  options: { onProgress?: (msg: string) => void } = {},
): Promise<VerifyReport> {
  const progress = options.onProgress ?? (() => {});
  const problems: string[] = [];
  // The zTOC's algorithm says how to plan, extract and decompress (compression/table.ts).
  const method = compressionNamed(ztoc.compressionAlgorithm).verify;
  if (ztoc.spanDigests.length !== ztoc.maxSpanId + 1) {
    problems.push(`${ztoc.spanDigests.length} span digests for max_span_id ${ztoc.maxSpanId}`);
  }
  const plan = method.plan(ztoc, problems);
  const walker = new TarWalker();

  progress(`pass 1: ${plan?.spanRanges.length ?? 0} span digests, extracting ${plan?.sourceOf.size ?? 0} files`);
  const pass = await readLayer(layer, plan, walker, !method.decompress);
  if (pass.layerSize !== ztoc.compressedArchiveSize) {
    problems.push(`compressed_archive_size ${ztoc.compressedArchiveSize} but the layer is ${pass.layerSize} bytes`);
  }
  pass.spanDigests.forEach((hex, i) => {
    const expected = ztoc.spanDigests[i];
    const got = hex === null ? 'nothing (the range lies outside the layer)' : `sha256:${hex}`;
    if (expected !== undefined && got !== expected) problems.push(`span ${i} digest mismatch: expected ${expected} got ${got}`);
  });
  if (plan) method.checkPrefix?.(pass.prefix, plan, problems);
  if (method.decompress) {
    progress('pass 2: decompressing the layer and walking the tar stream');
    await readUncompressed(layer, method.decompress, plan, walker, problems);
  }

  compareEntries(ztoc, walker, problems);
  const filesChecked = compareFiles(ztoc, plan, pass, walker, problems);
  const spans = pass.spanDigests.length;
  progress(problems.length === 0 ? `OK: ${spans} spans, ${filesChecked} files` : `${problems.length} problems`);
  return { spans, filesChecked, problems };
}
