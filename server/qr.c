/*
 * qr — QR codes as SVG (see qr.h).
 */
#include "qr.h"

#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>

#define QR_QUIET 4 /* modules of white border, as the standard asks */

char *qr_svg(const char *text, size_t *len) {
  QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (!q) return NULL;
  char *out = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&out, &n);
  if (!f) {
    QRcode_free(q);
    return NULL;
  }
  int w = q->width, size = w + 2 * QR_QUIET;
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
          "shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code: %s\">"
          "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
          size, size, "join link", size, size);
  for (int y = 0; y < w; y++) {
    for (int x = 0; x < w; x++) {
      if (!(q->data[y * w + x] & 1)) continue;
      /* run of dark modules on this row: one horizontal bar */
      int run = 1;
      while (x + run < w && (q->data[y * w + x + run] & 1)) run++;
      fprintf(f, "M%d %dh%dv1h-%dz", x + QR_QUIET, y + QR_QUIET, run, run);
      x += run - 1;
    }
  }
  fputs("\"/></svg>\n", f);
  QRcode_free(q);
  if (fclose(f) != 0) {
    free(out);
    return NULL;
  }
  *len = n;
  return out;
}
