/* executor/workdir.c - a try's scratch folder (`workdir` in the task context): made for
 * the try, empty when it starts, removed or emptied when it ends.
 *
 * A try of its own makes a fresh folder and removes it. Tries forked by the fork server
 * get theirs from the server, which reuses folders: making and removing a folder costs a
 * journal transaction each on ext4 (and a discard where the file system is mounted with
 * it), which was the largest single item of a no-op try. A reused folder is handed out
 * only when it is still what mkdtemp made (a directory, not a link, ours, mode 0700) and
 * empty; anything else is removed and a new one made. */
#define LOG_MODULE "executor"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/mem.h"
#include "executor/executor_int.h"

char *exec__workdir_new(void)
{
    const char *tmp = getenv("TMPDIR");
    char *t = xasprintf("%s/weir-try-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t)) {
        int e = errno;
        free(t);
        errno = e;
        return NULL;
    }
    return t;
}

bool exec__workdir_reusable(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() ||
        (sb.st_mode & 07777) != 0700) {
        close(fd);
        return false;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return false;
    }
    bool empty = true;
    struct dirent *de;
    while (empty && (de = readdir(d)) != NULL)
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(d);
    return empty;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void exec__workdir_remove(const char *dir)
{
    /* an empty folder needs one rmdir, the walk only when it is not */
    if (dir && rmdir(dir) < 0 && errno != ENOENT)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
