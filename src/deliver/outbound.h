/* outbound — HTTP requests of the delivery engine over one libcurl multi handle, run by
 * the delivery thread: connection reuse (keep-alive), TLS verified against the system
 * store, the outbound address policy checked on every address a socket is opened to
 * (so DNS answers, redirects and rebinding cannot bypass it), 307/308 followed by hand
 * (same method and body, at most 5 hops), and the answer classified per delivery.md §4.1. */
#ifndef MANIFOLD_DELIVER_OUTBOUND_H
#define MANIFOLD_DELIVER_OUTBOUND_H
#include "deliver/policy.h"
#include <stddef.h>
#include <stdint.h>

typedef struct out_result {
    outcome_kind kind;     /* OUT_SUCCESS, OUT_RETRY or OUT_DISCARD */
    char code[32];         /* metrics code: "503", "ETIMEDOUT", "INVALID_SETTINGS", ... ("" on success) */
    long status;           /* last HTTP status, 0 without one */
    int64_t retry_after_ms;/* Retry-After of the answer, -1 without one */
} out_result;

typedef void (*out_done_fn)(void *arg, const out_result *r);

typedef struct outbound outbound;

/* allow/deny are borrowed for the object's life. */
outbound *out_new(const cidr_list *allow, const cidr_list *deny);
void out_free(outbound *);

/* POSTs body (borrowed until done is called) to url with the given header lines
 * ("Name: value"; copied). done is always called later, from out_run, never from here. */
void out_post(outbound *, const char *url, const char *const *headers, size_t nheaders, const char *body,
              size_t len, long timeout_ms, out_done_fn done, void *arg);

/* Waits up to wait_ms for network activity, advances every transfer and calls the done
 * callbacks of finished requests. Returns the number of requests still in flight. */
int out_run(outbound *, int wait_ms);
/* Wakes a thread blocked in out_run (from any thread). */
void out_wakeup(outbound *);
/* Work finished on another thread (a Functions runtime invocation): out_ext_begin on the
 * delivery thread before starting it, out_ext_done from any thread when it answers (r is
 * copied). done(arg, r) is then called from out_run on the delivery thread, which it wakes.
 * out_free waits for every begun one to answer, and reports those not yet run as OUT_DROP. */
void out_ext_begin(outbound *);
void out_ext_done(outbound *, out_done_fn done, void *arg, const out_result *r);
/* Requests refused by the address policy so far. */
long long out_refused(outbound *);

#endif
