/* serve.c - "codeswarm-mailbox serve --stdio" (the router's remote end) */
#include "config.h"

#include "common/log.h"
#include "mailbox/serve.h"

int mailbox_serve_main (int argc, char **argv)
{
    log_msg ("serve: not available in this build");
    return 2;
}
