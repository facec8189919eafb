// Exact soci/zran gzip checkpoints with Node's native zlib doing the bulk inflate.
//
// soci-snapshotter records a checkpoint at a deflate block boundary (zlib `inflate(Z_BLOCK)` stops) when
// more than `span` uncompressed bytes were produced since the previous one, never after a member's final
// block, with the exact number of unused bits of the boundary byte. Node's zlib stops at the same
// boundaries but does not report `data_type` (the bits) nor finality, so (rule: docs/format.md §3.2; method: docs/design.md):
//  - the gzip framing (headers, trailers, members) is parsed here and the native handle inflates raw;
//  - finality: a stop is a checkpoint candidate until the *next* native call makes progress (after the
//    final block the next call is a no-op because zlib is done);
//  - bits: settled per checkpoint with a software decoder, first by a forward probe (which of the 8
//    possible starts reproduces the real output), else by decoding the block that ends there;
//  - a native return that ran out of input or output room might hide a boundary: when a checkpoint would
//    be due there, the block is decoded in software to find out ("suspect" returns).
// Nothing is guessed: any ambiguity that cannot be settled throws.

import { createHash, type Hash } from 'node:crypto';
import zlib from 'node:zlib';
import { limitsWith, type ZtocLimits } from './limits.ts';
import { keepShape } from './shapes.ts';
import { releaseSoftInflater, SoftInflater, type SoftSlot, Z_BUF_ERROR, Z_STREAM_END } from './soft-inflate.ts';
import { type Checkpoint, WINDOW_SIZE, ZtocError } from './types.ts';

const Z_BLOCK = zlib.constants.Z_BLOCK;

export interface GzipIndexOptions {
  spanSize: number;
  /** Compressed bytes kept ahead of the inflate position (fewer hidden boundaries). @default 4 MiB */
  lookahead?: number;
  /**
   * Output room offered to each native call. A block larger than this (only highly compressible data
   * makes them) costs a software decode when a checkpoint is due inside it. @default 4 MiB
   */
  outputRoom?: number;
  /**
   * Who checks each member's CRC-32: this function (default), or the consumer of the output, which then
   * gets every member's stored CRC-32 through `onMemberEnd` (e.g. to compute it on another thread).
   */
  onMemberEnd?: (storedCrc: number, endOffset: number) => void;
  /** The engine's limits (checkpoints, header size, retained block output); defaults: DEFAULT_LIMITS. */
  limits?: Partial<ZtocLimits>;
  /** Caps per native call, only for tests that force the rare code paths. */
  maxCallInput?: number;
  maxCallOutput?: number;
}

export interface GzipIndexResult {
  checkpoints: Checkpoint[];
  spanDigests: string[];
  compressedSize: number;
  uncompressedSize: number;
  members: number;
  /** How bits were settled, for diagnostics and tests of the rare paths. */
  stats: { probes: number; backwardSteps: number; suspects: number; followSteps: number };
}

/** A native stop: compressed bytes consumed `B`, output `O`, exact bit position `pos` once known. */
interface Stop {
  B: number;
  O: number;
  pos?: number;
  /** A stop that ends a followed block: the follower that can still settle `pos` (see `follow`). */
  follower?: Follower;
}

/** Readings of a block followed in software from stop `from`, all at (B, O) so far. */
interface Follower {
  from: Stop;
  B: number;
  O: number;
  readings: SoftInflater[];
}

interface PendingCheckpoint {
  cp: Checkpoint;
  stop: Stop;
  prev: Stop;
}

const PROBE_BYTES = 2048;

/** Growable byte buffer over an absolute offset range [base, base + length). */
class SlidingBuffer {
  buf: Buffer;
  base = 0;
  length = 0;

  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  get end(): number {
    return this.base + this.length;
  }

  /** Makes room for `extra` more bytes, dropping everything before `keepFrom`. */
  reserve(extra: number, keepFrom: number): void {
    if (this.buf.length - this.length >= extra) return;
    const drop = Math.max(0, Math.min(keepFrom, this.end) - this.base);
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.length);
      this.base += drop;
      this.length -= drop;
    }
    if (this.buf.length - this.length < extra) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + extra));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
  }

  append(chunk: Uint8Array, keepFrom: number): void {
    this.reserve(chunk.length, keepFrom);
    this.buf.set(chunk, this.length);
    this.length += chunk.length;
  }

  at(pos: number): number {
    return this.buf[pos - this.base]!;
  }

  view(from: number, to: number): Buffer {
    if (from < this.base || to > this.end) throw new Error(`internal: bytes [${from},${to}) not retained`);
    return this.buf.subarray(from - this.base, to - this.base);
  }
}

class InputReader {
  readonly data: SlidingBuffer;
  eof = false;
  private readonly iterator: AsyncIterator<Uint8Array>;

  /** `room`: the lookahead, a source chunk and the current block. */
  constructor(source: AsyncIterable<Uint8Array>, room = 6 << 20) {
    this.data = new SlidingBuffer(room);
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Reads until at least `end` (absolute) is buffered or the source ends. */
  async fill(end: number, keepFrom: number): Promise<void> {
    while (!this.eof && this.data.end < end) {
      const next = await this.iterator.next();
      if (next.done) this.eof = true;
      else if (next.value.length > 0) this.data.append(next.value, keepFrom);
    }
  }

  async close(): Promise<void> {
    if (!this.eof) await this.iterator.return?.();
  }
}
keepShape(new InputReader((async function* () {})(), 0)); // also anchors SlidingBuffer

/**
 * Parses a gzip member header at `pos`; returns its length, or -1 when more bytes are needed. A header
 * longer than `maxLength` (a FNAME or FCOMMENT without its NUL, say) is refused.
 */
function gzipHeaderLength(data: SlidingBuffer, pos: number, maxLength: number): number {
  const end = Math.min(data.end, pos + maxLength + 1);
  const need = (n: number) => pos + n <= end;
  if (!need(10)) return -1;
  if (data.at(pos) !== 0x1f || data.at(pos + 1) !== 0x8b) {
    throw new ZtocError('bad-gzip', `not a gzip member at offset ${pos} (bad magic bytes)`);
  }
  if (data.at(pos + 2) !== 8) {
    throw new ZtocError('bad-gzip', `unknown gzip compression method ${data.at(pos + 2)} at offset ${pos}`);
  }
  const flags = data.at(pos + 3);
  if (flags & 0xe0) throw new ZtocError('bad-gzip', `reserved gzip header flags set at offset ${pos}`);
  let n = 10;
  if (flags & 4) {
    if (!need(n + 2)) return -1;
    n += 2 + (data.at(pos + n) | (data.at(pos + n + 1) << 8));
    if (!need(n)) return -1;
  }
  for (const flag of [8, 16]) {
    if (flags & flag) {
      for (;;) {
        if (!need(n + 1)) return -1;
        if (data.at(pos + n++) === 0) break;
      }
    }
  }
  if (flags & 2) {
    if (!need(n + 2)) return -1;
    const stored = data.at(pos + n) | (data.at(pos + n + 1) << 8);
    if ((zlib.crc32(data.view(pos, pos + n)) & 0xffff) !== stored) {
      throw new ZtocError('bad-gzip', `gzip header CRC mismatch at offset ${pos}`);
    }
    n += 2;
  }
  if (n > maxLength) throw headerTooLong(pos, maxLength);
  return n;
}

function headerTooLong(pos: number, maxLength: number): ZtocError {
  return new ZtocError(
    'limit-exceeded',
    `gzip header at offset ${pos} is longer than ${maxLength} bytes (limit gzipHeaderBytes)`,
    'gzipHeaderBytes',
  );
}

/**
 * Inflates a gzip stream once, passing every uncompressed chunk to `sink` (in order; the chunk is only
 * valid during the call), and returns soci's checkpoints and span digests.
 */
export async function indexGzip(
  source: AsyncIterable<Uint8Array>,
  sink: (chunk: Uint8Array) => void | Promise<void>,
  options: GzipIndexOptions,
): Promise<GzipIndexResult> {
  const span = options.spanSize;
  const lookahead = options.lookahead ?? 4 << 20;
  const outputRoom = options.outputRoom ?? 4 << 20;
  const maxCallInput = options.maxCallInput ?? Infinity;
  const maxCallOutput = options.maxCallOutput ?? Infinity;
  const limits = limitsWith(options.limits);

  const input = new InputReader(source);
  const inb = input.data;
  // Room for one native call plus what is usually retained (the current block and a window).
  const outb = new SlidingBuffer(outputRoom + (1 << 20));
  const stats = { probes: 0, backwardSteps: 0, suspects: 0, followSteps: 0 };

  const stream = zlib.createInflateRaw();
  const handle = (stream as unknown as { _handle: NativeHandle })._handle;
  const writeState = (stream as unknown as { _writeState: Uint32Array })._writeState;
  let nativeError: string | undefined;
  handle.onerror = (message: string) => {
    nativeError = message;
  };

  let totin = 0;
  let totout = 0;
  let last = 0;
  const checkpoints: Checkpoint[] = [];
  const pending: PendingCheckpoint[] = [];
  let candidate: PendingCheckpoint | undefined;
  let lastStop: Stop = { B: 0, O: 0, pos: 0 };
  let memberStart = 0; // compressed offset of the current member's deflate data

  // Span digests over the compressed bytes; hashing lags behind until a checkpoint's bits are known.
  // (Measured: WebCrypto's asynchronous digest costs the calling thread more than hashing here.)
  const spanDigests: string[] = [];
  let spanHash: Hash | undefined;
  let hashPos = 0;

  const due = (out: number) => out === 0 || out - last > span;

  // Checkpoints are span-driven (each needs more than `span` bytes of output since the previous one),
  // except those at output 0: a layer of empty members would otherwise cost 32 KiB of window each.
  const checkCheckpointCount = (out: number) => {
    const count = checkpoints.length + pending.length + 1;
    const allowed = 1 + Math.floor(out / span) + limits.extraCheckpoints;
    if (count > allowed) {
      throw new ZtocError(
        'limit-exceeded',
        `more than ${allowed} checkpoints by uncompressed offset ${out} with span ${span} ` +
          `(limit extraCheckpoints: ${limits.extraCheckpoints} beyond one per span; empty gzip members or empty deflate blocks?)`,
        'extraCheckpoints',
      );
    }
  };

  const windowBefore = (out: number): Uint8Array => {
    const window = new Uint8Array(WINDOW_SIZE);
    const from = Math.max(0, out - WINDOW_SIZE);
    window.set(outb.view(from, out), WINDOW_SIZE - (out - from));
    return window;
  };

  // What must stay buffered: from the last stop (a software decode may have to start there), or from
  // where the follower of the current block is; for a checkpoint whose bits are not known yet, from the
  // stop before it (the backward step), else from the checkpoint itself (the forward probe).
  const anchor = (): { B: number; O: number } => (follower && follower.from === lastStop ? follower : lastStop);
  const settleFrom = (p: PendingCheckpoint): { B: number; O: number } => (p.stop.pos !== undefined ? p.stop : (p.stop.follower ?? p.prev));
  const inputKeep = () => {
    let keep = Math.min(hashPos, anchor().B - 1);
    if (pending.length > 0) keep = Math.min(keep, settleFrom(pending[0]!).B - 1);
    if (candidate) keep = Math.min(keep, settleFrom(candidate).B - 1);
    return Math.max(0, keep);
  };
  const outputKeep = () => {
    let keep = anchor().O;
    if (pending.length > 0) keep = Math.min(keep, settleFrom(pending[0]!).O);
    if (candidate) keep = Math.min(keep, settleFrom(candidate).O);
    return Math.max(0, keep - WINDOW_SIZE);
  };

  const hashUpTo = (limit: number) => {
    if (spanHash && limit > hashPos) {
      spanHash.update(inb.view(hashPos, limit));
      hashPos = limit;
    }
  };

  /** Appends a checkpoint whose bits are known; span digests advance in order. */
  const commitCheckpoint = (cp: Checkpoint) => {
    if (spanHash) {
      hashUpTo(cp.in);
      spanDigests.push(`sha256:${spanHash.digest('hex')}`);
    }
    spanHash = createHash('sha256');
    // A boundary inside a byte: that byte starts the new span and also ends the previous one.
    hashPos = cp.bits !== 0 ? cp.in - 1 : cp.in;
    checkpoints.push(cp);
  };

  /**
   * Decodes in software from stop `from` to (B, O) and reports where the native position is: an exact
   * bit position if a block boundary lies there, 'through' if it is inside a block. Every start that
   * reproduces the real output must agree; otherwise this throws.
   */
  const backward = (from: Stop, B: number, O: number, acceptThrough: boolean): number | 'through' => {
    stats.backwardSteps++;
    const starts: Array<{ pos: number; bits: number }> = [];
    if (from.pos !== undefined) {
      const byte = Math.ceil(from.pos / 8);
      starts.push({ pos: byte, bits: byte * 8 - from.pos });
    } else {
      for (let k = 0; k < 8; k++) if (k === 0 || from.B - 1 >= memberStart) starts.push({ pos: from.B, bits: k });
    }
    const want = O - from.O;
    const expected = outb.view(from.O, O);
    const produced = Buffer.alloc(want);
    const window = windowBefore(from.O);
    const answers = new Set<number | 'through'>();
    for (const start of starts) {
      const soft = new SoftInflater({
        input: inb.buf,
        pos: start.pos - inb.base,
        bits: start.bits,
        end: B - inb.base,
        window,
      });
      let written = 0;
      for (let guard = 0; guard < 1 << 24; guard++) {
        const { status, written: w } = soft.run(produced, written, want, true);
        if (status < 0 && status !== Z_BUF_ERROR) break;
        if (w > 0 && !produced.subarray(written, written + w).equals(expected.subarray(written, written + w))) break;
        written += w;
        const consumed = soft.inputPos + inb.base;
        if (soft.atBlockBoundary) {
          if (consumed === B && written === want) {
            answers.add(B * 8 - soft.heldBits);
            break;
          }
          continue;
        }
        if (status === Z_STREAM_END) break;
        if (status === Z_BUF_ERROR) {
          if (consumed === B && written === want) answers.add('through');
          break;
        }
      }
    }
    if (!acceptThrough) answers.delete('through');
    if (answers.size !== 1) {
      throw new ZtocError(
        'bad-gzip',
        `cannot settle the deflate block boundary at compressed offset ${B} (${answers.size} consistent readings)`,
      );
    }
    return [...answers][0]!;
  };

  /**
   * The current block followed in software from the last stop, so that neither its output nor its
   * input has to be kept (a hostile block can hold gigabytes of output). Its readings are the starts
   * at `from` still consistent with the real output up to (B, O); each has its own inflate stream, in
   * `followerSlots`, so only one follower may be live: a stop keeps its block's follower (to settle its
   * bits only if the forward probe cannot) until the next follower starts.
   */
  let follower: Follower | undefined;
  const followerSlots: SoftSlot[] = Array.from({ length: 8 }, () => ({}));

  const startFollower = (from: Stop): Follower => {
    for (const p of [...pending, candidate]) if (p?.stop.follower) settleByFollower(p.stop);
    const window = windowBefore(from.O);
    const readings: SoftInflater[] = [];
    const start = (bits: number) => {
      const slot = followerSlots[readings.length]!;
      readings.push(new SoftInflater({ input: inb.buf, pos: from.B - inb.base, bits, end: from.B - inb.base, window }, slot));
    };
    if (from.pos !== undefined) start(from.B * 8 - from.pos);
    else for (let k = 0; k < 8; k++) if (k === 0 || from.B - 1 >= memberStart) start(k);
    return { from, B: from.B, O: from.O, readings };
  };

  /**
   * Like `backward(f.from, B, O, acceptThrough)`, but resumable: the readings continue from where the
   * previous call left them, so following a block of any size costs one decode of it and keeps only the
   * output since the previous call. Readings that stop matching are dropped.
   */
  const advance = (f: Follower, B: number, O: number, acceptThrough: boolean): number | 'through' => {
    stats.followSteps++;
    const want = O - f.O;
    const expected = outb.view(f.O, O);
    const produced = Buffer.allocUnsafe(want);
    const answers = new Set<number | 'through'>();
    const through: SoftInflater[] = [];
    for (const soft of f.readings) {
      soft.feed(inb.buf, f.B - inb.base, B - inb.base);
      let written = 0;
      for (let guard = 0; guard < 1 << 24; guard++) {
        const { status, written: w } = soft.run(produced, written, want, true);
        if (status < 0 && status !== Z_BUF_ERROR) break;
        if (w > 0 && !produced.subarray(written, written + w).equals(expected.subarray(written, written + w))) break;
        written += w;
        const consumed = soft.inputPos + inb.base;
        if (soft.atBlockBoundary) {
          if (consumed === B && written === want) {
            answers.add(B * 8 - soft.heldBits);
            break;
          }
          continue;
        }
        if (status === Z_STREAM_END) break;
        if (status === Z_BUF_ERROR) {
          if (consumed === B && written === want) {
            answers.add('through');
            through.push(soft);
          }
          break;
        }
      }
    }
    if (!acceptThrough) answers.delete('through');
    if (answers.size !== 1) {
      throw new ZtocError(
        'bad-gzip',
        `cannot settle the deflate block boundary at compressed offset ${B} (${answers.size} consistent readings)`,
      );
    }
    f.B = B;
    f.O = O;
    f.readings = through;
    return [...answers][0]!;
  };

  /** Follows the current block from the last stop up to (B, O): a block boundary there, or 'through'. */
  const follow = (B: number, O: number): number | 'through' => {
    if (!follower || follower.from !== lastStop) follower = startFollower(lastStop);
    const answer = advance(follower, B, O, true);
    if (answer !== 'through') follower = undefined;
    return answer;
  };

  const settleByFollower = (stop: Stop) => {
    const f = stop.follower!;
    stop.follower = undefined;
    stop.pos = advance(f, stop.B, stop.O, false) as number;
  };

  /** Settles the bits of a pending checkpoint: forward probe, else the block that ends there. */
  const resolveBits = (p: PendingCheckpoint, memberEndOut: number | undefined) => {
    stats.probes++;
    const { cp } = p;
    const available = totout - cp.out;
    const length = Math.min(PROBE_BYTES, available);
    const mustEnd = memberEndOut !== undefined && cp.out + length === memberEndOut;
    const expected = outb.view(cp.out, cp.out + length);
    const produced = Buffer.alloc(length);
    const matches: number[] = [];
    for (let k = 0; k < 8; k++) {
      const soft = new SoftInflater({
        input: inb.buf,
        pos: cp.in - inb.base,
        bits: k,
        end: totin - inb.base,
        window: cp.window,
      });
      let written = 0;
      let status = 0;
      for (let guard = 0; guard < 64; guard++) {
        const r = soft.run(produced, written, length, false);
        status = r.status;
        written += r.written;
        if (status !== 0) break;
        if (written === length && !mustEnd) break;
      }
      if (status < 0 && status !== Z_BUF_ERROR) continue;
      if (written !== length || !produced.equals(expected)) continue;
      if (mustEnd && status !== Z_STREAM_END) continue;
      matches.push(k);
    }
    if (matches.length === 1) {
      cp.bits = matches[0]!;
    } else if (p.stop.pos !== undefined || p.stop.follower) {
      // The block was followed in software (its output is gone): its reading says the bits.
      if (p.stop.pos === undefined) settleByFollower(p.stop);
      cp.bits = cp.in * 8 - p.stop.pos!;
    } else {
      const pos = backward(p.prev, cp.in, cp.out, false) as number;
      cp.bits = cp.in * 8 - pos;
    }
    if (cp.bits < 0 || cp.bits > 7) throw new ZtocError('bad-gzip', `inconsistent block boundary at ${cp.in}`);
    p.stop.pos = cp.in * 8 - cp.bits;
    p.stop.follower = undefined;
  };

  const resolvePending = (memberEndOut: number | undefined) => {
    while (pending.length > 0) {
      const p = pending[0]!;
      if (memberEndOut === undefined && totout - p.cp.out < PROBE_BYTES) break;
      resolveBits(p, memberEndOut);
      pending.shift();
      commitCheckpoint(p.cp);
    }
    hashUpTo(pending.length > 0 ? pending[0]!.cp.in : candidate ? candidate.stop.B : totin);
  };

  let members = 0;
  let pos = 0;
  try {
    for (;;) {
      // Member header.
      let headerLength: number;
      for (;;) {
        headerLength = gzipHeaderLength(inb, pos, limits.gzipHeaderBytes);
        if (headerLength >= 0) break;
        if (inb.end - pos > limits.gzipHeaderBytes) throw headerTooLong(pos, limits.gzipHeaderBytes);
        if (input.eof) {
          throw new ZtocError(
            pos === 0 && inb.end === 0 ? 'empty' : 'truncated',
            pos === 0 && inb.end === 0 ? 'empty input' : `gzip header truncated at offset ${pos}`,
          );
        }
        // Each retry at least doubles what is buffered, so a long header is parsed in linear time.
        await input.fill(inb.end + Math.max(65536, inb.end - pos), inputKeep());
      }
      members++;
      memberStart = pos + headerLength;
      totin = memberStart;
      lastStop = { B: totin, O: totout, pos: totin * 8 };
      if (due(totout)) {
        checkCheckpointCount(totout);
        commitCheckpoint({ in: totin, out: totout, bits: 0, window: windowBefore(totout) });
        last = totout;
      }
      if (members > 1) handle.reset();
      const memberOut = totout;
      let crc = 0;

      // Deflate blocks.
      for (;;) {
        await input.fill(totin + lookahead, inputKeep());
        outb.reserve(outputRoom, outputKeep());
        const availIn = Math.min(inb.end - totin, maxCallInput);
        const room = Math.min(outb.buf.length - outb.length, maxCallOutput);
        handle.writeSync(Z_BLOCK, inb.buf, totin - inb.base, availIn, outb.buf, outb.length, room);
        if (nativeError !== undefined) {
          throw new ZtocError('bad-gzip', `corrupt deflate data near compressed offset ${totin}: ${nativeError}`);
        }
        const used = availIn - writeState[1]!;
        const got = room - writeState[0]!;
        if (got > 0) {
          const chunk = outb.buf.subarray(outb.length, outb.length + got);
          if (!options.onMemberEnd) crc = zlib.crc32(chunk, crc);
          outb.length += got;
          const backpressure = sink(chunk);
          if (backpressure) await backpressure;
        }
        totin += used;
        totout += got;
        if (used === 0 && got === 0) {
          if (availIn > 0) break; // zlib is done: the last stop ended the final block
          throw new ZtocError('truncated', `gzip stream truncated at offset ${totin} (deflate data incomplete)`);
        }
        if (candidate) {
          // Progress after the candidate's stop: its block was not the final one.
          checkCheckpointCount(candidate.cp.out);
          pending.push(candidate);
          last = candidate.cp.out;
          candidate = undefined;
        }
        let stop: Stop | undefined;
        if (writeState[1]! > 0 && writeState[0]! > 0) {
          stop = { B: totin, O: totout };
          // A followed block ends here: keep its follower, in case the probe cannot settle the bits.
          if (follower && follower.from === lastStop && due(stop.O)) stop.follower = follower;
          follower = undefined;
        } else if (due(totout) || totout - anchor().O > limits.blockOutputRetained) {
          // The native call ran out of input or output room, maybe at a block boundary the next call
          // would pass silently: when a checkpoint is due, or the block's output grows too big to keep,
          // follow it in software up to here.
          if (due(totout)) stats.suspects++;
          const r = follow(totin, totout);
          if (r !== 'through') stop = { B: totin, O: totout, pos: r };
        }
        if (stop) {
          if (due(stop.O)) {
            candidate = { cp: { in: stop.B, out: stop.O, bits: -1, window: windowBefore(stop.O) }, stop, prev: lastStop };
          }
          lastStop = stop;
        }
        resolvePending(undefined);
      }
      candidate = undefined; // a stop after the final block is never a checkpoint
      resolvePending(totout);

      // Trailer: CRC32 and ISIZE of this member.
      await input.fill(totin + 9, inputKeep());
      if (inb.end < totin + 8) throw new ZtocError('truncated', `gzip trailer truncated at offset ${totin}`);
      const trailer = inb.view(totin, totin + 8);
      if (options.onMemberEnd) options.onMemberEnd(trailer.readUInt32LE(0), totin + 8);
      else if (trailer.readUInt32LE(0) !== crc >>> 0) {
        throw new ZtocError('bad-gzip', `gzip CRC mismatch in the member ending at offset ${totin + 8}`);
      }
      if (trailer.readUInt32LE(4) !== (totout - memberOut) % 2 ** 32) {
        throw new ZtocError('bad-gzip', `gzip length mismatch in the member ending at offset ${totin + 8}`);
      }
      pos = totin + 8;
      if (inb.end === pos && input.eof) break;
      if (inb.at(pos) !== 0x1f || (inb.end > pos + 1 && inb.at(pos + 1) !== 0x8b)) {
        throw new ZtocError('trailing-garbage', `unexpected data after the gzip stream at offset ${pos}`);
      }
    }
    // The last span runs to the end of the file.
    hashUpTo(inb.end);
    if (spanHash) spanDigests.push(`sha256:${spanHash.digest('hex')}`);
    return { checkpoints, spanDigests, compressedSize: inb.end, uncompressedSize: totout, members, stats };
  } finally {
    stream.close();
    releaseSoftInflater();
    for (const slot of followerSlots) releaseSoftInflater(slot);
    await input.close();
  }
}

interface NativeHandle {
  writeSync(flush: number, input: Uint8Array, inOff: number, inLen: number, out: Uint8Array, outOff: number, outLen: number): void;
  reset(): void;
  onerror: (message: string, errno: number, code: string) => void;
}
