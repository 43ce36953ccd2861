/* SPDX-License-Identifier: MIT */
/* replay.c — the `main` of a fuzz target in ordinary builds (gcc, ASan): runs the target once on
 * every file of the directories given (the seed corpus, tests/fuzz/regress/<target>/), in name
 * order, so that seeds and every crash ever found are regression tests of the normal suite.
 * A file argument runs that one input (to reproduce a crash file).
 * Must not: mutate inputs or write anything; a finding aborts (sanitizer or FUZZ_CHECK). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Larger than any seed (libFuzzer's default -max_len is 4096). */
#define REPLAY_MAX_INPUT (4u << 20)

static int replay_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run the target on one file. Returns 0, or -1 if the file cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf;
    size_t n;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    if ((uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: larger than %u bytes\n", path, REPLAY_MAX_INPUT);
        fclose(f);
        return -1;
    }
    /* Exactly the input's size, so that ASan sees a read one byte past the input. */
    n = (size_t)st.st_size;
    buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

/* Run every regular file of `dir` whose name does not start with '.'. Returns the count run, or
 * -1 on an error. A missing directory counts as empty (regress/<target>/ exists only once a
 * crash has been found). */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    long run = 0;
    if (!d) {
        if (errno == ENOENT) return 0;
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!grown) break;
            names = grown;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, replay_name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0) {
                run = -1;
                break;
            }
            run++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return run;
}

int main(int argc, char **argv)
{
    long total = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE... (runs the fuzz target on every file)\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long n;
        if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
            n = replay_file(argv[i]) == 0 ? 1 : -1; /* one input, e.g. a crash file */
        else
            n = replay_dir(argv[i]);
        if (n < 0) return 1;
        printf("replay: %ld input(s) from %s\n", n, argv[i]);
        total += n;
    }
    /* A path mistake must not turn the test into one that checks nothing. */
    if (total == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %ld input(s), no finding\n", total);
    return 0;
}
