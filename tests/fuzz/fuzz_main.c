/* fuzz_main -- a plain main() for the fuzz targets when they are not linked
 * with libFuzzer: runs LLVMFuzzerTestOneInput once per file of the given
 * files and directories (the seed corpus and every crash ever found), so
 * each ctest run replays them, with gcc as well as with clang.
 * Exits 0 when every input ran (a failing input aborts), 1 when an argument
 * could not be read or no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *nb = realloc(buf, cap *= 2);
      if (!nb) free(buf);
      buf = nb;
    }
  }
  fclose(f);
  if (!buf) return -1;
  /* an exact-size copy, so a read past the end is caught under ASan */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (run_file(path)) return -1;
    (*count)++;
    return 0;
  }
  DIR *dir = opendir(path);
  if (!dir) {
    perror(path);
    return -1;
  }
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char **nn = realloc(names, (n + 1) * sizeof *names);
    if (!nn) break;
    names = nn;
    names[n++] = strdup(e->d_name);
  }
  closedir(dir);
  qsort(names, n, sizeof *names, cmp_names);
  int rc = 0;
  for (size_t k = 0; k < n; k++) {
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", path, names[k]);
    if (names[k] && run_path(full, count)) rc = -1;
    free(names[k]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int count = 0, rc = 0;
  for (int k = 1; k < argc; k++)
    if (run_path(argv[k], &count)) rc = 1;
  printf("%s: %d input%s replayed\n", argv[0], count, count == 1 ? "" : "s");
  return rc || count == 0 ? 1 : 0;
}
