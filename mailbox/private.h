/* private.h - helpers shared by the files of libmailbox (not installed).
 *
 * Stream naming: a stream ".../<box>/<name>.jsonl" has
 *   dir      ".../<box>"
 *   box      "<box>"            (the basename of dir, e.g. "outbox")
 *   name     "<name>"           (the basename without ".jsonl", e.g. "3")
 *   archive  ".../archive"      (the sibling of dir)
 * and its sealed segments are archive/<box>-<name>.<first>-<last>.jsonl.gz
 * (seq numbers as MB_SEQ_DIGITS zero-padded decimal digits).
 */
#ifndef CODESWARM_MAILBOX_PRIVATE_H
#define CODESWARM_MAILBOX_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/errprintf.h"

#define MB_PATH_MAX 4096
#define MB_SEQ_DIGITS 20
#define MB_MAX_SAFE_INT 9007199254740992.0 /* 2^53 */

struct mb_stream_name {
    char dir[MB_PATH_MAX];      /* directory holding the active segment */
    char archive[MB_PATH_MAX];  /* <dir>/../archive */
    char box[256];
    char name[256];
    char prefix[520];           /* "<box>-<name>." (archive name prefix) */
};

/* Split a stream path as described above.  The path must end in ".jsonl"
 * and have a directory component.  Returns 0, or -1 (EINVAL/ENAMETOOLONG).
 */
int mb_stream_split (const char *path, struct mb_stream_name *sn,
                     cs_error_t *errp);

/* Parse an archive file name (basename) for a stream whose prefix is given.
 * Returns 0 and fills first/last/kind, or -1 if the name is not one of ours.
 * kind: 0 ".jsonl.gz", 1 ".jsonl" (transitional), 2 ".jsonl.gz.tmp".
 */
enum mb_seg_kind {
    MB_SEG_GZ = 0,
    MB_SEG_PLAIN,
    MB_SEG_TMP,
};
int mb_segment_name_parse (const char *base, const char *prefix,
                           uint64_t *first, uint64_t *last,
                           enum mb_seg_kind *kind);

/* Format "<archive>/<prefix><first>-<last>.jsonl<suffix>" into buf. */
int mb_segment_path (const struct mb_stream_name *sn, uint64_t first,
                     uint64_t last, const char *suffix, char *buf,
                     size_t len);

/* Compress plain segment file src into dst (".jsonl.gz"): written to
 * dst ".tmp" (O_EXCL, 0600), fsync'd, renamed, directory fsync'd, then src
 * unlinked.  gzip format (zcat reads it).
 */
int mb_segment_compress (const char *src, const char *dst, cs_error_t *errp);

/* fsync the directory holding path (or the directory path itself when
 * is_dir).  Returns 0 or -1 with errno set.
 */
int mb_fsync_dir (const char *path, bool is_dir);

/* Unsigned decimal without snprintf; returns the number of bytes written
 * (at most 20, no NUL).
 */
size_t mb_u64_format (char *buf, uint64_t v);

/* Parse a decimal uint64 from s[0..len); digits only, no sign, no
 * leading/trailing junk, value < 2^53.  Returns 0 or -1.
 */
int mb_u64_parse (const char *s, size_t len, uint64_t *v);

/* The last complete record of a file region [0, end): scans backwards line
 * by line (lines longer than max_record are skipped).  *found = false when
 * there is no valid record.
 */
int mb_scan_last_record (int fd, uint64_t end, size_t max_record,
                         uint64_t *seq, uint64_t *epoch, bool *found);

/* The first complete record of the region [0, end). */
int mb_scan_first_record (int fd, uint64_t end, size_t max_record,
                          uint64_t *seq, uint64_t *epoch, bool *found);

/* The last valid record of a segment read through zlib (gzip or plain). */
int mb_gz_last_record (const char *path, size_t max_record, uint64_t *seq,
                       uint64_t *epoch, bool *found, cs_error_t *errp);

#endif
