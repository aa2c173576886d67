/* test_evidence — the content checks of evidence uploads (server/evidence.c):
 * the type by the first bytes, and a JPEG copied without its APP1..APP15
 * segments (EXIF with a GPS position among them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evidence.h"

static void test_sniff(void **state) {
  (void)state;
  const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0},
                png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
  assert_string_equal(evidence_sniff(jpeg, sizeof jpeg), "image/jpeg");
  assert_string_equal(evidence_sniff(png, sizeof png), "image/png");
  assert_string_equal(evidence_sniff((const uint8_t *)"%PDF-1.7\n", 9), "application/pdf");
  /* a name says nothing; text, HTML, a truncated signature are refused */
  assert_null(evidence_sniff((const uint8_t *)"hello.jpg", 9));
  assert_null(evidence_sniff((const uint8_t *)"<svg onload=x>", 14));
  assert_null(evidence_sniff(png, 7));
  assert_null(evidence_sniff(jpeg, 2));
  assert_null(evidence_sniff(jpeg, 0));
}

/* SOI, APP0 (JFIF, kept), APP1 (Exif with GPS, dropped), COM (kept), APP13
 * (dropped), DQT (kept), SOS + scan data + EOI (kept as they are). */
static const uint8_t PHOTO[] = {
    0xff, 0xd8,                                                                       /* SOI */
    0xff, 0xe0, 0x00, 0x07, 'J',  'F',  'I',  'F',  0x00,                             /* APP0 */
    0xff, 0xe1, 0x00, 0x0c, 'E',  'x',  'i',  'f',  0,    0,    'G',  'P', 'S', 0x01, /* APP1 */
    0xff, 0xfe, 0x00, 0x04, 'h',  'i',                                                /* COM */
    0xff, 0xed, 0x00, 0x05, 'I',  'P',  'T',                                          /* APP13 */
    0xff, 0xdb, 0x00, 0x04, 0x00, 0x01,                                               /* DQT */
    0xff, 0xda, 0x00, 0x04, 0x01, 0x02, 0x12, 0xff, 0x00, 0xe1, 0x34, /* SOS + data */
    0xff, 0xd9,                                                       /* EOI */
};

static void test_strip_drops_app_segments_only(void **state) {
  (void)state;
  uint8_t out[sizeof PHOTO];
  size_t n = evidence_jpeg_strip(PHOTO, sizeof PHOTO, out);
  const uint8_t want[] = {
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x07, 'J',  'F',  'I',  'F',  0x00, 0xff,
      0xfe, 0x00, 0x04, 'h',  'i',  0xff, 0xdb, 0x00, 0x04, 0x00, 0x01, 0xff,
      0xda, 0x00, 0x04, 0x01, 0x02, 0x12, 0xff, 0x00, 0xe1, 0x34, 0xff, 0xd9,
  };
  assert_int_equal(n, sizeof want);
  assert_memory_equal(out, want, sizeof want);
  assert_null(memmem(out, n, "GPS", 3));
  assert_null(memmem(out, n, "Exif", 4));
}

static void test_strip_refuses_what_it_cannot_follow(void **state) {
  (void)state;
  uint8_t out[sizeof PHOTO];
  /* cut inside the APP1 segment: its length points past the end */
  assert_int_equal(evidence_jpeg_strip(PHOTO, 20, out), 0);
  /* no scan at all */
  assert_int_equal(evidence_jpeg_strip(PHOTO, 11, out), 0);
  /* a segment length below 2 */
  uint8_t bad[sizeof PHOTO];
  memcpy(bad, PHOTO, sizeof PHOTO);
  bad[5] = 0x01;
  assert_int_equal(evidence_jpeg_strip(bad, sizeof bad, out), 0);
  /* bytes between segments that are not a marker */
  memcpy(bad, PHOTO, sizeof PHOTO);
  bad[11] = 0x00;
  assert_int_equal(evidence_jpeg_strip(bad, sizeof bad, out), 0);
  /* not a JPEG */
  assert_int_equal(evidence_jpeg_strip((const uint8_t *)"%PDF-1.4", 8, out), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sniff),
      cmocka_unit_test(test_strip_drops_app_segments_only),
      cmocka_unit_test(test_strip_refuses_what_it_cannot_follow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
