/* Pagination (spec §1.9): page_size defaults to 10, is clamped to 100, and must be a
 * non-negative integer; page tokens are opaque: URL-safe base64 of a payload (an offset or the last
 * key seen) plus a 12-byte keyed MAC, so a forged or edited token is refused with 400
 * instead of walking the table from an arbitrary place. */
#include "api/call.h"
#include "util/json.h"
#include "util/util.h"
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 10
#define PAGE_MAX 100

void page_token_encode(const char *payload, char *out, size_t cap)
{
    size_t n = strlen(payload);
    unsigned char raw[600];
    if (n > sizeof raw - 12 || (n + 12 + 2) / 3 * 4 + 1 > cap) {
        out[0] = '\0';
        return;
    }
    memcpy(raw, payload, n);
    auth_mac(raw, n, raw + n);
    b64url_encode(raw, n + 12, out); /* URL-safe: clients paste it into query strings */
}

int page_token_decode(const char *token, char *payload, size_t cap)
{
    unsigned char raw[600];
    long n = b64_decode(token, strlen(token), raw, sizeof raw);
    if (n < 12 || (size_t)n - 12 >= cap)
        return -1;
    unsigned char mac[12];
    auth_mac(raw, (size_t)n - 12, mac);
    if (sodium_memcmp(mac, raw + n - 12, 12) != 0)
        return -1;
    memcpy(payload, raw, (size_t)n - 12);
    payload[n - 12] = '\0';
    if (strlen(payload) != (size_t)n - 12)
        return -1;
    return 0;
}

bool page_parse(call *c, page *p)
{
    p->size = PAGE_DEFAULT;
    p->after[0] = '\0';
    const char *s = req_query(c->req, "page_size");
    if (!s)
        s = req_query(c->req, "pageSize");
    if (s && *s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (*end || v < 0)
            return fail(c, 400, CODE_INVALID, "page_size must be a non-negative integer");
        p->size = v == 0 ? PAGE_DEFAULT : v > PAGE_MAX || errno ? PAGE_MAX : (int)v;
    }
    const char *t = req_query(c->req, "page_token");
    if (!t)
        t = req_query(c->req, "pageToken");
    if (t && *t && page_token_decode(t, p->after, sizeof p->after) != 0)
        return fail(c, 400, CODE_INVALID, "invalid page_token");
    return true;
}

void page_token_write(buf *out, const char *payload)
{
    char tok[1024] = "";
    if (payload && *payload)
        page_token_encode(payload, tok, sizeof tok);
    buf_puts(out, ",\"next_page_token\":");
    json_write_string(out, tok, strlen(tok));
}

bool page_after_id(call *c, const page *p, const char *list, long long *id)
{
    *id = 0;
    if (!p->after[0])
        return true;
    size_t n = strlen(list);
    const char *v = p->after + n + 1;
    char *end;
    if (strncmp(p->after, list, n) || p->after[n] != ':' || *v < '1' || *v > '9')
        return fail(c, 400, CODE_INVALID, "invalid page_token");
    errno = 0;
    *id = strtoll(v, &end, 10);
    if (*end || errno)
        return fail(c, 400, CODE_INVALID, "invalid page_token");
    return true;
}

void page_id_payload(char *out, size_t cap, const char *list, long long id)
{
    snprintf(out, cap, "%s:%lld", list, id);
}
