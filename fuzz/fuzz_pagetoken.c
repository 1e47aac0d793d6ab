/* Fuzz target: page tokens are attacker-controlled query parameters. Decoding must never
 * crash, and a token that decodes must be one we signed: re-encoding gives it back. */
#include "api/call.h"
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        char path[] = "/tmp/manifold-fuzz-key-XXXXXX", err[256];
        int fd = mkstemp(path);
        close(fd);
        unlink(path); /* auth_init creates it with a random key */
        if (auth_init(path, err, sizeof err) != 0)
            abort();
        unlink(path);
        ready = 1;
    }
    char *tok = malloc(size + 1);
    memcpy(tok, data, size);
    tok[size] = '\0';
    char payload[512];
    if (page_token_decode(tok, payload, sizeof payload) == 0) {
        char again[1024];
        page_token_encode(payload, again, sizeof again);
        char p2[512];
        assert(page_token_decode(again, p2, sizeof p2) == 0 && !strcmp(p2, payload));
    }
    /* And the round trip of arbitrary payloads. */
    if (size < 400 && !memchr(data, 0, size)) {
        char enc[1024], dec[512];
        page_token_encode(tok, enc, sizeof enc);
        assert(page_token_decode(enc, dec, sizeof dec) == 0 && !strcmp(dec, tok));
    }
    free(tok);
    return 0;
}
