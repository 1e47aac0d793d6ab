/* cli — flag scanning shared by the sub-commands (token, user, schema, metrics, function):
 * "--name VALUE" or "--name=VALUE" anywhere in argv. `serve` has its own typed parser
 * (config.h), because its flags also come from the environment. */
#ifndef MANIFOLD_APP_CLI_H
#define MANIFOLD_APP_CLI_H
#include <stdbool.h>

/* The value of --name, or NULL when it is absent. */
const char *cli_opt(int argc, char **argv, const char *name);
/* Whether the bare flag --name is present. */
bool cli_flag(int argc, char **argv, const char *name);

#endif
