/* SPDX-License-Identifier: MIT */
/* fuzz_util.c — the helpers in fuzz.h: invariant failure, the per-process scratch directory
 * (removed at exit), a small tree copy and a file writer.
 * Must not: touch anything outside the scratch directory except reading copy sources. */
#include "fuzz.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_dir[PATH_MAX];

_Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

static int fuzz_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void fuzz_tmpdir_remove(void)
{
    if (fuzz_dir[0]) nftw(fuzz_dir, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (!fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/estn-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_tmpdir_remove);
    }
    return fuzz_dir;
}

int fuzz_write_file(const char *path, const void *data, size_t n)
{
    const uint8_t *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        p += w;
        n -= (size_t)w;
    }
    return close(fd) == 0 ? 0 : -errno;
}

static int fuzz_copy_file(const char *src, const char *dst)
{
    char buf[8192];
    int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
    if (in < 0) return -errno;
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = -errno;
        close(in);
        return rc;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n < 0) rc = -errno;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -EIO;
            break;
        }
    }
    close(in);
    if (close(out) != 0 && rc == 0) rc = -errno;
    return rc;
}

int fuzz_copy_tree(const char *src, const char *dst)
{
    DIR *d;
    struct dirent *e;
    int rc = 0;
    if (mkdir(dst, 0700) != 0 && errno != EEXIST) return -errno;
    d = opendir(src);
    if (!d) return -errno;
    while (rc == 0 && (e = readdir(d))) {
        char s[PATH_MAX], t[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(s, sizeof s, "%s/%s", src, e->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
        if (lstat(s, &st) != 0) {
            rc = -errno;
        } else if (S_ISDIR(st.st_mode)) {
            rc = fuzz_copy_tree(s, t);
        } else if (S_ISREG(st.st_mode)) {
            rc = fuzz_copy_file(s, t);
        }
    }
    closedir(d);
    return rc;
}
