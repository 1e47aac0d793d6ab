/* catalog — the Source and Destination catalogs, loaded once at start-up from
 * the data/catalog JSON files into read-only, name-sorted arrays. Each item's Config API JSON is
 * rendered once at load, so serving a page is concatenation, not serialisation; only the
 * destination settings (needed to validate destination config) stay as parsed trees. */
#ifndef MANIFOLD_CATALOG_H
#define MANIFOLD_CATALOG_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cat_item {
    char *name;      /* "catalog/destinations/google-analytics" */
    const char *key; /* last segment of name: what the path {slug} matches */
    char *slug;      /* the catalog slug, also accepted in paths */
    char *display_name;
    char *json;      /* rendered Config API object */
    size_t json_len;
    json_t *settings;/* destinations only: the settings array (borrowed by validators) */
    json_t *delivery;/* destinations only: what delivery needs of the record ("methods",
                      * "previous_names", "connection_modes"), read by src/deliver */
    bool device_mode;/* destinations only: the catalog offers device mode on some platform */
} cat_item;

typedef struct cat_list {
    cat_item *items;
    size_t n;
} cat_list;

typedef struct catalog {
    cat_list sources, destinations;
} catalog;

/* Loads DIR/sources.json and DIR/destinations.json. Returns NULL with err on failure. */
catalog *catalog_load(const char *dir, char *err, size_t errlen);
void catalog_free(catalog *);
/* Finds by the name's last segment, by slug, or by full name. */
const cat_item *catalog_find(const cat_list *l, const char *key);
/* Does a destination of catalog entry it with this stored connection_mode deliver in
 * cloud mode (delivery.md §1 D2, config-api.md §11)? CLOUD does; UNSPECIFIED does when
 * the entry has no device mode; DEVICE never. it may be NULL (entry gone: not cloud
 * unless CLOUD). */
bool catalog_cloud_mode(const cat_item *it, const char *connection_mode);

#endif
