// `soci-indexer ztoc build|info|verify`: the zTOC engine on local files.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { LimitExceededError } from '../oci/errors.ts';
import { DEFAULTS } from '../soci/defaults.ts';
import { buildZtoc, type CompressionChoice } from '../ztoc/builder.ts';
import { parseZtoc } from '../ztoc/codec.ts';
import { compressionNamed, compressions, magicHex } from '../ztoc/compression/table.ts';
import { type FileMetadata, type Ztoc, ZtocError } from '../ztoc/types.ts';
import { formatBytes, formatRate, oneOf, parseInteger, StatusLine, UsageError, writeFileAtomic } from './common.ts';

const COMPRESSIONS = ['auto', ...compressions().map((c) => c.name)];
const DETECTED = compressions().flatMap((c) => (c.magic ? [`${c.name} if the file starts with ${magicHex(c)}`] : []));

export const ZTOC_USAGE = `Usage:
  soci-indexer ztoc build <layer-file> -o <out.ztoc> [--span-size N] [--compression ${COMPRESSIONS.join('|')}]
                          [--build-tool-id ID] [--json]
  soci-indexer ztoc info <file.ztoc> [--json]
  soci-indexer ztoc verify <layer-file> <file.ztoc> [--json]

  build   reads the layer once and writes its zTOC (the file is only written when the build succeeds)
          --span-size N        uncompressed bytes between checkpoints (default ${DEFAULTS.spanSize})
          --compression C      auto (default: ${DETECTED.join(', ')}, else tar), ${COMPRESSIONS.slice(1).join(', ')}
          --build-tool-id ID   build tool identifier stored in the zTOC (default "${DEFAULTS.buildToolId}";
                               soci's own CLI writes "AWS SOCI CLI v0.2")
  info    prints a summary of a zTOC (--json: every field)
  verify  checks a zTOC against its layer independently of the builder: every span digest, and every
          regular file extracted from its checkpoint compared with the tar content`;

const LAYER_CHUNK = 1 << 20;
const TOC_WORKER_MIN_LAYER = 64 << 20;

function openLayer(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: LAYER_CHUNK });
}

async function requireFile(path: string, what: string): Promise<number> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new UsageError(`${what} ${path} is not a regular file`);
    return s.size;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export async function ztocCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'build':
      return ztocBuild(rest);
    case 'info':
      return ztocInfo(rest);
    case 'verify':
      return ztocVerify(rest);
    case undefined:
    case '-h':
    case '--help':
      console.log(ZTOC_USAGE);
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown ztoc command ${JSON.stringify(sub)}`);
  }
}

async function ztocBuild(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      'span-size': { type: 'string' },
      compression: { type: 'string' },
      'build-tool-id': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('ztoc build takes exactly one layer file');
  if (!values.output) throw new UsageError('ztoc build needs -o <out.ztoc>');
  const layer = positionals[0]!;
  const spanSize = parseInteger('--span-size', values['span-size'], 1) ?? DEFAULTS.spanSize;
  const compression: CompressionChoice = oneOf('--compression', values.compression, COMPRESSIONS) ?? 'auto';
  const size = await requireFile(layer, 'layer');

  const status = new StatusLine();
  const started = Date.now();
  const outcome = await buildZtoc(openLayer(layer), {
    spanSize,
    compression,
    buildToolId: values['build-tool-id'] ?? DEFAULTS.buildToolId,
    // One layer has no other parallelism: parse its tar on a second core when it is big enough to pay.
    sizeHint: size,
    tocWorker: size >= TOC_WORKER_MIN_LAYER,
    onProgress: (read) =>
      status.update(
        `indexing ${layer}: ${formatBytes(read)} / ${formatBytes(size)} (${Math.floor((read / Math.max(size, 1)) * 100)}%) ${formatRate(read, Date.now() - started)}`,
      ),
  });
  status.clear();
  if (!outcome.indexable) {
    const message = `cannot index ${layer} (${outcome.code}): ${outcome.reason}`;
    // Past a limit: the one error type for input beyond a documented limit (backends use it too).
    throw outcome.code === 'limit-exceeded'
      ? new LimitExceededError(outcome.limit ?? 'ztoc', message)
      : new ZtocError(outcome.code, message);
  }
  await writeFileAtomic(values.output, outcome.bytes);
  const ms = Date.now() - started;
  if (values.json) {
    console.log(JSON.stringify({ ...outcome.summary, output: values.output, durationMs: ms }, null, 2));
  } else {
    console.log(`${outcome.summary.digest} ${outcome.summary.size}`);
    if (process.stderr.isTTY) {
      const s = outcome.summary;
      console.error(
        `${s.compression} layer, ${s.entries} entries, ${s.spans} spans, ${formatBytes(s.compressedSize)} -> ${formatBytes(s.uncompressedSize)} in ${(ms / 1000).toFixed(2)} s (${formatRate(s.compressedSize, ms)})`,
      );
    }
  }
  return 0;
}

async function readZtocFile(path: string): Promise<{ bytes: Uint8Array; ztoc: Ztoc }> {
  await requireFile(path, 'zTOC');
  const bytes = await readFile(path);
  return { bytes, ztoc: parseZtoc(bytes) };
}

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');

function entryJson(e: FileMetadata) {
  return {
    name: text(e.name),
    type: e.type,
    uncompressedOffset: e.uncompressedOffset,
    uncompressedSize: e.uncompressedSize,
    linkname: text(e.linkname),
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    uname: text(e.uname),
    gname: text(e.gname),
    modTime: e.modTime,
    devmajor: e.devmajor,
    devminor: e.devminor,
    xattrs: Object.fromEntries(e.xattrs.map((x) => [text(x.key), text(x.value)])),
  };
}

function zinfoJson(z: Ztoc) {
  return compressionNamed(z.compressionAlgorithm).describeCheckpoints(z.checkpoints);
}

async function ztocInfo(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length !== 1) throw new UsageError('ztoc info takes exactly one zTOC file');
  const { bytes, ztoc } = await readZtocFile(positionals[0]!);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const zinfo = zinfoJson(ztoc);
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          digest,
          size: bytes.length,
          version: ztoc.version,
          buildToolIdentifier: ztoc.buildToolIdentifier,
          compressedArchiveSize: ztoc.compressedArchiveSize,
          uncompressedArchiveSize: ztoc.uncompressedArchiveSize,
          compressionAlgorithm: ztoc.compressionAlgorithm,
          maxSpanId: ztoc.maxSpanId,
          spanDigests: ztoc.spanDigests,
          zinfo,
          entries: ztoc.toc.map(entryJson),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const counts = new Map<string, number>();
  for (const e of ztoc.toc) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
  const lines = [
    `digest:              ${digest}`,
    `size:                ${bytes.length} bytes`,
    `version:             ${ztoc.version}`,
    `build tool:          ${ztoc.buildToolIdentifier}`,
    `compression:         ${ztoc.compressionAlgorithm}`,
    `span size:           ${zinfo.spanSize}`,
    `spans:               ${ztoc.maxSpanId + 1}`,
    `compressed size:     ${ztoc.compressedArchiveSize} (${formatBytes(ztoc.compressedArchiveSize)})`,
    `uncompressed size:   ${ztoc.uncompressedArchiveSize} (${formatBytes(ztoc.uncompressedArchiveSize)})`,
    `entries:             ${ztoc.toc.length} (${[...counts].map(([t, n]) => `${n} ${t}`).join(', ') || 'none'})`,
  ];
  console.log(lines.join('\n'));
  return 0;
}

async function ztocVerify(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length !== 2) throw new UsageError('ztoc verify takes a layer file and a zTOC file');
  const [layer, ztocPath] = positionals as [string, string];
  await requireFile(layer, 'layer');
  const { ztoc } = await readZtocFile(ztocPath);
  const { verifyZtoc } = await import('../ztoc/verify/index.ts'); // only this command needs the verifier
  const status = new StatusLine();
  const report = await verifyZtoc(() => openLayer(layer), ztoc, { onProgress: (msg) => status.update(msg) });
  status.clear();
  const ok = report.problems.length === 0;
  if (values.json) {
    console.log(JSON.stringify({ ok, ...report }, null, 2));
  } else if (ok) {
    console.log(`OK: ${report.spans} spans verified, ${report.filesChecked} regular files extracted via checkpoints and matched`);
  } else {
    for (const p of report.problems) console.log(`FAIL: ${p}`);
    console.log(`${report.problems.length} problem(s) found in ${ztocPath}`);
  }
  return ok ? 0 : 1;
}
