/* §13.6 function preview: runs the request's code in a fresh instance of the Functions
 * runtime (functions-runtime.md §9.3) and answers with its result, logs and session id.
 *
 * The request is checked here, completely, before anything runs (400/3 with the spec's
 * error body). The run itself may take up to the runtime's time limit (5 s), so the
 * handler never waits for it: it suspends the connection (http_defer) and the runtime's
 * completion callback, on a runtime thread, writes the answer and resumes it. The
 * callback owns everything it needs (preview_job); the call itself is gone by then. */
#include "api/engine.h"
#include "functions/runtime.h"
#include "util/json.h"
#include "util/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE_MAX (1024 * 1024)

typedef struct preview_job {
    request *req;
    response *resp;
    char *session_id;
    char *code, *settings, *input;
    fn_kind kind;
    int64_t start_ms;
} preview_job;

/* RFC 3339 with milliseconds always (the spec's created_at: "2020-07-31T22:16:25.656Z"). */
static void time_ms(int64_t ms, char out[40])
{
    char base[32];
    if (ms < 0)
        ms = 0;
    rfc3339(ms - ms % 1000, base); /* whole seconds: no fraction */
    base[20] = '\0';               /* "2020-07-31T22:16:25Z" → cut the Z */
    size_t n = strlen(base);
    if (n && base[n - 1] == 'Z')
        base[n - 1] = '\0';
    snprintf(out, 40, "%.24s.%03uZ", base, (unsigned)(ms % 1000));
}

static void preview_done(void *ctx, const fn_result *r)
{
    preview_job *j = ctx;
    json_t *invoke = json_object();
    json_object_set_new(invoke, "success", json_boolean(r->success));
    json_object_set_new(invoke, "output", json_string(r->success ? (r->output ? r->output : "null") : ""));
    json_object_set_new(invoke, "error_reason",
                        r->success ? json_null() : json_string(r->error_reason ? r->error_reason : "error"));
    json_t *logs = json_array(), *tlogs = json_array();
    for (size_t i = 0; i < r->nlogs; i++) {
        char when[40];
        time_ms(r->logs[i].time_ms, when);
        const char *m = r->logs[i].message ? r->logs[i].message : "";
        json_array_append_new(logs, json_pack("{s:s, s:s}", "message", m, "created_at", when));
        json_array_append_new(tlogs, json_pack("{s:s, s:s, s:s}", "time", when, "key", "NOTICE", "value", m));
    }
    /* The sample's CloudEvents-like trace (optional in the spec): what ran, when, how long. */
    char start[40], now[40], dur[32], src[160];
    time_ms(j->start_ms, start);
    time_ms(now_ms(), now);
    snprintf(dur, sizeof dur, "%.3fs", (double)r->duration_ms / 1000.0);
    snprintf(src, sizeof src, "preview-%s", j->session_id);
    json_object_set_new(invoke, "trace",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:o}}", "source", src, "version",
                                  j->session_id, "specversion", "1.0", "type", "com.segment.event.ack", "time", now,
                                  "trace", "name", "invoke", "time", start, "duration", dur, "logs", tlogs));
    json_t *out = json_pack("{s:o, s:o, s:b, s:s}", "invoke", invoke, "logs", logs, "logs_truncated",
                            r->logs_truncated, "session_id", j->session_id);
    j->resp->status = 200;
    j->resp->body.len = 0;
    json_write(&j->resp->body, out);
    json_decref(out);
    request *req = j->req;
    free(j->session_id), free(j->code), free(j->settings), free(j->input);
    free(j);
    http_resume(req);
}

/* Values by name: function.settings[].value, then the top-level settings object. */
static json_t *settings_of(call *c, json_t *defs, json_t *top)
{
    json_t *vals = json_object();
    if (defs && !json_is_array(defs))
        return json_decref(vals), fail(c, 400, CODE_INVALID, "function.settings must be a list"), NULL;
    size_t i;
    json_t *s;
    json_array_foreach(defs, i, s) {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (!json_is_object(s) || !n || !*n)
            return json_decref(vals), fail(c, 400, CODE_INVALID, "function.settings[%zu].name is required", i), NULL;
        json_t *v = json_object_get(s, "value");
        const char *t = json_string_value(json_object_get(s, "type"));
        if (v && !json_is_null(v) && t && (!strcmp(t, "string") || !strcmp(t, "boolean") || !strcmp(t, "text-map") ||
                                         !strcmp(t, "array")) && !fn_value_fits(t, v))
            return json_decref(vals), fail(c, 400, CODE_INVALID, "function.settings[%zu].value does not fit type %s", i, t),
                   NULL;
        if (v && !json_is_null(v))
            json_object_set(vals, n, v);
    }
    if (top && !json_is_object(top))
        return json_decref(vals), fail(c, 400, CODE_INVALID, "settings must be an object {name: value}"), NULL;
    json_object_update(vals, top);
    return vals;
}

/* headers: {name: [values]} (a single string is taken as one value). */
static bool check_headers(call *c, json_t *h)
{
    if (!json_is_object(h))
        return fail(c, 400, CODE_INVALID, "payload.payload.headers must be an object of {name: [values]}");
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(h, tmp, k, v) {
        if (json_is_string(v)) {
            json_object_set_new(h, k, json_pack("[O]", v));
            continue;
        }
        size_t i;
        json_t *e;
        if (!json_is_array(v))
            return fail(c, 400, CODE_INVALID, "payload.payload.headers.%s must be a list of strings", k);
        json_array_foreach(v, i, e) if (!json_is_string(e)) return fail(c, 400, CODE_INVALID,
                                                                         "payload.payload.headers.%s must be a list of strings", k);
    }
    return true;
}

static bool check_query(call *c, json_t *q)
{
    if (!json_is_object(q))
        return fail(c, 400, CODE_INVALID, "payload.payload.queryParameters must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(q, k, v) {
        size_t i;
        json_t *e;
        bool ok = json_is_string(v) || json_is_array(v);
        json_array_foreach(v, i, e) ok = ok && json_is_string(e);
        if (!ok)
            return fail(c, 400, CODE_INVALID, "payload.payload.queryParameters.%s must be a string or a list of strings", k);
    }
    return true;
}

/* Checks the decoded payload for the type and returns the runtime's input text (NULL
 * after fail()); *kind says how to run it. */
static char *input_of(call *c, const char *type, json_t *doc, fn_kind *kind)
{
    if (!strcmp(type, "SOURCE")) {
        static const char *const top[] = {"payload", NULL};
        static const char *const inner[] = {"body", "headers", "queryParameters", "url", NULL};
        json_t *p = json_is_object(doc) ? json_object_get(doc, "payload") : NULL;
        if (!json_is_object(p))
            return fail(c, 400, CODE_INVALID,
                        "payload must encode {\"payload\": {\"body\": …, \"headers\": {…}, \"queryParameters\": {…}}}"),
                   NULL;
        if (!check_fields(c, doc, "payload", top) || !check_fields(c, p, "payload.payload", inner))
            return NULL;
        json_t *h = json_object_get(p, "headers"), *q = json_object_get(p, "queryParameters"),
               *u = json_object_get(p, "url");
        if ((h && !check_headers(c, h)) || (q && !check_query(c, q)))
            return NULL;
        if (u && !json_is_string(u))
            return fail(c, 400, CODE_INVALID, "payload.payload.url must be a string"), NULL;
        if (!json_object_get(p, "body"))
            json_object_set_new(p, "body", json_object());
        if (!h)
            json_object_set_new(p, "headers", json_object());
        if (!q)
            json_object_set_new(p, "queryParameters", json_object());
        *kind = FN_KIND_SOURCE;
        return json_to_string(doc);
    }
    /* DESTINATION: one event, or an array of events for onBatch (§9.3). */
    if (json_is_array(doc)) {
        size_t i;
        json_t *e;
        if (!json_array_size(doc))
            return fail(c, 400, CODE_INVALID, "payload: an array of events must not be empty"), NULL;
        json_array_foreach(doc, i, e) if (!json_is_object(e)) return fail(c, 400, CODE_INVALID,
                                                                          "payload[%zu] must be an event object", i),
                                                               NULL;
        *kind = FN_KIND_BATCH;
        return json_to_string(doc);
    }
    if (!json_is_object(doc))
        return fail(c, 400, CODE_INVALID, "payload must encode an event object (or an array of events)"), NULL;
    json_t *t = json_object_get(doc, "type");
    if (t && !json_is_string(t))
        return fail(c, 400, CODE_INVALID, "payload: the event's type must be a string"), NULL;
    *kind = FN_KIND_DESTINATION;
    return json_to_string(doc);
}

void h_fn_preview(call *c)
{
    static const char *const top[] = {"type", "function", "payload", "session_id", "settings", NULL};
    static const char *const fields[] = {"code", "buildpack", "settings", "type", "display_name", "description",
                                         "logo_url", "id", "workspace_id", "catalog_id", "created_at", "created_by",
                                         NULL};
    json_t *body = call_body(c);
    if (!body || !check_fields(c, body, NULL, top))
        return;
    json_t *fn = json_object_get(body, "function");
    if (!json_is_object(fn))
        return (void)fail(c, 400, CODE_INVALID, "function is required and must be an object");
    if (!check_fields(c, fn, "function", fields))
        return;
    const char *type = fn_request_type(c, body, fn);
    if (!type)
        return;
    json_t *code = json_object_get(fn, "code");
    if (!json_is_string(code) || !json_string_length(code))
        return (void)fail(c, 400, CODE_INVALID, "function.code is required and must be a non-empty string");
    if (json_string_length(code) > CODE_MAX)
        return (void)fail(c, 400, CODE_INVALID, "function.code is %zu bytes; at most %d bytes (1 MiB) are allowed",
                          json_string_length(code), CODE_MAX);
    json_t *bp = json_object_get(fn, "buildpack");
    if (bp && (!json_is_string(bp) || strcmp(json_string_value(bp), "boreal")))
        return (void)fail(c, 400, CODE_INVALID, "function.buildpack must be \"boreal\"");
    json_t *sid = json_object_get(body, "session_id");
    if (sid && (!json_is_string(sid) || json_string_length(sid) > 128))
        return (void)fail(c, 400, CODE_INVALID, "session_id must be a string of at most 128 bytes");
    json_t *payload = json_object_get(body, "payload");
    if (!json_is_string(payload))
        return (void)fail(c, 400, CODE_INVALID, "payload is required and must be a JSON string");
    char err[256];
    json_t *doc = json_parse_strict(json_string_value(payload), json_string_length(payload), err, sizeof err);
    if (!doc)
        return (void)fail(c, 400, CODE_INVALID, "payload is not valid JSON: %s", err);
    fn_kind kind;
    char *input = input_of(c, type, doc, &kind);
    json_decref(doc);
    if (!input)
        return;
    json_t *vals = settings_of(c, json_object_get(fn, "settings"), json_object_get(body, "settings"));
    if (!vals) {
        free(input);
        return;
    }
    preview_job *j = calloc(1, sizeof *j);
    j->req = c->req;
    j->resp = c->resp;
    j->kind = kind;
    j->input = input;
    j->code = strdup(json_string_value(code));
    j->settings = json_to_string(vals);
    json_decref(vals);
    if (sid && json_string_length(sid)) {
        j->session_id = strdup(json_string_value(sid));
    } else {
        char id[28];
        ksuid(id);
        j->session_id = strdup(id);
    }
    j->start_ms = now_ms();
    fn_call call = {.kind = j->kind, .instance = j->session_id, .code_version = "preview", .code = j->code,
                    .settings = j->settings, .input = j->input, .fresh = true};
    if (!c->api->functions) { /* no runtime was started (admin tools, unit tests) */
        fn_result r = {.error_name = (char *)"RuntimeUnavailable", .error_message = (char *)"runtime unavailable",
                       .error_reason = (char *)"runtime unavailable"};
        http_defer(c->req);
        preview_done(j, &r);
        return;
    }
    /* The answer is written by preview_done, maybe before fnrt_invoke returns. */
    http_defer(c->req);
    fnrt_invoke(c->api->functions, &call, preview_done, j);
}
