/* walltime.h - Slurm's time formats (sbatch --time).
 *
 * Accepted, as Slurm documents them: "minutes", "minutes:seconds",
 * "hours:minutes:seconds", "days-hours", "days-hours:minutes",
 * "days-hours:minutes:seconds", and "INFINITE"/"UNLIMITED".
 */
#ifndef CODESWARM_WALLTIME_H
#define CODESWARM_WALLTIME_H

#include <stdint.h>

#include "common/errprintf.h"

#define WALLTIME_INFINITE UINT64_MAX

/* Parse s into seconds (WALLTIME_INFINITE for no limit).  A limit of zero
 * is refused.  errp: "'1:2:3:4' is not a Slurm time (use ...)".
 */
int walltime_parse (const char *s, uint64_t *secs, cs_error_t *errp);

/* Whole minutes for Slurm's time_limit, rounding seconds up. */
uint32_t walltime_minutes (uint64_t secs);

/* Seconds as Slurm writes them: "D-HH:MM:SS" or "HH:MM:SS"; "UNLIMITED". */
void walltime_format (uint64_t secs, char *buf, size_t len);

#endif
