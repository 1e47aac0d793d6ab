/* Tracking API bodies: decompression, parsing, §4.3 checks, §5 merge, §6 enrichment. */
#include "ingest/msg.h"
#include "util/json.h"
#include "util/util.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---- kinds ----------------------------------------------------------------------------- */

static const char *const type_names[] = {"track", "identify", "page", "screen", "group", "alias"};

ingest_kind ingest_kind_of(const char *seg)
{
    static const struct { const char *name; ingest_kind k; } map[] = {
        {"track", IK_TRACK}, {"t", IK_TRACK}, {"identify", IK_IDENTIFY}, {"i", IK_IDENTIFY},
        {"page", IK_PAGE}, {"p", IK_PAGE}, {"screen", IK_SCREEN}, {"s", IK_SCREEN},
        {"group", IK_GROUP}, {"g", IK_GROUP}, {"alias", IK_ALIAS}, {"a", IK_ALIAS},
        {"batch", IK_BATCH}, {"import", IK_BATCH}, {"b", IK_BATCH},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(seg, map[i].name))
            return map[i].k;
    return IK_NONE;
}

const char *ingest_type_name(ingest_kind k)
{
    return k >= IK_TRACK && k <= IK_ALIAS ? type_names[k] : "batch";
}

/* ---- decompression ----------------------------------------------------------------------- */

int ingest_inflate(const char *enc, const char *in, size_t n, size_t limit, buf *out)
{
    if (!enc || !*enc || !strcasecmp(enc, "identity")) {
        if (n > limit)
            return 1;
        buf_append(out, in, n);
        return 0;
    }
    int wbits;
    if (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "x-gzip"))
        wbits = 16 + MAX_WBITS;
    else if (!strcasecmp(enc, "deflate"))
        wbits = 32 + MAX_WBITS; /* zlib or gzip header, detected: clients disagree on "deflate" */
    else
        return -1;
    z_stream z = {0};
    if (inflateInit2(&z, wbits) != Z_OK)
        return -1;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int rc = Z_OK, res = 0;
    /* Output goes straight into out, at most limit + 1 bytes: one byte past the limit is
     * enough to know it is over, whatever the stream would expand to. */
    buf_reserve(out, (n * 4 < limit ? n * 4 : limit) + 2);
    while (rc != Z_STREAM_END) {
        if (out->len > limit) {
            res = 1;
            break;
        }
        size_t room = out->cap - out->len - 1;
        if (room == 0) {
            buf_reserve(out, out->cap);
            room = out->cap - out->len - 1;
        }
        if (room > limit + 1 - out->len)
            room = limit + 1 - out->len;
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)room;
        rc = inflate(&z, Z_NO_FLUSH);
        out->len += room - z.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0)) { /* corrupt or truncated */
            res = -1;
            break;
        }
    }
    if (!res && out->len > limit)
        res = 1;
    if (!res && z.avail_in != 0) /* trailing garbage after the stream */
        res = -1;
    if (out->data)
        out->data[out->len] = '\0';
    inflateEnd(&z);
    return res;
}

/* ---- byte spans of batch items ------------------------------------------------------------ */

/* A message's size is its JSON text as received (§7), which jansson does not report: this
 * scanner walks the (already validated) body and measures each element of the top-level
 * "batch" array. Only needed when the body is larger than one message may be. */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t skip_string(const char *s, size_t i, size_t n)
{
    for (i++; i < n && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i + 1;
}

static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return n;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; i < n; i++) {
            char c = s[i];
            if (c == '"')
                i = skip_string(s, i, n) - 1;
            else if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
        }
        return n;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\r' &&
           s[i] != '\t')
        i++;
    return i;
}

/* True when some element of the top-level "batch" array spans more than max bytes. */
static bool batch_item_too_big(const char *s, size_t n, size_t max)
{
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{')
        return false;
    i++;
    while (i < n) {
        i = skip_ws(s, i, n);
        if (i >= n || s[i] != '"')
            return false;
        size_t k0 = i + 1;
        i = skip_string(s, i, n);
        bool is_batch = i - 1 - k0 == 5 && !memcmp(s + k0, "batch", 5);
        i = skip_ws(s, i, n) + 1; /* the colon */
        i = skip_ws(s, i, n);
        if (is_batch && i < n && s[i] == '[') {
            i = skip_ws(s, i + 1, n);
            while (i < n && s[i] != ']') {
                size_t e = skip_value(s, i, n);
                if (e - i > max)
                    return true;
                i = skip_ws(s, e, n);
                if (i < n && s[i] == ',')
                    i = skip_ws(s, i + 1, n);
            }
            return false;
        }
        i = skip_ws(s, skip_value(s, i, n), n);
        if (i < n && s[i] == ',')
            i++;
        else
            return false;
    }
    return false;
}

/* ---- §4.3 checks ---------------------------------------------------------------------------- */

static bool present(const json_t *v) { return v && !json_is_null(v); }
static bool nonempty_string(const json_t *v) { return json_is_string(v) && json_string_length(v) > 0; }

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* The reason m is dropped for, or NULL. type is IK_NONE for a batch item whose type is
 * missing or unknown (rule 11, checked last as the spec orders them). */
static const char *check_message(const json_t *m, ingest_kind type)
{
    const json_t *ctx = json_object_get(m, "context");
    if (present(ctx) && !json_is_object(ctx))
        return "context_not_object";
    const json_t *uid = json_object_get(m, "userId"), *aid = json_object_get(m, "anonymousId");
    if ((present(uid) && !json_is_string(uid)) || (present(aid) && !json_is_string(aid)))
        return "id_not_string";
    if (!nonempty_string(uid) && !nonempty_string(aid))
        return "no_user_anon_id";
    if (type == IK_TRACK) {
        const json_t *ev = json_object_get(m, "event");
        if (!present(ev) || (json_is_string(ev) && !json_string_length(ev)))
            return "event_not_defined";
        if (!json_is_string(ev))
            return "event_not_string";
    }
    const json_t *props = json_object_get(m, "properties");
    if (present(props) && !json_is_object(props))
        return "properties_not_object";
    const json_t *traits = json_object_get(m, "traits");
    if (present(traits) && !json_is_object(traits))
        return "traits_not_object";
    if (type == IK_PAGE || type == IK_SCREEN) {
        if (present(json_object_get(m, "name")) && !nonempty_string(json_object_get(m, "name")))
            return "name_not_string";
        if (present(json_object_get(m, "category")) && !nonempty_string(json_object_get(m, "category")))
            return "category_not_string";
    }
    const json_t *mid = json_object_get(m, "messageId");
    if (present(mid) && (!json_is_string(mid) || utf8_chars(json_string_value(mid), json_string_length(mid)) > 100))
        return "invalid_message_id";
    if (type == IK_NONE)
        return "invalid_type";
    return NULL;
}

static ingest_kind item_type(const json_t *m)
{
    const char *t = json_string_value(json_object_get(m, "type"));
    for (int k = IK_TRACK; t && k <= IK_ALIAS; k++)
        if (!strcmp(t, type_names[k]))
            return (ingest_kind)k;
    return IK_NONE;
}

static bool bad(ingest_req *r, const char *code, const char *message)
{
    r->code = code;
    r->message = message;
    return false;
}

bool ingest_parse(ingest_req *r, ingest_kind kind, const char *body, size_t len)
{
    memset(r, 0, sizeof *r);
    if (len > (kind == IK_BATCH ? INGEST_BATCH_MAX : INGEST_MSG_MAX))
        return bad(r, "payload_too_large", "Exceed payload limit");
    char err[160];
    r->doc = json_parse_strict(body, len, err, sizeof err);
    if (!r->doc)
        return bad(r, "invalid_json", "the body is not valid JSON");
    if (!json_is_object(r->doc))
        return bad(r, "invalid_json", "the body must be a JSON object");
    const json_t *key = json_object_get(r->doc, "writeKey");
    r->body_key = nonempty_string(key) ? json_string_value(key) : NULL;
    if (kind != IK_BATCH) {
        r->items = malloc(sizeof *r->items);
        r->n = 1;
        r->items[0] = (ingest_item){.ev = r->doc, .type = kind};
        r->items[0].reason = check_message(r->doc, kind);
        return true;
    }
    r->envelope = r->doc;
    json_t *batch = json_object_get(r->doc, "batch");
    if (!json_is_array(batch))
        return bad(r, "invalid_batch", "batch must be an array");
    if (len > INGEST_MSG_MAX && batch_item_too_big(body, len, INGEST_MSG_MAX))
        return bad(r, "payload_too_large", "Exceed payload limit");
    size_t n = json_array_size(batch);
    if (n == 0) {
        r->drop_reason = "empty_batch";
        return true;
    }
    r->items = malloc(n * sizeof *r->items);
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(batch, i);
        r->items[i] = (ingest_item){.ev = m, .type = IK_NONE};
        if (!json_is_object(m)) {
            r->items[i].reason = "invalid_type";
            continue;
        }
        r->items[i].type = item_type(m);
        r->items[i].reason = check_message(m, r->items[i].type);
    }
    if (n > INGEST_BATCH_ITEMS)
        r->drop_reason = "batch_too_large";
    return true;
}

void ingest_req_free(ingest_req *r)
{
    json_decref(r->doc);
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* ---- timestamps ----------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool ingest_parse_time(const char *s, int64_t *us)
{
    int y, mo, d, h, mi, se;
    if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
        return false;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 6)
                frac = frac * 10 + (*p - '0');
        if (nd == 0 || nd > 9)
            return false;
        for (int k = nd; k < 6; k++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    *us = secs * 1000000 + frac;
    return true;
}

void ingest_format_time(int64_t us, char *out)
{
    int64_t ms = us >= 0 ? us / 1000 : -((-us + 999) / 1000);
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int msr = (int)(ms - secs * 1000);
    int64_t z = (secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400));
    int64_t sod = secs - z * 86400;
    z += 719468; /* civil_from_days */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y += m <= 2;
    if (y < 0 || y > 9999) { /* outside ISO-8601's four digits: clamp, never overflow out */
        y = y < 0 ? 0 : 9999;
    }
    int hh = (int)(sod / 3600), mi = (int)(sod % 3600 / 60), ss = (int)(sod % 60);
    char *o = out;
    int yy = (int)y;
    o[0] = (char)('0' + yy / 1000), o[1] = (char)('0' + yy / 100 % 10), o[2] = (char)('0' + yy / 10 % 10),
    o[3] = (char)('0' + yy % 10);
    o[4] = '-', o[5] = (char)('0' + m / 10), o[6] = (char)('0' + m % 10), o[7] = '-';
    o[8] = (char)('0' + d / 10), o[9] = (char)('0' + d % 10), o[10] = 'T';
    o[11] = (char)('0' + hh / 10), o[12] = (char)('0' + hh % 10), o[13] = ':';
    o[14] = (char)('0' + mi / 10), o[15] = (char)('0' + mi % 10), o[16] = ':';
    o[17] = (char)('0' + ss / 10), o[18] = (char)('0' + ss % 10), o[19] = '.';
    o[20] = (char)('0' + msr / 100), o[21] = (char)('0' + msr / 10 % 10), o[22] = (char)('0' + msr % 10);
    o[23] = 'Z', o[24] = '\0';
}

/* ---- §5 merge and §6 enrichment ------------------------------------------------------------- */

/* Deep merge of the envelope's context into an item's: item values win. */
static void merge_deep(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) {
        json_t *mine = json_object_get(dst, k);
        if (!mine)
            json_object_set_new(dst, k, json_deep_copy(v));
        else if (json_is_object(mine) && json_is_object(v))
            merge_deep(mine, v);
    }
}

static void merge_envelope(json_t *m, const json_t *env)
{
    const json_t *ectx = json_object_get(env, "context");
    if (json_is_object(ectx)) {
        json_t *ctx = json_object_get(m, "context");
        if (!json_is_object(ctx))
            json_object_set_new(m, "context", json_deep_copy(ectx));
        else
            merge_deep(ctx, ectx);
    }
    json_t *eint = json_object_get(env, "integrations");
    if (json_is_object(eint)) {
        json_t *in = json_object_get(m, "integrations");
        if (!json_is_object(in)) {
            json_object_set_new(m, "integrations", json_copy(eint));
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(eint, k, v) if (!json_object_get(in, k)) json_object_set(in, k, v);
        }
    }
    json_t *sent = json_object_get(env, "sentAt");
    if (sent && !present(json_object_get(m, "sentAt")))
        json_object_set(m, "sentAt", sent);
}

static bool client_library(const char *name)
{
    static const char *const libs[] = {"analytics.js", "analytics-ios", "analytics-android", "analytics-kotlin",
                                       "analytics-swift", "analytics-react-native"};
    for (size_t i = 0; name && i < sizeof libs / sizeof libs[0]; i++)
        if (!strcmp(name, libs[i]))
            return true;
    return false;
}

static void enrich_context(json_t *m, const char *peer_ip)
{
    json_t *ctx = json_object_get(m, "context");
    if (!json_is_object(ctx)) {
        ctx = json_object();
        json_object_set_new(m, "context", ctx);
    }
    json_t *lib = json_object_get(ctx, "library");
    if (!present(lib))
        json_object_set_new(ctx, "library", json_pack("{s:s, s:s}", "name", "unknown", "version", "unknown"));
    if (peer_ip && !json_object_get(ctx, "ip") &&
        (json_is_true(json_object_get(ctx, "direct")) ||
         client_library(json_string_value(json_object_get(json_object_get(ctx, "library"), "name")))))
        json_object_set_new(ctx, "ip", json_string(peer_ip));
}

static void enrich_times(json_t *m, int64_t now_us, const char *received)
{
    json_object_set_new(m, "receivedAt", json_string(received));
    int64_t t, s;
    const char *ts = json_string_value(json_object_get(m, "timestamp"));
    bool has_t = ingest_parse_time(ts, &t);
    bool has_s = has_t && ingest_parse_time(json_string_value(json_object_get(m, "sentAt")), &s);
    if (has_t) {
        json_object_set_new(m, "originalTimestamp", json_string(ts));
        char out[32];
        ingest_format_time(has_s ? now_us - (s - t) : t, out);
        json_object_set_new(m, "timestamp", json_string(out));
    } else {
        json_object_del(m, "originalTimestamp");
        json_object_set_new(m, "timestamp", json_string(received));
    }
}

static void enrich_one(ingest_item *it, const json_t *env, int64_t now_us, const char *received,
                       const char *peer_ip)
{
    json_t *m = it->ev;
    if (env)
        merge_envelope(m, env);
    json_object_set_new(m, "type", json_string(type_names[it->type]));
    const json_t *mid = json_object_get(m, "messageId");
    if (!nonempty_string(mid)) {
        char id[32] = "api-";
        ksuid(id + 4);
        json_object_set_new(m, "messageId", json_string(id));
    }
    enrich_times(m, now_us, received);
    enrich_context(m, peer_ip);
    if (!json_object_get(m, "version"))
        json_object_set_new(m, "version", json_integer(2));
}

void ingest_enrich(ingest_req *r, int64_t now, const char *peer_ip)
{
    char received[32];
    int64_t now_us = now * 1000;
    ingest_format_time(now_us, received);
    for (size_t i = 0; i < r->n; i++)
        if (!r->items[i].reason)
            enrich_one(&r->items[i], r->envelope, now_us, received, peer_ip);
}

/* ---- write key from HTTP Basic -------------------------------------------------------------- */

int ingest_basic_key(const char *authz, char *out, size_t cap)
{
    if (!authz || strncasecmp(authz, "Basic ", 6))
        return 0;
    const char *b = authz + 6;
    while (*b == ' ')
        b++;
    size_t n = strlen(b);
    while (n && b[n - 1] == ' ')
        n--;
    unsigned char raw[512];
    long dn = n ? b64_decode(b, n, raw, sizeof raw - 1) : -1;
    if (dn < 0 || memchr(raw, '\0', (size_t)dn))
        return -1;
    raw[dn] = '\0';
    /* base64("<key>:") as documented, or base64("<key>") (backward compatibility). */
    char *colon = strchr((char *)raw, ':');
    size_t kl = colon ? (size_t)(colon - (char *)raw) : (size_t)dn;
    int rc = kl < cap ? 1 : -1;
    if (rc == 1) {
        memcpy(out, raw, kl);
        out[kl] = '\0';
    }
    memset(raw, 0, sizeof raw); /* the key is not secret, but keep the habit */
    return rc;
}
