/* appconfig.h - ask "codex app-server" for its effective configuration
 *
 * codex merges config.toml, the selected profile, project layers and -c
 * overrides; "config/read" (v2 protocol) returns the result, so a check
 * that needs a setting asks codex instead of reading config.toml itself.
 */
#ifndef CODESWARM_SLURM_APPCONFIG_H
#define CODESWARM_SLURM_APPCONFIG_H

#include <cjson/cJSON.h>

#include "common/errprintf.h"

/* Start "<codex> app-server" (env_set: "KEY=VALUE" entries for it,
 * NULL-terminated), initialize, send config/read and return the response's
 * "config" object (cJSON_Delete), or NULL with errp filled.  The child is
 * stopped before this returns; it waits at most timeout seconds.
 */
cJSON *appconfig_read (const char *codex, char *const *env_set,
                       double timeout, cs_error_t *errp);

#endif
