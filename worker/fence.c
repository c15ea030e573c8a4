/* fence.c - which worker serves a node index that has moved to a spare.
 *
 * When a node is lost, the job's spare watcher (codeswarm spare-watch)
 * writes state/<k>.fence, the generation of node k's new home ("G\n",
 * replaced atomically), and then starts a worker for k on a spare node with
 * CODESWARM_NODE=k and CODESWARM_FENCE=G.  A worker serves its index while
 * the file says no more than its own generation (a worker started without
 * CODESWARM_FENCE has generation 0), and:
 *  - does not start when the file already says more;
 *  - stops at once, at its next heartbeat, when the file comes to say more
 *    (the "dead" node coming back: it finds its index elsewhere);
 *  - with a generation, waits for the outbox's writer lock instead of
 *    failing on it: the previous home holds it until it is gone or has
 *    seen the fence.
 * A worker started on a spare also gets CODESWARM_MOVED_FROM (the lost
 * host): the turn the lost node left running ends with reason "node_lost".
 * The outbox lock keeps two writers apart; the fence decides which of two
 * live workers gives way.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker.h"

int fence_init (struct worker *w)
{
    const char *s = getenv ("CODESWARM_FENCE");
    char *end;
    unsigned long v;

    w->fence_gen = 0;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtoul (s, &end, 10);
    if (errno || *end || v > LONG_MAX) {
        log_msg ("CODESWARM_FENCE=\"%s\": not a generation", s);
        return -1;
    }
    w->fence_gen = (long)v;
    return 0;
}

/* The generation state/<k>.fence says (0: no file, or unreadable). */
static long fence_read (const struct worker *w)
{
    char path[4200], buf[32];
    ssize_t n;
    int fd;
    long v;

    if (snprintf (path, sizeof (path), "%s/state/%d.fence", w->swarmdir,
                  w->node) >= (int)sizeof (path)
        || (fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    n = read (fd, buf, sizeof (buf) - 1);
    close (fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    v = strtol (buf, NULL, 10);
    return v > 0 ? v : 0;
}

const char *fence_restart_reason (const struct worker *w)
{
    const char *from = getenv ("CODESWARM_MOVED_FROM");

    (void)w;
    return from && *from ? "node_lost" : "worker_restarted";
}

bool fence_superseded (const struct worker *w)
{
    long g = fence_read (w);

    if (g > w->fence_gen) {
        log_msg ("node %d has moved (fence generation %ld, ours %ld)",
                 w->node, g, w->fence_gen);
        return true;
    }
    return false;
}
