/* metrics.h - the router's Prometheus textfile (--metrics-file, or
 * metrics.textfile in codeswarm.yaml): every metrics.interval seconds the
 * swarms and nodes it follows (slurm/prom.h, from their outboxes and
 * swarm.json), per swarm the follow mode and the node time of its jobs
 * so far (slurm/jobtime.h), and the router itself (events, events/s,
 * clients, follow mode, audit entries waiting), written atomically
 * (common/atomicfile.h).  A file that cannot be written is logged (once per failure
 * streak) and written again at the next interval; the router goes on.
 */
#ifndef CODESWARM_ROUTER_METRICS_H
#define CODESWARM_ROUTER_METRICS_H

struct router;

/* Start writing path every interval seconds (path NULL: never). */
int metrics_init (struct router *r, const char *path, double interval);

/* Write the file when the interval has passed (called every second). */
void metrics_tick (struct router *r, double now);

void metrics_fini (struct router *r);

#endif
