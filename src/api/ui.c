/* The browser dashboard's static files (docs/dashboard.md): GET / redirects to /ui/, GET /ui/
 * is index.html, GET /ui/<file> one of the files compiled in from ui/ (api/ui_assets.h). No
 * token: the files hold no data; the page asks the API for everything with the token the
 * user pastes, so IAM applies to it unchanged. An unknown /ui/ path is a 404 (the client
 * routes with the #fragment, so no path needs to fall back to index.html). */
#include "api/call.h"
#include "api/ui_assets.h"
#include <string.h>

/* The page runs only its own files: no inline script or style, no other origin, no framing. */
#define UI_CSP "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " \
               "script-src 'self'; frame-ancestors 'none'"

void h_ui_root(call *c)
{
    c->resp->status = 302;
    resp_header(c->resp, "Location", "/ui/");
    resp_header(c->resp, "Content-Type", "text/plain; charset=utf-8");
    buf_puts(&c->resp->body, "/ui/\n");
}

/* Does an If-None-Match list ("a", "b" or *) name etag? Weak validators match too (RFC 9110
 * §13.1.2: the comparison for If-None-Match is weak). */
static bool etag_listed(const char *list, const char *etag)
{
    size_t el = strlen(etag);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (!strncmp(p, "W/", 2))
            p += 2;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && !memcmp(p, etag, el))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

void h_ui_asset(call *c)
{
    const char *name = call_param(c, "file");
    if (!name)
        name = "index.html";
    const ui_asset *a = NULL;
    for (size_t i = 0; i < ui_nassets; i++)
        if (!strcmp(ui_assets[i].name, name))
            a = &ui_assets[i];
    if (!a) {
        fail(c, 404, CODE_NOT_FOUND, "not found");
        return;
    }
    response *w = c->resp;
    resp_header(w, "Content-Type", a->type);
    resp_header(w, "ETag", a->etag);
    /* Revalidated on every load (a 304 is cheap), so a new binary's files show at once. */
    resp_header(w, "Cache-Control", "no-cache");
    resp_header(w, "Content-Security-Policy", UI_CSP);
    resp_header(w, "X-Content-Type-Options", "nosniff");
    resp_header(w, "Referrer-Policy", "no-referrer");
    const char *inm = req_header(c->req, "If-None-Match");
    if (inm && etag_listed(inm, a->etag)) {
        w->status = 304;
        return;
    }
    buf_append(&w->body, a->data, a->len);
}
