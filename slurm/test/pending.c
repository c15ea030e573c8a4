/* test/pending.c - pending reasons in words, and which never resolve */
#include "config.h"

#include <string.h>

#include "common/libtap/tap.h"
#include "slurm/pending.h"

static struct job_status pending (const char *reason)
{
    struct job_status ji;

    memset (&ji, 0, sizeof (ji));
    ji.found = true;
    strcpy (ji.state, "PENDING");
    strcpy (ji.reason, reason);
    strcpy (ji.partition, "p");
    ji.req_nodes = 2;
    return ji;
}

int main (void)
{
    static const char *resolve[] = {"Resources", "Priority", "Dependency",
                                    "BeginTime", "PartitionDown",
                                    "ReqNodeNotAvail", "JobHeldUser", "None",
                                    ""};
    static const char *never[] = {"InvalidAccount", "InvalidQOS",
                                  "BadConstraints", "DependencyNeverSatisfied",
                                  "QOSMaxNodePerJobLimit",
                                  "AssocMaxWallDurationPerJobLimit"};
    char buf[256];
    struct job_status ji;

    plan (NO_PLAN);
    is (pending_words ("Resources", buf, sizeof (buf)), "pending (Resources)",
        "a reason is shown as Slurm names it");
    is (pending_words ("None", buf, sizeof (buf)),
        "pending (waiting for the scheduler)", "never \"pending (None)\"");
    is (pending_words ("", buf, sizeof (buf)),
        "pending (waiting for the scheduler)", "nor \"pending ()\"");
    for (size_t i = 0; i < sizeof (resolve) / sizeof (resolve[0]); i++) {
        ji = pending (resolve[i]);
        ok (!pending_never (&ji, buf, sizeof (buf)), "'%s' may resolve",
            resolve[i]);
    }
    for (size_t i = 0; i < sizeof (never) / sizeof (never[0]); i++) {
        ji = pending (never[i]);
        buf[0] = '\0';
        ok (pending_never (&ji, buf, sizeof (buf)) && buf[0],
            "'%s' never resolves: %s", never[i], buf);
    }
    ji = pending ("InvalidAccount");
    pending_never (&ji, buf, sizeof (buf));
    is (buf, "the account is not valid for this user", "and says why");
    done_testing ();
}
