/* cli/main.c - the weir command: dispatches to one file per command group. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("weir %s\n", WEIR_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: weir COMMAND\n");
    return 2;
}
