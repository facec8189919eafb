// Hand-made tar headers for cases tar writers will not produce on request.

/** One 512-byte tar header block with a valid checksum. */
export function tarHeaderBlock(fields: { name: string; size: number; typeflag: string; mode?: string; format?: 'ustar' | 'gnu' }): Buffer {
  const header = Buffer.alloc(512);
  header.write(fields.name, 0);
  header.write(`${fields.mode ?? '0000644'}\0`, 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${fields.size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write(fields.typeflag, 156);
  if (fields.format === 'gnu') header.write('ustar  \0', 257);
  else header.write('ustar\x0000', 257);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** A header followed by its body, padded to whole blocks. */
export function tarEntry(header: Buffer, body: Uint8Array): Buffer {
  const padded = Buffer.alloc(Math.ceil(body.length / 512) * 512);
  padded.set(body);
  return Buffer.concat([header, padded]);
}

/** A USTAR header block with typeflag `g` (PAX global header), as `git archive` writes first. */
export function globalHeaderTar(): Buffer {
  const body = Buffer.from('52 comment=7a3c1e9d6d2f4b0a8e5c3b1a9f7e6d5c4b3a2918\n');
  const header = tarHeaderBlock({ name: 'pax_global_header', size: body.length, typeflag: 'g', mode: '0000666' });
  return Buffer.concat([tarEntry(header, body), Buffer.alloc(1024)]);
}
