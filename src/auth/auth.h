/* auth — who is calling. Access tokens are random, shown once, and stored only as a keyed
 * BLAKE2b hash (key from the server key file), so a stolen database does not yield usable
 * tokens. Look-ups go through an in-memory cache: an authenticated GET costs no database
 * round trip. A token revoked (or a policy changed) by another process on the same
 * PostgreSQL is dropped when its NOTIFY arrives (milliseconds; docs/scaling.md), and
 * every entry is re-checked against the database after one second anyway, so revocation
 * takes effect everywhere within a second (and at once on the revoking process). */
#ifndef MANIFOLD_AUTH_H
#define MANIFOLD_AUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store/store.h"

#define AUTH_KEY_BYTES 32
#define AUTH_MAX_WS 16
#define TOKEN_TEXT_MAX 96

/* One IAM policy of the principal's user: a built-in role on a resource (and its subtree). */
typedef struct grant {
    char role[32];
    char *resource;
} grant;

/* A user's policies, shared (reference-counted) between the token cache and requests, so
 * a principal stays small to copy however many policies its user holds. */
typedef struct grant_set {
    int refs; /* atomic */
    int n, cap;
    grant *g;
} grant_set;

typedef struct principal {
    long long token_id;
    bool can_write;             /* scope "workspace"; "workspace:read" cannot */
    char scopes[64];
    char user_id[32];
    int nws;
    char ws[AUTH_MAX_WS][112];  /* workspace slugs from workspace_names */
    /* Tokens of a user can never do more than the user's policies allow; tokens made by
     * the admin command (no user) are bounded by scope and workspaces only. */
    bool has_user;
    grant_set *grants;          /* NULL: none */
} principal;

/* Loads the key file, creating it (mode 0600) with a random key when absent. */
int auth_init(const char *key_path, char *err, size_t errlen);
void auth_shutdown(void);
/* A short keyed MAC under the server key (page tokens use it so they cannot be forged). */
void auth_mac(const void *data, size_t len, unsigned char out[12]);

/* A fresh token: two base64url segments joined by a dot (Segment's observed shape). */
void token_generate(char out[TOKEN_TEXT_MAX]);
/* Keyed hash of a token, hex (65 bytes with NUL). */
void token_hash(const char *token, size_t len, char out[65]);

/* Authenticates a Bearer token. Returns ST_OK and fills *p, ST_NOT_FOUND for an unknown
 * or revoked token, ST_ERROR when the database could not be asked. */
int auth_bearer(store *st, const char *token, size_t len, principal *p);
/* Drops a token from this process's cache at once (revocation). */
void auth_forget(long long token_id);
/* Drops every cached token (policies changed): the next request of each re-reads. */
void auth_forget_all(void);
/* Fills a principal from a stored row (used by the cache and by token creation). */
void principal_from_row(principal *p, const token_row *r);
bool principal_has_ws(const principal *p, const char *slug);
/* Loads the IAM policies of user_id ("usr_…") into p->grants (policy resources whose
 * subject is "users/<id>"). */
int principal_load_grants(txn *t, principal *p, const char *user_id);
/* Drops the principal's reference to its grants (every principal handed out by
 * auth_bearer or filled by principal_load_grants must be released). */
void principal_release(principal *p);

/* Passwords: Argon2id (libsodium), at most two hashes at once so a burst of Basic-auth
 * requests cannot take all memory, CPU or worker threads. */
int password_hash(const char *pw, char out[160]);
/* 1: the password matches; 0: it does not; -1: every hashing slot is busy (try later). */
int password_verify(const char *hash, const char *pw);

/* Rate limiting: a token bucket per token id, refilled at `rate` per second with a burst
 * of `rate`. Returns true when the request may proceed; *remaining and *reset_s describe
 * the bucket afterwards, *retry_s the wait when refused. rate 0 disables. */
bool ratelimit_take(long long token_id, int rate, int *remaining, int *retry_s, int64_t *reset_epoch);
/* Makes the limit global across the processes sharing st's database (PostgreSQL): the
 * token bucket lives in the database and is leased in slices of a tenth of the rate
 * (tokens.c; how exact it is: docs/scaling.md). NULL: per-process buckets. */
void ratelimit_share(store *st);

#endif
