/* rpc.c - "codeswarm rpc": raw router commands, for scripts and tests
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/client/client.h"

int cmd_rpc (int argc, char **argv)
{
    static const struct option longopts[] = {
        { "until", required_argument, NULL, 'u' },
        { "timeout", required_argument, NULL, 't' },
        { "count", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    const char *until = NULL;
    double timeout = 5;
    int c, count = 1, seen = 0;
    cJSON *o;

    optind = 1;
    while ((c = getopt_long (argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': until = optarg; break;
        case 't':
            if (parse_duration (optarg, &timeout) < 0)
                log_msg_exit ("--timeout: bad duration '%s'", optarg);
            break;
        case 'n': count = atoi (optarg); break;
        default: return 1;
        }
    }
    if (!router_open ())
        log_msg_exit ("no router is listening");
    for (int i = optind; i < argc; i++) {
        if (fd_write_all (client_router_fd, argv[i], strlen (argv[i])) < 0
            || fd_write_all (client_router_fd, "\n", 1) < 0)
            log_err_exit ("write");
    }
    while ((o = router_recv ((int)(timeout * 1000)))) {
        char *s = cJSON_PrintUnformatted (o);
        printf ("%s\n", s);
        fflush (stdout);
        free (s);
        if (until && !strcmp (ev_name (o), until) && ++seen >= count) {
            cJSON_Delete (o);
            return 0;
        }
        cJSON_Delete (o);
    }
    return until ? 1 : 0;
}
