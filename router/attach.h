/* attach.h - relay a stdio client to a running router's socket */
#ifndef CODESWARM_ROUTER_ATTACH_H
#define CODESWARM_ROUTER_ATTACH_H

#include "common/errprintf.h"

/* Relay in -> sock and sock -> out until the router closes the socket
 * (after in reached its end, the socket's sending side is shut down) or
 * out is gone.  0 on a normal end, -1 with errp.
 */
int attach_relay (int in, int out, int sock, cs_error_t *errp);

#endif
