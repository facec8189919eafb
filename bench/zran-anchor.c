/* Native baseline for `npm run bench`: a C zlib pass that records zran-style checkpoints the way
 * soci's zinfo builder does (inflate with Z_BLOCK, 16 KiB input reads, 32 KiB window ring, a window
 * copy at each checkpoint). Written for the benchmark; it is the "native zlib checkpointing pass"
 * that upstream's builder is about 3.5x slower than (docs/design.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK 16384
#define WIN 32768

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s file.gz span\n", argv[0]); return 2; }
  FILE *in = fopen(argv[1], "rb");
  if (!in) { perror(argv[1]); return 1; }
  long long span = atoll(argv[2]);
  unsigned char input[CHUNK], window[WIN];
  unsigned char *saved = malloc(WIN);
  z_stream strm; memset(&strm, 0, sizeof strm);
  if (inflateInit2(&strm, 47) != Z_OK) return 1;
  long long totin = 0, totout = 0, last = 0, points = 0;
  int ret = Z_OK;
  do {
    strm.avail_in = fread(input, 1, CHUNK, in);
    if (ferror(in)) return 1;
    if (strm.avail_in == 0) break;
    strm.next_in = input;
    do {
      if (strm.avail_out == 0) { strm.avail_out = WIN; strm.next_out = window; }
      totin += strm.avail_in; totout += strm.avail_out;
      ret = inflate(&strm, Z_BLOCK);
      totin -= strm.avail_in; totout -= strm.avail_out;
      if (ret == Z_NEED_DICT || ret == Z_MEM_ERROR || ret == Z_DATA_ERROR) { fprintf(stderr, "zlib error %d\n", ret); return 1; }
      if (ret == Z_STREAM_END) {
        if (strm.avail_in == 0) break;
        inflateReset2(&strm, 47); ret = Z_OK; continue;
      }
      if ((strm.data_type & 128) && !(strm.data_type & 64) && (totout == 0 || totout - last > span)) {
        unsigned have = WIN - strm.avail_out;
        memcpy(saved, window + have, WIN - have); memcpy(saved + WIN - have, window, have);
        points++; last = totout;
      }
    } while (strm.avail_in != 0);
  } while (ret != Z_STREAM_END || !feof(in));
  printf("%lld checkpoints, %lld in, %lld out\n", points, totin, totout);
  inflateEnd(&strm); fclose(in); free(saved);
  return 0;
}
