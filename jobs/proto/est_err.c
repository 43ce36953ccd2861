/* SPDX-License-Identifier: MIT */
/* est_err.c — texts for EST_* / UV_E* error codes and the error-class table.
 * Owns: est_strerror and the class name lookups generated from est_err.h's X-macros.
 * Must not: depend on libuv (negative errno texts come from the C library's static table) or keep
 * mutable state (every function here is thread-safe). */
#include "est_err.h"

#include <string.h>

/* libuv codes that are not negative errno values. The numbers are libuv's ABI (uv/errno.h);
 * restated here because proto must not include uv.h. */
#define EST__UV_EOF (-4095)
#define EST__UV_ECHARSET (-4080)
#define EST__UV_EAI_MIN (-3014)
#define EST__UV_EAI_MAX (-3000)

const char *est_strerror(int err)
{
    switch (err) {
    case 0: return "success";
#define XX(name, val, text)                                                                        \
    case (val): return (text);
        EST_ERRNO_MAP(XX)
#undef XX
    case EST__UV_EOF: return "end of file";
    case EST__UV_ECHARSET: return "invalid Unicode character";
    default: break;
    }
    if (err >= EST__UV_EAI_MIN && err <= EST__UV_EAI_MAX) return "address resolution failed";
    if (err < 0 && err > -4096) {
        /* strerrordesc_np (glibc >= 2.32) returns a pointer into the C library's constant table:
         * unlike strerror() it never formats into a shared buffer, so it is thread-safe. */
        const char *s = strerrordesc_np(-err);
        if (s) return s;
    }
    return "unknown error";
}

static const char *const est__class_names[] = {
#define XX(e, name) name,
    EST_CLASS_MAP(XX)
#undef XX
};

const char *est_class_name(est_class_t c)
{
    if ((unsigned)c >= EST_CLASS__COUNT) return "internal";
    return est__class_names[c];
}

est_class_t est_class_from_name(const char *name)
{
    if (!name) return EST_CLASS__COUNT;
    for (unsigned i = 0; i < EST_CLASS__COUNT; i++)
        if (strcmp(est__class_names[i], name) == 0) return (est_class_t)i;
    return EST_CLASS__COUNT;
}
