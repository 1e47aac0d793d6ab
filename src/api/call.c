/* The helpers every handler calls: errors, replies, path parameters, the JSON body and
 * the unknown-field check. See call.h. */
#include "api/call.h"
#include "util/json.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "util/util.h"
#include <string.h>

bool fail(call *c, int status, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    resp_error(c->resp, status, code, msg);
    c->failed = true;
    return false;
}

bool fail_store(call *c, int rc, const char *what)
{
    switch (rc) {
    case ST_NOT_FOUND: return fail(c, 404, CODE_NOT_FOUND, "%s not found", what);
    case ST_CONFLICT: return fail(c, 409, CODE_EXISTS, "%s already exists", what);
    default: return fail(c, 500, CODE_INTERNAL, "internal error");
    }
}

void reply(call *c, json_t *v)
{
    c->resp->status = 200;
    c->resp->body.len = 0;
    json_write(&c->resp->body, v);
    json_decref(v);
}

const char *call_param(const call *c, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < c->nparams; i++)
        if (c->pname_len[i] == n && !memcmp(c->pname[i], name, n))
            return c->pval[i];
    return NULL;
}

json_t *call_body(call *c)
{
    if (c->body)
        return c->body;
    const buf *b = &c->req->body;
    size_t i = 0;
    while (i < b->len && isspace((unsigned char)b->data[i]))
        i++;
    if (i == b->len) {
        c->body = json_object();
        return c->body;
    }
    char err[256];
    json_t *v = json_parse_strict(b->data, b->len, err, sizeof err);
    if (!v) {
        fail(c, 400, CODE_INVALID, "%s", err);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        fail(c, 400, CODE_INVALID, "request body must be a JSON object");
        return NULL;
    }
    c->body = v;
    return v;
}

/* "displayName" → "display_name"; returns false when the key has no upper case. */
static bool camel_to_snake(const char *in, char *out, size_t cap)
{
    bool changed = false;
    size_t o = 0;
    for (; *in && o + 2 < cap; in++) {
        if (isupper((unsigned char)*in)) {
            out[o++] = '_';
            out[o++] = (char)tolower((unsigned char)*in);
            changed = true;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
    return changed;
}

bool check_fields(call *c, json_t *obj, const char *where, const char *const *allowed)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, v) {
        if (str_in(allowed, k))
            continue;
        char snake[128];
        if (camel_to_snake(k, snake, sizeof snake)) {
            if (str_in(allowed, snake) && !json_object_get(obj, snake)) {
                json_object_set(obj, snake, v);
                json_object_del(obj, k);
                continue;
            }
        }
        return fail(c, 400, CODE_INVALID, "unknown field '%s'%s%s", k, where ? " in " : "", where ? where : "");
    }
    return true;
}

int query_flag(const char *v)
{
    if (!v)
        return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1"))
        return 1;
    return !strcmp(v, "false") || !strcmp(v, "0") ? 0 : -1;
}
