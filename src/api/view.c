#include "api/view.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* SipHash with a fixed key: the stamp detects change, it authenticates nothing (the
 * database is trusted), and it must be cheap, since List checks it for every item. */
static const unsigned char stamp_key[crypto_shorthash_KEYBYTES] = "manifold view st";

void view_stamp(const res_row *r, char out[17])
{
    buf b = {0};
    /* Every field a render reads besides the name (the key), NUL-separated. */
    buf_printf(&b, "%lld", r->version);
    const char *parts[] = {r->parent, r->create_time, r->update_time, r->body};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        buf_putc(&b, '\0');
        if (parts[i])
            buf_append(&b, parts[i], strlen(parts[i]));
    }
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)b.data, b.len, stamp_key);
    buf_free(&b);
    sodium_bin2hex(out, 17, h, sizeof h);
}

void view_make(buf *out, const char *epoch, const res_row *r, const char *json, size_t len)
{
    char stamp[17];
    view_stamp(r, stamp);
    buf_printf(out, "%s:%s\n", epoch, stamp);
    buf_append(out, json, len);
}

const char *view_json(const res_row *r, const char *epoch, size_t *len)
{
    const char *v = r->view;
    const char *nl = v ? strchr(v, '\n') : NULL;
    size_t el = strlen(epoch);
    /* "<epoch>:<16 hex>": the whole header must match, so a prefix never passes. */
    if (!nl || (size_t)(nl - v) != el + 17 || memcmp(v, epoch, el) || v[el] != ':')
        return NULL;
    char stamp[17];
    view_stamp(r, stamp);
    if (memcmp(v + el + 1, stamp, 16))
        return NULL;
    *len = strlen(nl + 1);
    return nl + 1;
}
