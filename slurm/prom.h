/* prom.h - swarms and nodes in the Prometheus text exposition format
 * (for node_exporter's textfile collector): "codeswarm status
 * --prometheus" and the router's --metrics-file.
 *
 * The input is the array "codeswarm status --json" prints (id, state,
 * swarm_state, backend, nodes, node_states[] with the counters of
 * slurm/nodes.h, and the accounting when there is one).  Names follow
 * Prometheus' conventions: a codeswarm_ prefix, base units in the name
 * (_seconds), _total for counters, labels swarm and node.
 */
#ifndef CODESWARM_SLURM_PROM_H
#define CODESWARM_SLURM_PROM_H

#include <stdio.h>

#include <cjson/cJSON.h>

/* Every metric family of the swarms, each with its HELP and TYPE, the
 * samples of every swarm and node under it.  now: for the ages.
 */
void prom_write_swarms (FILE *f, const cJSON *swarms, double now);

/* One family's HELP and TYPE lines. */
void prom_family (FILE *f, const char *name, const char *type,
                  const char *help);

/* A label value, escaped (\\, \", \n) into buf. */
const char *prom_escape (const char *s, char *buf, size_t len);

#endif
