/* pathtemplate.h - expand path templates such as the workspace
 * "%h/swarms/%s/work/%k"
 */
#ifndef CODESWARM_COMMON_PATHTEMPLATE_H
#define CODESWARM_COMMON_PATHTEMPLATE_H

/* Expand tmpl: %h home, %s swarm id, %k node index, %% a '%'; any other
 * %x stays as it is.  Returns a new string (free) or NULL (ENOMEM).
 */
char *path_template_expand (const char *tmpl, const char *home,
                            const char *swarm, int node);

#endif
