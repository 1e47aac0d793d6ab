#include "catalog/catalog.h"
#include "util/json.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

/* Config API fields of a catalog item, in the order Segment emitted them. Fields of the
 * converted data that the Config API never had (platforms, actions, presets, …) are not
 * served: they would multiply page sizes without any client reading them. */
static const char *const dest_fields[] = {"name", "display_name", "description", "type", "website",
                                          "status", "logos", "categories", "components", "settings", NULL};
static const char *const src_fields[] = {"name", "display_name", "description", "type", "status",
                                         "logos", "categories", NULL};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const cat_item *)a)->name, ((const cat_item *)b)->name);
}

static const char *str_of(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Settings the data plane holds as secrets although Segment's catalog types them "string":
 * the classic Webhooks sharedSecret signs every request (delivery.md §6.3), so it is
 * write-only like a password.  Marked "sensitive" on the private settings copy only (the one
 * the API validates and renders against); the catalog as served stays Segment's. */
static const struct {
    const char *slug, *setting;
} extra_secrets[] = {{"webhooks", "sharedSecret"}};

static void mark_extra_secrets(cat_item *it)
{
    for (size_t i = 0; i < sizeof extra_secrets / sizeof *extra_secrets; i++) {
        if (strcmp(it->slug, extra_secrets[i].slug))
            continue;
        size_t j;
        json_t *s;
        json_array_foreach(it->settings, j, s)
            if (!strcmp(str_of(s, "name"), extra_secrets[i].setting))
                json_object_set_new(s, "sensitive", json_true());
    }
}

/* Builds one item from one catalog record. */
static int add_item(cat_list *out, size_t *cap, json_t *rec, bool is_dest, const char *file, char *err, size_t errlen)
{
    const char *name = str_of(rec, "name");
    if (strncmp(name, is_dest ? "catalog/destinations/" : "catalog/sources/", is_dest ? 21 : 16) ||
        !strchr(name, '/')[1]) {
        snprintf(err, errlen, "catalog: %s record %zu has a bad name '%s'", file, out->n, name);
        return -1;
    }
    if (out->n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        out->items = realloc(out->items, *cap * sizeof *out->items);
    }
    cat_item *it = &out->items[out->n++];
    memset(it, 0, sizeof *it);
    it->name = strdup(name);
    it->key = strrchr(it->name, '/') + 1;
    it->slug = strdup(str_of(rec, "slug"));
    it->display_name = strdup(str_of(rec, "display_name"));
    json_t *o = json_object();
    for (const char *const *f = is_dest ? dest_fields : src_fields; *f; f++) {
        json_t *v = json_object_get(rec, *f);
        if (is_dest && !strcmp(*f, "type"))
            v = json_string("STREAMING"); /* the only value the Config API had */
        else if (v)
            json_incref(v);
        if (v)
            json_object_set_new(o, *f, v);
    }
    it->json = json_to_string(o);
    it->json_len = strlen(it->json);
    if (is_dest) {
        it->settings = json_deep_copy(json_object_get(rec, "settings"));
        mark_extra_secrets(it);
        it->delivery = json_object();
        const char *keep[] = {"methods", "previous_names", "connection_modes"};
        for (size_t i = 0; i < 3; i++) {
            json_t *v = json_object_get(rec, keep[i]);
            if (v)
                json_object_set_new(it->delivery, keep[i], json_deep_copy(v));
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(json_object_get(rec, "connection_modes"), "device"), k, v)
            if (json_is_true(v))
                it->device_mode = true;
    }
    json_decref(o);
    return 0;
}

/* Reads the top-level array one record at a time (jansson stops after one value with
 * JSON_DISABLE_EOF_CHECK), so peak memory is the file plus one record's tree rather than
 * the whole 3.6 MB catalog as a tree. */
static int load_list(const char *dir, const char *file, bool is_dest, cat_list *out, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    buf b = {0};
    if (buf_read_file(&b, path) < 0) {
        snprintf(err, errlen, "catalog: cannot open %s", path);
        return -1;
    }
    size_t pos = 0, cap = 0;
    int rc = -1;
#define SKIP_WS() while (pos < b.len && strchr(" \t\r\n", b.data[pos])) pos++
    SKIP_WS();
    if (pos >= b.len || b.data[pos] != '[') {
        snprintf(err, errlen, "catalog: %s is not a JSON array", path);
        goto out;
    }
    pos++;
    SKIP_WS();
    if (pos < b.len && b.data[pos] == ']')
        pos++, rc = 0;
    while (rc != 0 && pos < b.len) {
        json_error_t e;
        json_t *rec = json_loadb(b.data + pos, b.len - pos, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(rec)) {
            snprintf(err, errlen, "catalog: %s: record %zu: %s", path, out->n, rec ? "not an object" : e.text);
            json_decref(rec);
            goto out;
        }
        int bad = add_item(out, &cap, rec, is_dest, file, err, errlen);
        json_decref(rec);
        if (bad)
            goto out;
        pos += (size_t)e.position;
        SKIP_WS();
        if (pos < b.len && b.data[pos] == ',') {
            pos++;
            SKIP_WS();
        } else if (pos < b.len && b.data[pos] == ']') {
            rc = 0;
        } else {
            snprintf(err, errlen, "catalog: %s: expected ',' or ']' after record %zu", path, out->n);
            goto out;
        }
    }
#undef SKIP_WS
    if (rc != 0)
        snprintf(err, errlen, "catalog: %s: unterminated array", path);
    else
        qsort(out->items, out->n, sizeof *out->items, by_name);
out:
    buf_free(&b);
    return rc;
}

catalog *catalog_load(const char *dir, char *err, size_t errlen)
{
    catalog *c = calloc(1, sizeof *c);
    if (load_list(dir, "sources.json", false, &c->sources, err, errlen) ||
        load_list(dir, "destinations.json", true, &c->destinations, err, errlen)) {
        catalog_free(c);
        return NULL;
    }
    malloc_trim(0); /* hand the parse buffers back to the OS */
    return c;
}

static void free_list(cat_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].slug);
        free(l->items[i].display_name);
        free(l->items[i].json);
        json_decref(l->items[i].settings);
        json_decref(l->items[i].delivery);
    }
    free(l->items);
}

void catalog_free(catalog *c)
{
    if (!c)
        return;
    free_list(&c->sources);
    free_list(&c->destinations);
    free(c);
}

const cat_item *catalog_find(const cat_list *l, const char *key)
{
    /* Binary search on the last name segment would need a second index; the lists are a
     * few hundred entries, so search the sorted names first (exact full name), then scan. */
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->items[mid].name, key);
        if (!c)
            return &l->items[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].key, key))
            return &l->items[i];
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].slug, key))
            return &l->items[i];
    return NULL;
}

bool catalog_cloud_mode(const cat_item *it, const char *mode)
{
    if (mode && !strcmp(mode, "CLOUD"))
        return true;
    if (mode && strcmp(mode, "UNSPECIFIED"))
        return false; /* DEVICE */
    return it && !it->device_mode;
}
