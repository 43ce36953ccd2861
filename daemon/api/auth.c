/* SPDX-License-Identifier: MIT */
/* auth.c — the API token file and role checks (docs/API.md).
 * Must not: keep a token in clear after loading, log one, or compare with an early exit. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "est_err.h"

typedef struct auth_entry_s {
    auth_role_t role;
    unsigned char digest[SHA256_DIGEST_LENGTH];
} auth_entry_t;

struct auth_s {
    size_t n;
    auth_entry_t *e;
};

static const char *const auth_role_names[] = {"none", "viewer", "mes", "operator", "engineer"};

const char *auth_role_name(auth_role_t role)
{
    return (unsigned)role < sizeof auth_role_names / sizeof auth_role_names[0]
               ? auth_role_names[role]
               : "?";
}

bool auth_allows(auth_role_t role, auth_perm_t perm)
{
    switch (perm) {
    case AUTH_PERM_NONE: return true;
    case AUTH_PERM_READ: return role != AUTH_ROLE_NONE;
    case AUTH_PERM_EXPORT:
        return role == AUTH_ROLE_MES || role == AUTH_ROLE_OPERATOR || role == AUTH_ROLE_ENGINEER;
    case AUTH_PERM_OPERATE: return role == AUTH_ROLE_OPERATOR || role == AUTH_ROLE_ENGINEER;
    case AUTH_PERM_ENGINEER: return role == AUTH_ROLE_ENGINEER;
    }
    return false;
}

static int auth_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int auth_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static bool auth_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("._~+/=-", c) != NULL;
}

static auth_role_t auth_role_parse(const char *s, size_t n)
{
    for (size_t i = AUTH_ROLE_VIEWER; i <= AUTH_ROLE_ENGINEER; i++)
        if (strlen(auth_role_names[i]) == n && !memcmp(auth_role_names[i], s, n))
            return (auth_role_t)i;
    return AUTH_ROLE_NONE;
}

int auth_parse(const char *text, size_t len, const char *name, auth_t **out, char *err,
               size_t errlen)
{
    auth_t *a = calloc(1, sizeof *a);
    size_t line = 0, pos = 0;
    *out = NULL;
    if (!a) return -ENOMEM;
    while (pos < len) {
        const char *l = text + pos, *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos, i = 0, rs, rl, ts, tl;
        auth_role_t role;
        pos += n + (nl != NULL);
        line++;
        if (n && l[n - 1] == '\r') n--;
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        if (i == n || l[i] == '#') continue;
        rs = i;
        while (i < n && l[i] != ' ' && l[i] != '\t')
            i++;
        rl = i - rs;
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        ts = i;
        while (i < n && l[i] != ' ' && l[i] != '\t')
            i++;
        tl = i - ts;
        while (i < n && (l[i] == ' ' || l[i] == '\t'))
            i++;
        role = auth_role_parse(l + rs, rl);
        /* the messages never quote the token itself: the error may end up in a log */
        if (role == AUTH_ROLE_NONE) {
            auth_free(a);
            return auth_err(err, errlen, EST_EUSAGE,
                            "%s line %zu: the role must be viewer, mes, operator or engineer "
                            "(format: <role> <token>)",
                            name, line);
        }
        if (i != n || tl < AUTH_TOKEN_MIN || tl > AUTH_TOKEN_MAX) {
            auth_free(a);
            return auth_err(err, errlen, EST_EUSAGE,
                            "%s line %zu: expected \"<role> <token>\" with a token of %d to %d "
                            "characters",
                            name, line, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
        }
        for (size_t k = 0; k < tl; k++)
            if (!auth_token_char(l[ts + k])) {
                auth_free(a);
                return auth_err(err, errlen, EST_EUSAGE,
                                "%s line %zu: a token may only contain A-Z a-z 0-9 . _ ~ + / = -",
                                name, line);
            }
        if (a->n == AUTH_MAX_TOKENS) {
            auth_free(a);
            return auth_err(err, errlen, EST_EUSAGE, "%s: more than %d tokens", name,
                            AUTH_MAX_TOKENS);
        }
        auth_entry_t *ne = realloc(a->e, (a->n + 1) * sizeof *ne);
        if (!ne) {
            auth_free(a);
            return -ENOMEM;
        }
        a->e = ne;
        ne[a->n].role = role;
        SHA256((const unsigned char *)l + ts, tl, ne[a->n].digest);
        for (size_t k = 0; k < a->n; k++)
            if (!memcmp(ne[k].digest, ne[a->n].digest, SHA256_DIGEST_LENGTH)) {
                auth_free(a);
                return auth_err(err, errlen, EST_EUSAGE,
                                "%s line %zu: the same token is listed twice (each token has one "
                                "role)",
                                name, line);
            }
        a->n++;
    }
    *out = a;
    return 0;
}

int auth_load(const char *path, auth_t **out, char *err, size_t errlen)
{
    struct stat st;
    char *buf;
    ssize_t got;
    size_t total = 0;
    int fd, rc;
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return auth_err(err, errlen, -errno, "cannot open the token file %s: %s", path,
                        strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return auth_err(err, errlen, EST_EUSAGE, "the token file %s is not a regular file", path);
    }
    if (st.st_mode & 0007) {
        close(fd);
        return auth_err(err, errlen, EST_EUSAGE,
                        "the token file %s can be read or written by other users (mode %04o): "
                        "run 'chmod o-rwx %s' (e.g. chmod 600)",
                        path, (unsigned)(st.st_mode & 07777), path);
    }
    if ((uint64_t)st.st_size > AUTH_FILE_MAX) {
        close(fd);
        return auth_err(err, errlen, EST_EUSAGE, "the token file %s is larger than %u bytes", path,
                        AUTH_FILE_MAX);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (total < (size_t)st.st_size &&
           (got = read(fd, buf + total, (size_t)st.st_size - total)) > 0)
        total += (size_t)got;
    close(fd);
    rc = auth_parse(buf, total, path, out, err, errlen);
    OPENSSL_cleanse(buf, total);
    free(buf);
    return rc;
}

void auth_free(auth_t *a)
{
    if (!a) return;
    free(a->e);
    free(a);
}

size_t auth_count(const auth_t *a)
{
    return a ? a->n : 0;
}

auth_role_t auth_check(const auth_t *a, const char *h, size_t len)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    auth_role_t role = AUTH_ROLE_NONE;
    size_t i = 0, ts;
    if (!a || !h) return AUTH_ROLE_NONE;
    while (i < len && h[i] == ' ')
        i++;
    /* the auth-scheme is case-insensitive (RFC 9110 §11.1) */
    if (len - i < 7 || strncasecmp(h + i, "bearer ", 7) != 0) return AUTH_ROLE_NONE;
    i += 7;
    while (i < len && h[i] == ' ')
        i++;
    ts = i;
    while (i < len && auth_token_char(h[i]))
        i++;
    if (i - ts < AUTH_TOKEN_MIN || i - ts > AUTH_TOKEN_MAX) return AUTH_ROLE_NONE;
    for (size_t k = i; k < len; k++)
        if (h[k] != ' ' && h[k] != '\t') return AUTH_ROLE_NONE;
    SHA256((const unsigned char *)h + ts, i - ts, d);
    for (size_t k = 0; k < a->n; k++) {
        /* no early exit: every entry costs the same */
        int diff = CRYPTO_memcmp(d, a->e[k].digest, sizeof d);
        unsigned mask = (unsigned)-(diff == 0);
        role = (auth_role_t)(((unsigned)role & ~mask) | ((unsigned)a->e[k].role & mask));
    }
    OPENSSL_cleanse(d, sizeof d);
    return role;
}
