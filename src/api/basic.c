/* Health checks, workspaces and the two catalogs: the read-only resources. */
#include "api/engine.h"
#include "util/json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h_healthz(call *c)
{
    buf_puts(&c->resp->body, "{\"status\":\"ok\"}");
}

void h_readyz(call *c)
{
    if (!store_ping(c->api->st)) {
        fail(c, 503, CODE_UNAVAILABLE, "database unreachable");
        return;
    }
    buf_printf(&c->resp->body, "{\"status\":\"ready\",\"database\":\"%s\"}", store_backend(c->api->st));
}

/* ---- workspaces (spec §6) ---- */

static void ws_write(buf *b, const ws_row *w)
{
    buf_puts(b, "{\"name\":\"workspaces/");
    buf_puts(b, w->slug); /* slugs are [a-z0-9_-]: no escaping needed */
    buf_puts(b, "\",\"display_name\":");
    json_write_string(b, w->display_name, strlen(w->display_name));
    buf_puts(b, ",\"id\":\"");
    buf_puts(b, w->id);
    buf_puts(b, "\",\"create_time\":\"");
    buf_puts(b, w->create_time);
    buf_puts(b, "\"}");
}

void h_ws_get(call *c)
{
    ws_write(&c->resp->body, &c->ws);
}

void h_ws_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    /* Only the workspaces this token may use: at most AUTH_MAX_WS, so no SQL paging. */
    const char *slugs[AUTH_MAX_WS];
    int n = 0;
    for (int i = 0; i < c->who.nws; i++) {
        char name[128];
        snprintf(name, sizeof name, "workspaces/%s", c->who.ws[i]);
        /* Only workspaces the caller may read (a user without policies there sees none). */
        if (strcmp(c->who.ws[i], p.after) > 0 && iam_allows(&c->who, ACT_READ, name))
            slugs[n++] = c->who.ws[i];
    }
    for (int i = 1; i < n; i++) /* insertion sort: n <= 16 */
        for (int j = i; j > 0 && strcmp(slugs[j - 1], slugs[j]) > 0; j--) {
            const char *t = slugs[j];
            slugs[j] = slugs[j - 1];
            slugs[j - 1] = t;
        }
    buf *b = &c->resp->body;
    buf_puts(b, "{\"workspaces\":[");
    int shown = 0;
    const char *last = NULL;
    for (int i = 0; i < n && shown < p.size; i++) {
        ws_row w;
        int rc = api_ws_lookup(c->api, slugs[i], &w);
        if (rc == ST_NOT_FOUND)
            continue;
        if (rc != ST_OK) {
            fail_store(c, rc, "workspace");
            return;
        }
        if (shown++)
            buf_putc(b, ',');
        ws_write(b, &w);
        last = slugs[i];
    }
    bool more = false;
    for (int i = 0; i < n; i++)
        if (last && strcmp(slugs[i], last) > 0)
            more = true;
    buf_putc(b, ']');
    page_token_write(b, more ? last : NULL);
    buf_putc(b, '}');
}

/* ---- catalogs (spec §4, §5) ---- */

static void cat_list_page(call *c, const cat_list *l, const char *key)
{
    page p;
    if (!page_parse(c, &p))
        return;
    /* The payload names its list ("sources:20"), so a token from one list is refused on
     * another instead of being read as an offset there. */
    size_t off = 0, kl = strlen(key);
    if (p.after[0]) {
        char *end;
        if (strncmp(p.after, key, kl) || p.after[kl] != ':' || p.after[kl + 1] < '0' || p.after[kl + 1] > '9') {
            fail(c, 400, CODE_INVALID, "invalid page_token");
            return;
        }
        unsigned long v = strtoul(p.after + kl + 1, &end, 10);
        if (*end) {
            fail(c, 400, CODE_INVALID, "invalid page_token");
            return;
        }
        off = v > l->n ? l->n : v;
    }
    buf *b = &c->resp->body;
    size_t end = off + (size_t)p.size;
    if (end > l->n)
        end = l->n;
    size_t need = 128;
    for (size_t i = off; i < end; i++)
        need += l->items[i].json_len + 1;
    buf_reserve(b, need); /* one allocation for the page, no regrowth while copying */
    buf_printf(b, "{\"%s\":[", key);
    for (size_t i = off; i < end; i++) {
        if (i > off)
            buf_putc(b, ',');
        buf_append(b, l->items[i].json, l->items[i].json_len);
    }
    buf_putc(b, ']');
    char next[64] = "";
    if (end < l->n)
        snprintf(next, sizeof next, "%s:%zu", key, end);
    page_token_write(b, next);
    buf_putc(b, '}');
}

static void cat_get(call *c, const cat_list *l, const char *what)
{
    const cat_item *it = catalog_find(l, call_param(c, "slug"));
    if (!it) {
        fail(c, 404, CODE_NOT_FOUND, "catalog %s '%s' not found", what, call_param(c, "slug"));
        return;
    }
    buf_append(&c->resp->body, it->json, it->json_len);
}

void h_catsrc_list(call *c) { cat_list_page(c, &c->api->cat->sources, "sources"); }
void h_catdst_list(call *c) { cat_list_page(c, &c->api->cat->destinations, "destinations"); }
void h_catsrc_get(call *c) { cat_get(c, &c->api->cat->sources, "source"); }
void h_catdst_get(call *c) { cat_get(c, &c->api->cat->destinations, "destination"); }
