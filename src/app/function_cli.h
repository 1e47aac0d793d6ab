/* `manifold function run|bench|info` (see function_cli.c and docs/functions-runtime.md). */
#ifndef MANIFOLD_FUNCTION_CLI_H
#define MANIFOLD_FUNCTION_CLI_H

/* argv[0] is the sub-command ("run", "bench", "info"). Returns the process exit status. */
int function_cli(int argc, char **argv);

#endif
