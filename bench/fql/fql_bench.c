/* FQL benchmark driver for Manifold's engine (see run.sh).
 *
 *   fql_bench FILTERS.tsv EVENTS.jsonl SECONDS
 *
 * Compiles every filter once, parses every event once, then for each filter
 * evaluates it against all events in a loop for SECONDS of CPU time. Prints
 * one line per filter: name, evaluations/second, matching events (a
 * cross-check that both engines agree). The JS twin is tsub_bench.js. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fql/fql.h"

/* CPU time of this process, not wall time: the machine may be shared, and a
 * descheduled benchmark would otherwise look slow. tsub_bench.js does the same. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s FILTERS.tsv EVENTS.jsonl SECONDS\n", argv[0]);
        return 2;
    }
    double budget = atof(argv[3]);
    FILE *ef = fopen(argv[2], "r");
    if (!ef) {
        perror(argv[2]);
        return 1;
    }
    json_t **events = NULL;
    size_t nev = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, ef)) > 0) {
        if (n <= 1)
            continue;
        json_error_t je;
        json_t *ev = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &je);
        if (!ev) {
            fprintf(stderr, "%s: %s\n", argv[2], je.text);
            return 1;
        }
        if (nev == cap) {
            cap = cap ? cap * 2 : 256;
            events = realloc(events, cap * sizeof *events);
        }
        events[nev++] = ev;
    }
    fclose(ef);
    FILE *ff = fopen(argv[1], "r");
    if (!ff) {
        perror(argv[1]);
        return 1;
    }
    while ((n = getline(&line, &lcap, ff)) > 0) {
        if (line[0] == '#' || n <= 1)
            continue;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        const char *src = tab + 1;
        fql_error err;
        fql_program *p = fql_compile(src, strlen(src), &err);
        if (!p) {
            fprintf(stderr, "%s: %s\n", line, err.message);
            return 1;
        }
        size_t matches = 0;
        for (size_t i = 0; i < nev; i++)
            matches += fql_eval(p, events[i]) == 1;
        /* Warm up, then run whole passes over the events until the budget. */
        unsigned long long evals = 0;
        volatile int sink = 0;
        double t0 = now(), t;
        do {
            for (int rep = 0; rep < 16; rep++)
                for (size_t i = 0; i < nev; i++)
                    sink += fql_eval(p, events[i]);
            evals += 16 * nev;
            t = now();
        } while (t - t0 < budget);
        if (sink < 0) /* keeps the evaluations observable to the optimiser */
            return 3;
        printf("%s\t%.0f\t%zu\n", line, (double)evals / (t - t0), matches);
        fflush(stdout);
        fql_free(p);
    }
    fclose(ff);
    free(line);
    for (size_t i = 0; i < nev; i++)
        json_decref(events[i]);
    free(events);
    return 0;
}
