/* The source debugger (beyond Segment): the events the intake stored for a source, newest
 * first, and its lifetime counters. Read-only views of the intake's event log
 * (store.h, "intake"); the router has already checked read access to the source.
 *
 * The debugger shows a source's newest --debugger-events events (api.debugger_events):
 * older ones stay in the log (delivery reads it) but drop out of this view. Pages are
 * keyed by the last event id shown, in a signed page token. */
#include "api/engine.h"
#include "util/json.h"
#include "util/util.h"
#include "ingest/msg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The source named by the path, which must exist. */
static char *source_of(call *c)
{
    char *name = engine_path_name(c, 1); /* drop "events" / "events:summary" */
    res_row r = {0};
    txn t;
    store_begin(c->api->st, &t, false);
    int rc = store_res_get(&t, name, &r);
    store_end(&t);
    bool ok = rc == ST_OK && !strcmp(r.kind, "source");
    res_row_clear(&r);
    if (!ok) {
        free(name);
        fail_store(c, rc == ST_OK ? ST_NOT_FOUND : rc, "source");
        return NULL;
    }
    return name;
}

typedef struct page_out {
    buf *out;
    int n, limit;
    bool more;          /* a row past the page came: there is a next page */
    long long last_id;
} page_out;

static int write_event(void *ctx, const event_row *e)
{
    page_out *po = ctx;
    if (po->n == po->limit) {
        po->more = true;
        return 1;
    }
    buf *o = po->out;
    char at[32];
    ingest_format_time(e->received_ms * 1000, at);
    buf_puts(o, po->n++ ? ",{\"received_at\":\"" : "{\"received_at\":\"");
    buf_puts(o, at);
    buf_puts(o, "\",\"message_id\":");
    json_write_string(o, e->message_id, strlen(e->message_id));
    buf_printf(o, ",\"type\":\"%s\",\"status\":\"%s\",\"violations\":", e->type, e->status);
    /* Both texts were written by the intake's JSON writer: copied, not re-parsed. */
    buf_puts(o, e->violations);
    buf_puts(o, ",\"event\":");
    buf_puts(o, e->event);
    buf_putc(o, '}');
    po->last_id = e->id;
    return 0;
}

void h_events_list(call *c)
{
    page p;
    if (!page_parse(c, &p))
        return;
    long long before;
    if (!page_after_id(c, &p, "events", &before))
        return;
    char *src = source_of(c);
    if (!src)
        return;
    txn t;
    store_begin(c->api->st, &t, false);
    long long min_id = 0;
    int rc = store_events_nth_id(&t, src, c->api->debugger_events, &min_id);
    if (rc == ST_NOT_FOUND)
        rc = ST_OK, min_id = 0;
    buf out = {0};
    buf_puts(&out, "{\"events\":[");
    page_out po = {.out = &out, .limit = p.size};
    if (rc == ST_OK)
        rc = store_events_list(&t, src, before, min_id, p.size + 1, write_event, &po);
    store_end(&t);
    free(src);
    if (rc != ST_OK) {
        buf_free(&out);
        return (void)fail_store(c, rc, "events");
    }
    char next[48] = "";
    if (po.more)
        page_id_payload(next, sizeof next, "events", po.last_id);
    buf_putc(&out, ']');
    page_token_write(&out, next);
    buf_putc(&out, '}');
    buf_free(&c->resp->body);
    c->resp->body = out;
    c->resp->status = 200;
}

static int add_reason(void *ctx, const char *reason, long long n)
{
    json_object_set_new(ctx, reason, json_integer(n));
    return 0;
}

void h_events_summary(call *c)
{
    char *src = source_of(c);
    if (!src)
        return;
    txn t;
    intake_counts k;
    json_t *reasons = json_object();
    store_begin(c->api->st, &t, false);
    int rc = store_counts_get(&t, src, &k);
    if (rc == ST_OK)
        rc = store_reasons_list(&t, src, add_reason, reasons);
    store_end(&t);
    free(src);
    if (rc != ST_OK) {
        json_decref(reasons);
        return (void)fail_store(c, rc, "counters");
    }
    reply(c, json_pack("{s:I, s:I, s:I, s:I, s:I, s:o}", "received", (json_int_t)k.received, "accepted",
                       (json_int_t)k.accepted, "blocked", (json_int_t)k.blocked, "duplicate",
                       (json_int_t)k.duplicate, "rejected", (json_int_t)k.rejected, "rejected_reasons", reasons));
}
