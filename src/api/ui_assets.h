/* The dashboard's files (ui/), compiled into the binary by scripts/embed.c (the Makefile
 * generates build/gen/ui_assets.c). Served by ui.c; docs/dashboard.md. */
#ifndef MANIFOLD_UI_ASSETS_H
#define MANIFOLD_UI_ASSETS_H
#include <stddef.h>

typedef struct ui_asset {
    const char *name;          /* the file's base name: served as /ui/<name> */
    const unsigned char *data;
    size_t len;
    const char *type;          /* its Content-Type */
    const char *etag;          /* "\"<16 hex digits>\"": a hash of the bytes */
} ui_asset;

extern const ui_asset ui_assets[]; /* ui_nassets entries, then one zeroed */
extern const size_t ui_nassets;

#endif
