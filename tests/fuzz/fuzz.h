/* SPDX-License-Identifier: MIT */
/* fuzz.h — what every fuzz target shares: the libFuzzer entry point, an invariant check that
 * aborts (so libFuzzer and the replay driver both report it as a crash), and a private scratch
 * directory for targets whose code under test reads files.
 * Must not: hold target logic; nothing here may write outside the scratch directory. */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Implemented by each fuzz_<target>.c; called by libFuzzer or by replay.c. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a violation is a finding, reported like a crash. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond);                                         \
    } while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* A mkdtemp directory under $TMPDIR (default /tmp), created on first use and removed with all
 * its contents when the process exits normally. Aborts if it cannot be made. */
const char *fuzz_tmpdir(void);

/* Copy the regular files and directories below `src` into `dst` (created). 0 or -errno. */
int fuzz_copy_tree(const char *src, const char *dst);

/* Create or truncate `path` and write `n` bytes to it. 0 or -errno. */
int fuzz_write_file(const char *path, const void *data, size_t n);

#endif
