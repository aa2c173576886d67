/*
 * qr — a QR code as an SVG image (libqrencode does the encoding).
 *
 * The image is one <path> of unit squares on a white background with the
 * four-module quiet zone the standard asks for, so it scales to any size
 * without blur: a join code on a wall screen stays readable from across
 * the room.
 */
#ifndef OTJ_QR_H
#define OTJ_QR_H

#include <stddef.h>

/* Returns a malloc'd NUL-terminated SVG of `text` (length in *len), or NULL
 * when the text cannot be encoded or memory ran out. */
char *qr_svg(const char *text, size_t *len);

#endif
