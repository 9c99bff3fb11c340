/*
 * err.c - the error record every handle carries (util.h's kvs_err): a
 * failure's code, page, errno and message, recorded where it happens and
 * returned up unchanged, so the host sees the first layer's own words.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include "util.h"

int kvs_seterr(kvs_err *e, int code, uint32_t page, const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return code;
    e->code = code;
    e->page = code == KVS_ECORRUPT ? page : 0;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int kvs_seterrno(kvs_err *e, int err, uint32_t page, const char *what)
{
    int code = (err == ENOSPC || err == EDQUOT) ? KVS_ENOSPC : KVS_EIO;
    kvs_seterr(e, code, 0, "%s (page %u): %s", what, (unsigned)page, strerror(err));
    if (e)
        e->sys_errno = err;
    return code;
}
