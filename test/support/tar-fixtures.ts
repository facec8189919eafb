// Hand-made tar headers for cases tar writers will not produce on request.

/** A USTAR header block with typeflag `g` (PAX global header), as `git archive` writes first. */
export function globalHeaderTar(): Buffer {
  const body = Buffer.from('52 comment=7a3c1e9d6d2f4b0a8e5c3b1a9f7e6d5c4b3a2918\n');
  const header = Buffer.alloc(512);
  header.write('pax_global_header', 0);
  header.write('0000666\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write('g', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const padded = Buffer.alloc(512);
  body.copy(padded);
  return Buffer.concat([header, padded, Buffer.alloc(1024)]);
}
