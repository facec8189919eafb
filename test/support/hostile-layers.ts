// Layers made to exhaust the zTOC engine (issue 11's table): generated in the tests, never stored.
import zlib from 'node:zlib';
import { tarEntry, tarHeaderBlock } from './tar-fixtures.ts';

const END_OF_ARCHIVE = Buffer.alloc(1024);

/** A small valid tar: one file. */
export function smallTar(): Buffer {
  const body = Buffer.from('hello\n');
  return Buffer.concat([tarEntry(tarHeaderBlock({ name: 'hello.txt', size: body.length, typeflag: '0' }), body), END_OF_ARCHIVE]);
}

/** `count` empty gzip members (20 bytes each), then a small tar.gz. */
export function emptyMembersLayer(count: number): Buffer {
  const empty = zlib.gzipSync(Buffer.alloc(0));
  const parts: Buffer[] = new Array(count).fill(empty);
  parts.push(zlib.gzipSync(smallTar()));
  return Buffer.concat(parts);
}

/** Writes deflate bits LSB first. */
class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;

  bits(value: number, count: number): void {
    this.acc |= value << this.n;
    this.n += count;
    while (this.n >= 8) {
      this.bytes.push(this.acc & 0xff);
      this.acc >>>= 8;
      this.n -= 8;
    }
  }

  /** A Huffman code: most significant bit first. */
  code(value: number, length: number): void {
    let reversed = 0;
    for (let i = 0; i < length; i++) reversed |= ((value >> i) & 1) << (length - 1 - i);
    this.bits(reversed, length);
  }

  /** Pads to a byte boundary (before a stored block's LEN). */
  align(): void {
    if (this.n > 0) this.bits(0, 8 - this.n);
  }

  finish(): Buffer {
    if (this.n > 0) this.bytes.push(this.acc & 0xff);
    return Buffer.from(this.bytes);
  }
}

/** Fixed-Huffman literal (deflate 3.2.6). */
function literal(w: BitWriter, byte: number): void {
  if (byte < 144) w.code(0x30 + byte, 8);
  else w.code(0x190 + byte - 144, 9);
}

/**
 * A tar.gz whose deflate stream is ONE fixed-Huffman block holding a tar of one file of `fileSize` zero
 * bytes: its header as literals, then the zeros as length-258 matches at distance 1 (13 bits per 258
 * bytes: 256 MiB of output from ~1.7 MB). With `tail`, the giant block is not the final one: the tar's
 * padding and end blocks come in a small final block after it (so a checkpoint falls right after it),
 * fixed-Huffman or stored (before a stored block, several bit offsets decode the same bytes).
 */
export function giantBlockLayer(fileSize: number, tail?: 'fixed' | 'stored'): Buffer {
  const header = tarHeaderBlock({ name: 'zeros', size: fileSize, typeflag: '0' });
  const trailing = Math.ceil(fileSize / 512) * 512 - fileSize + END_OF_ARCHIVE.length;
  const zeros = fileSize + trailing;
  const w = new BitWriter();
  const zeroRun = (count: number) => {
    literal(w, 0);
    let left = count - 1;
    for (; left >= 258; left -= 258) {
      w.code(0xc5, 8); // length code 285: 258 bytes
      w.code(0, 5); // distance code 0: distance 1
    }
    for (; left > 0; left--) literal(w, 0);
    w.code(0, 7); // end of block (256)
  };
  w.bits(tail ? 0 : 1, 1); // BFINAL
  w.bits(1, 2); // BTYPE 01: fixed Huffman
  for (const b of header) literal(w, b);
  // A stored tail also takes the file's last 4 KiB: more than the 2 KiB forward probe, which then
  // cannot tell the true start from one inside the end-of-block code (all zero bits).
  const storedTail = tail === 'stored' ? trailing + 4096 : 0;
  zeroRun(tail === 'stored' ? zeros - storedTail : tail ? fileSize : zeros);
  if (tail === 'fixed') {
    w.bits(1, 1);
    w.bits(1, 2);
    zeroRun(trailing);
  } else if (tail === 'stored') {
    w.bits(1, 1);
    w.bits(0, 2);
    w.align();
    w.bits(storedTail, 16);
    w.bits(~storedTail & 0xffff, 16);
    for (let i = 0; i < storedTail; i++) w.bits(0, 8);
  }
  const deflate = w.finish();
  let crc = zlib.crc32(header);
  const chunk = Buffer.alloc(1 << 20);
  for (let done = 0; done < zeros; done += chunk.length) crc = zlib.crc32(chunk.subarray(0, Math.min(chunk.length, zeros - done)), crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((header.length + zeros) % 2 ** 32, 4);
  return Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), deflate, trailer]);
}

/** A gzip member header with FNAME set and `nameLength` bytes of name without its NUL (then nothing). */
export function longFnameLayer(nameLength: number): Buffer {
  const layer = Buffer.alloc(10 + nameLength, 0x61);
  layer.set([0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]);
  return layer;
}

/** A tar of `entries` files, each with the same PAX header of `records` xattr records (~30 bytes each). */
export function paxRecordsTar(entries: number, records: number): Buffer {
  const lines: string[] = [];
  for (let r = 0; r < records; r++) {
    const record = ` SCHILY.xattr.user.k${r}=v\n`;
    let digits = 1;
    while (String(record.length + digits).length !== digits) digits++;
    lines.push(`${record.length + digits}${record}`);
  }
  const body = Buffer.from(lines.join(''));
  const parts: Buffer[] = [];
  for (let e = 0; e < entries; e++) {
    parts.push(tarEntry(tarHeaderBlock({ name: `PaxHeaders/f${e}`, size: body.length, typeflag: 'x' }), body));
    parts.push(tarHeaderBlock({ name: `f${e}`, size: 0, typeflag: '0' }));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A tar of `entries` empty files, each named by a GNU long name of ~1 MiB (compresses ~1000:1). */
export function longNamesTar(entries: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < entries; i++) {
    const name = Buffer.alloc((1 << 20) - 16, 0x61);
    name.write(`${i}/`, 0);
    parts.push(
      tarEntry(
        tarHeaderBlock({ name: '././@LongLink', size: name.length + 1, typeflag: 'L', format: 'gnu' }),
        Buffer.concat([name, Buffer.alloc(1)]),
      ),
    );
    parts.push(tarHeaderBlock({ name: `f${i}`, size: 0, typeflag: '0', format: 'gnu' }));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}
