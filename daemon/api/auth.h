/* SPDX-License-Identifier: MIT */
/* auth.h — API bearer tokens and roles (docs/API.md "Authentication and roles"): the token file
 * (`<role> <token>` per line, never readable by "other"), lookups in constant time, and which
 * role may do what.
 * Owns: the tokens (kept only as SHA-256 digests after loading). Must not: log or print a token,
 * know about HTTP beyond the Authorization header's value. */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_TOKEN_MIN 16
#define AUTH_TOKEN_MAX 256
#define AUTH_MAX_TOKENS 1024
#define AUTH_FILE_MAX (1024u * 1024u)

typedef enum {
    AUTH_ROLE_NONE, /* no token, or one the file does not list */
    AUTH_ROLE_VIEWER,
    AUTH_ROLE_MES,
    AUTH_ROLE_OPERATOR,
    AUTH_ROLE_ENGINEER,
} auth_role_t;

/* What a request needs (docs/API.md's role table). */
typedef enum {
    AUTH_PERM_NONE,     /* GET /api/v1/auth: anyone (it says what the caller's token may do) */
    AUTH_PERM_READ,     /* every GET: any role */
    AUTH_PERM_EXPORT,   /* GET /api/v1/jobs.csv: every role but viewer */
    AUTH_PERM_OPERATE,  /* start / cancel: operator, engineer */
    AUTH_PERM_ENGINEER, /* recipes, images, slot recipes: engineer */
} auth_perm_t;

typedef struct auth_s auth_t;

/* Load a token file. Refused (with `err` saying why and how to fix it) when the file can be read
 * or written by "other" users, is not a regular file, or has a malformed line (named by number).
 * Returns 0 or a negative errno / EST_EUSAGE. */
int auth_load(const char *path, auth_t **out, char *err, size_t errlen);
/* The same for text in memory (no permission check); `name` names it in errors. */
int auth_parse(const char *text, size_t len, const char *name, auth_t **out, char *err,
               size_t errlen);
void auth_free(auth_t *a);
size_t auth_count(const auth_t *a);

/* The role of an Authorization header value ("Bearer <token>"; NULL or malformed = NONE). Every
 * known token is compared (CRYPTO_memcmp of SHA-256 digests), so the time taken does not depend
 * on which token, or how much of one, matched. `a` may be NULL (no token file): NONE. */
auth_role_t auth_check(const auth_t *a, const char *header, size_t len);
/* Whether `role` may do `perm`. */
bool auth_allows(auth_role_t role, auth_perm_t perm);
const char *auth_role_name(auth_role_t role);

#endif
