/* executor/kill.c - ending a try's processes: what the local executor and the fork server
 * both do when a try times out or is stopped. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor/executor_int.h"

/* A try runs in a session of its own (its process is the session leader). Plugins may put
 * their commands in process groups of their own (the shell plugin does, to kill a command's
 * tree on cancel); when the try itself has to be killed, those groups would survive a kill
 * of the try's group alone. Only a process that started a new session escapes. Linux:
 * reads /proc; elsewhere a no-op. */
void exec__kill_session(int sid)
{
#ifdef __linux__
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == sid)
            continue;
        char path[64], st[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, st, sizeof st - 1);
        close(fd);
        if (n <= 0)
            continue;
        st[n] = '\0';
        /* "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')' */
        const char *rp = strrchr(st, ')');
        int ppid, pgrp, session;
        char state;
        if (rp && sscanf(rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) == 4 &&
            session == sid)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
#else
    (void)sid;
#endif
}
