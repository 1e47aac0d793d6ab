#include "app/cli.h"
#include <string.h>

const char *cli_opt(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], name, n))
            continue;
        if (argv[i][n] == '=')
            return argv[i] + n + 1;
        if (!argv[i][n] && i + 1 < argc)
            return argv[i + 1];
    }
    return NULL;
}

bool cli_flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name))
            return true;
    return false;
}
