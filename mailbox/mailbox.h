/* mailbox.h - append-only JSONL streams on a shared filesystem
 *
 * A swarm's mailbox is a directory <home>/swarms/<id>/ holding
 *   inbox/<k>.jsonl     (written only by the router side, read by worker k)
 *   outbox/<k>.jsonl    (written only by worker k, read by followers)
 *   cursors/            durable reader positions
 *   state/              worker checkpoints
 *   archive/            sealed segments, gzip
 * Directories are 0700 and files 0600.  Every open refuses symlinks,
 * files or directories owned by another user, and group/world-writable
 * directories, with an error that names the path and the reason.
 *
 * A stream is named by the path of its active segment, e.g.
 * ".../outbox/3.jsonl".  Its sealed segments live in the swarm's archive/
 * directory (the sibling of the stream's directory) as
 *   archive/<box>-<name>.<first seq>-<last seq>.jsonl.gz
 * with seq numbers zero-padded to 20 digits so that names sort by seq
 * (first and last are the seqs of the first and last valid records in it).
 * During a rotation the segment briefly exists as the plain
 * archive/...jsonl (the renamed active segment, readable like any segment)
 * and as ...jsonl.gz.tmp (being compressed; never read).  The writer's next
 * open finishes an interrupted rotation.
 *
 * One writer per stream: the writer holds an OFD lock (fcntl F_OFD_SETLK)
 * on "<stream>.lock" (e.g. outbox/3.jsonl.lock, 0600, never removed, holds
 * the writer's pid as text).  The kernel drops the lock when the writer
 * dies, however it dies.
 *
 * Record: one JSON object on one line, written with one write(2) on an
 * O_APPEND descriptor:
 *   {"v":1,"seq":N,"epoch":E,"ts":T,"type":"...", <payload members>}\n
 * seq grows by one per record for the life of the stream (across writer
 * restarts and segments), starting at 1; epoch grows by one with each writer
 * incarnation, starting at 1: a writer recovers the last seq and epoch from
 * the stream's last valid record (in the active segment, else in the newest
 * sealed one) and writes epoch + 1.  An incarnation that writes nothing
 * leaves no trace, so the epochs in a stream go up by exactly one.  ts is
 * the wall-clock time with microseconds.  A line without its newline is not
 * (yet) a record.
 *
 * Torn tails: a writer that finds the stream not ending in '\n' (a crash
 * mid-write, or a short write on a network filesystem) first appends a
 * single '\n'.  The fragment thereby becomes a complete line that does not
 * parse; readers report it as a corrupt line (reason "torn record: " and
 * the parse error, when the line is a JSON object cut short) with its
 * offset and go on; the new epoch of the record after it confirms it.  The
 * writer never truncates: bytes that a reader may
 * already have seen are never rewritten.
 *
 * Ownership: every *_open or *_create returns an object freed by the
 * matching *_close or *_destroy, which accept NULL and keep errno.
 */
#ifndef CODESWARM_MAILBOX_H
#define CODESWARM_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "common/errprintf.h"

#define MB_RECORD_VERSION 1
#define MB_DEFAULT_MAX_RECORD (8u * 1024 * 1024)  /* bytes, newline included */

/* ---- options --------------------------------------------------------- */

enum mb_fsync {
    MB_FSYNC_NEVER = 0,     /* leave it to the kernel */
    MB_FSYNC_ALWAYS,        /* fdatasync after every record */
    MB_FSYNC_INTERVAL,      /* at most every fsync_interval seconds */
};

enum mb_follow_mode {
    MB_FOLLOW_AUTO = 0,     /* inotify unless statfs says NFS/Lustre/GPFS/... */
    MB_FOLLOW_INOTIFY,
    MB_FOLLOW_POLL,
};

struct mb_options {
    enum mb_fsync fsync;
    double fsync_interval;      /* seconds (MB_FSYNC_INTERVAL) */
    uint64_t rotate_bytes;      /* seal the active segment at this size; 0 = never */
    uint64_t rotate_records;    /* ... or after this many records; 0 = never */
    size_t max_record;          /* longest acceptable line, newline included */
    enum mb_follow_mode follow;
    double poll_min;            /* seconds: poll interval while a stream is busy */
    double poll_max;            /* seconds: ceiling of the idle back-off */
    double poll_idle_after;     /* seconds of quiet for the ceiling to ... */
    double poll_idle_max;       /* ... grow (in proportion) to this */
};

/* Defaults: fsync never, 1 s interval; rotate at 64 MiB; max_record
 * MB_DEFAULT_MAX_RECORD; follow auto; poll 2 ms .. 1 s, the ceiling
 * growing with the quiet time up to 8 * poll_max (8 s) for a stream
 * without a record for 60 s (0 in poll_idle_after or poll_idle_max: 60 s,
 * 8 * poll_max).
 */
void mb_options_init (struct mb_options *opt);

/* ---- paths and safety (mailbox/secure.c, mailbox/swarm.c) ------------- */

/* <home>: $CODESWARM_HOME, else $HOME/.codeswarm.  Creates it (0700) when
 * create is true.  Writes into buf (size len).
 */
int mb_home (char *buf, size_t len, bool create, cs_error_t *errp);

/* Check (and with create, make) a directory: not a symlink, owned by the
 * effective uid, not group/world-writable.  New directories are 0700.
 */
int mb_secure_dir (const char *path, bool create, cs_error_t *errp);

/* open(2) with O_NOFOLLOW|O_CLOEXEC, then fstat: must be a regular file
 * owned by the effective uid.  O_CREAT makes it 0600.  Returns the fd.
 */
int mb_secure_open (const char *path, int flags, cs_error_t *errp);

/* Create or check <home>/swarms/<id>/ and its subdirectories.  Writes the
 * swarm directory path into buf.  The id must match [A-Za-z0-9._-]{1,64}
 * and not start with '.'.
 */
int mb_swarm_dir (const char *home, const char *swarm_id, bool create,
                  char *buf, size_t len, cs_error_t *errp);

/* Path of a stream: <swarmdir>/<box>/<node>.jsonl, box "inbox"/"outbox". */
int mb_stream_path (const char *swarmdir, const char *box, int node,
                    char *buf, size_t len, cs_error_t *errp);

/* Filesystem of path: fills name ("ext4", "nfs", "lustre", ...), and
 * *poll = true when inotify cannot be trusted there (NFS, Lustre, GPFS,
 * BeeGFS, CIFS/SMB, 9p, FUSE...).
 */
int mb_fs_type (const char *path, char *name, size_t len, bool *poll,
                cs_error_t *errp);

/* ---- records (mailbox/record.c) --------------------------------------- */

struct mb_record {
    uint64_t seq;
    uint64_t epoch;
    double ts;                  /* seconds since the Unix epoch */
    const char *type;           /* borrowed from json */
    cJSON *json;                /* the whole object; owned by whoever parsed */
    const char *line;           /* raw line without '\n'; borrowed */
    size_t len;
};

/* Parse one line (without its '\n').  On success rec->json must be freed
 * with cJSON_Delete by the caller.  On failure returns -1 and errp names
 * what is wrong and where in the line: "invalid UTF-8 at byte 17",
 * "NUL byte at byte 3", "not valid JSON near byte 40", "not a JSON object",
 * "missing \"seq\"", "\"seq\" is not a non-negative integer",
 * "record of 9000000 bytes is over the limit of 8388608", ...
 */
int mb_record_parse (const char *line, size_t len, size_t max_record,
                     struct mb_record *rec, cs_error_t *errp);

/* Validate UTF-8; returns the offset of the first bad byte or -1 if valid. */
ssize_t mb_utf8_invalid (const char *s, size_t len);

/* ---- cursors (mailbox/cursor.c) ---------------------------------------- */

/* A reader position: the last record delivered (seq, epoch) and where the
 * next line starts (segment = first seq of the segment holding it, 0 when
 * unknown; offset = byte offset in that segment, uncompressed).
 */
struct mb_cursor {
    uint64_t seq;
    uint64_t epoch;
    uint64_t segment;
    uint64_t offset;
};

/* Text form "seq:epoch:segment:offset"; parse also accepts a bare "seq"
 * (deliver records with a larger seq).
 */
int mb_cursor_format (const struct mb_cursor *c, char *buf, size_t len);
int mb_cursor_parse (const char *s, struct mb_cursor *c, cs_error_t *errp);

/* Durable cursor files: JSON, written to a temp file in the same directory,
 * fsync'd, then rename(2)d over the old one.  load returns 0 and zeroes *c
 * when the file does not exist (*found = false).
 */
int mb_cursor_save (const char *path, const struct mb_cursor *c,
                    cs_error_t *errp);
int mb_cursor_load (const char *path, struct mb_cursor *c, bool *found,
                    cs_error_t *errp);

/* As JSON object members (for embedding in a checkpoint). */
cJSON *mb_cursor_to_json (const struct mb_cursor *c);   /* cJSON_Delete */
int mb_cursor_from_json (const cJSON *o, struct mb_cursor *c,
                         cs_error_t *errp);

/* <swarmdir>/cursors/<reader>.<box>-<name>.json for a stream path */
int mb_cursor_path (const char *stream_path, const char *reader, char *buf,
                    size_t len, cs_error_t *errp);

/* ---- writer (mailbox/writer.c) ------------------------------------------ */

typedef struct mb_writer mb_writer_t;

/* Open a stream for appending, creating it (and its directory checks).
 * Takes an exclusive lock (fcntl OFD lock on "<path>.lock") so a second
 * writer fails with EBUSY and "stream '...' already has a writer (pid N)".
 * Recovers seq and epoch from the tail (and from archive/ when the active
 * segment is empty), seals a torn tail with '\n', finishes an interrupted
 * rotation, and starts a new epoch.
 */
mb_writer_t *mb_writer_open (const char *path, const struct mb_options *opt,
                             cs_error_t *errp);
/* Syncs unless fsync never, and waits for a compression in progress. */
void mb_writer_close (mb_writer_t *w);

/* Append a record.  payload: a JSON object whose members follow the
 * envelope (borrowed, may be NULL); it must not contain v/seq/epoch/ts/type.
 * On success *seqp (if not NULL) gets the record's seq.  A failed append
 * writes nothing and does not consume a seq (a short write leaves a sealed
 * fragment that readers report as a corrupt line).  Two exceptions return
 * -1 although the record was appended and its seq consumed (*seqp is set):
 * a failing fdatasync after the write (MB_FSYNC_ALWAYS or _INTERVAL), and
 * a write that got all but the final '\n' out and could not add it (the
 * newline is added before the next record, or by the next writer's
 * recovery, and completes the record).
 */
int mb_writer_append (mb_writer_t *w, const char *type, const cJSON *payload,
                      uint64_t *seqp, cs_error_t *errp);

/* Same, with the payload given as already-serialized JSON object members
 * ("\"msg\":{...},\"k\":1", no braces, may be empty).  The caller vouches
 * that they are valid JSON; this is the zero-copy path for forwarding.
 */
int mb_writer_append_members (mb_writer_t *w, const char *type,
                              const char *members, size_t len, uint64_t *seqp,
                              cs_error_t *errp);

/* Append n records of one type with one write(2) (and one sync under
 * MB_FSYNC_ALWAYS), each with members as for mb_writer_append_members.
 * *first_seqp gets the seq of m[0], *donep the number of records appended
 * (m[0..*donep) have seqs *first_seqp...); returns 0 when all n were.  On
 * -1, m[*donep] is the first record not appended: it could not be made
 * (errp names it and why; the records before it are written), or the
 * write failed or fell short (the records written whole count, a
 * fragment is sealed as for a single append).
 */
struct mb_members {
    const char *data;
    size_t len;
};
int mb_writer_append_batch (mb_writer_t *w, const char *type,
                            const struct mb_members *m, size_t n,
                            uint64_t *first_seqp, size_t *donep,
                            cs_error_t *errp);

uint64_t mb_writer_seq (mb_writer_t *w);     /* last seq written (0: none) */
uint64_t mb_writer_epoch (mb_writer_t *w);
int mb_writer_sync (mb_writer_t *w);         /* fdatasync now */
/* For MB_FSYNC_INTERVAL: seconds until an unsynced record is due for sync,
 * or -1 when nothing is pending; call mb_writer_sync when it reaches 0.
 */
double mb_writer_sync_due (mb_writer_t *w);
/* Rotation runs inside the append that reaches a threshold (renames and
 * directory fsyncs); the sealed segment is then compressed by a helper
 * thread, one at a time.  Their failures do not fail the append (the record
 * is written): the writer retries a failed rotation at most once a second,
 * and a segment left uncompressed (plain archive/...jsonl, which readers
 * read as well) is finished by the next rotation or open.
 * mb_writer_last_error returns the text of the last such failure, or NULL
 * when the last rotation succeeded (or a warning that the filesystem cannot
 * lock, so that one writer per stream is not enforced).  mb_writer_settle waits for a
 * compression in progress; it returns -1 (EIO) when there is a failure to
 * report.  mb_writer_close waits too.
 */
const char *mb_writer_last_error (mb_writer_t *w);
int mb_writer_settle (mb_writer_t *w);

/* Whether a process holds the writer lock of the stream at path now: 1
 * (*pid, when not NULL, gets the pid its lock file names, 0 if none), 0
 * when nobody does (or the stream was never opened for writing), -1 on
 * error (errno set).  Where locks are not supported the answer is 0.
 */
int mb_stream_writer (const char *path, pid_t *pid);

/* ---- reader (mailbox/reader.c) ------------------------------------------ */

typedef struct mb_reader mb_reader_t;

enum mb_start {
    MB_START_CURSOR = 0,        /* after the cursor given */
    MB_START_BEGIN,             /* from the first record, archive included */
    MB_START_END,               /* only records appended from now on */
};

enum mb_event_type {
    MB_EV_RECORD = 0,   /* a record, delivered exactly once, in seq order */
    MB_EV_GAP,          /* seq jumped: expected .expected, record has more */
    MB_EV_DUPLICATE,    /* seq not above the last delivered: not delivered */
    MB_EV_EPOCH,        /* a new writer incarnation begins (prev_epoch ->) */
    MB_EV_CORRUPT,      /* a line that is not a valid record: skipped */
};

/* "record", "gap", "duplicate", "epoch", "corrupt" ("unknown" otherwise) */
const char *mb_event_name (enum mb_event_type t);

struct mb_event {
    enum mb_event_type type;
    struct mb_record rec;       /* RECORD; GAP/DUPLICATE/EPOCH: the record
                                   that showed it.  json owned by the reader,
                                   valid until the next call */
    uint64_t expected;          /* GAP: the seq that was due */
    uint64_t prev_epoch;        /* EPOCH */
    const char *file;           /* segment the line came from (borrowed) */
    uint64_t offset;            /* byte offset of the line in that segment */
    const char *reason;         /* CORRUPT: what is wrong (borrowed) */
};

/* Open a reader.  The stream need not exist yet (it is read once it
 * appears).  start says where to begin; cursor is used with
 * MB_START_CURSOR: records up to cursor->seq are skipped silently, and the
 * reader seeks to cursor->offset when cursor->segment names the segment
 * holding cursor->seq + 1 (active, plain or gzip), else it scans that
 * segment from its start.  A cursor "0:0:S:O" (taken before any record was
 * seen, e.g. with MB_START_END) does not report a gap for the first record.
 * MB_START_BEGIN expects seq 1 first.  MB_START_END starts after the last
 * complete line (a partial last line is delivered once it is completed).
 * opt may be NULL (defaults); opt->max_record bounds a line.  The reader
 * refuses (NULL, errp names the path) a stream file that is a symlink or
 * not owned by the caller.
 *
 * CORRUPT reasons are mb_record_parse()'s, prefixed "torn record: " when
 * the line is a JSON object cut short (what a crashed writer leaves), or
 * "line of N bytes is over the limit of M" (such a line is skipped without
 * being buffered), "damaged segment: ..." (a bad gzip segment: the reader
 * goes on with the next one), "unterminated line of N bytes at the end of
 * the segment" (a sealed segment that does not end in '\n').
 */
mb_reader_t *mb_reader_open (const char *path, enum mb_start start,
                             const struct mb_cursor *cursor,
                             const struct mb_options *opt, cs_error_t *errp);
void mb_reader_close (mb_reader_t *r);

/* Next event: returns 1 with *ev filled, 0 when nothing more is available
 * right now (call again later), -1 on an error that stops this reader (an
 * unsafe file, an unreadable segment) with errp filled.  Never stalls on a
 * bad line: it is reported and skipped.  Crosses segment boundaries,
 * including a cursor that points into a segment sealed meanwhile.
 */
int mb_reader_next (mb_reader_t *r, struct mb_event *ev, cs_error_t *errp);

/* The position after the last event returned (save it once the record was
 * handled).
 */
void mb_reader_cursor (mb_reader_t *r, struct mb_cursor *c);
const char *mb_reader_path (mb_reader_t *r);

/* The error that stopped the reader (mb_reader_next returned -1), or NULL
 * while it is healthy.  Borrowed, valid until mb_reader_close.
 */
const char *mb_reader_error (mb_reader_t *r);

/* ---- follower (mailbox/follower.c) --------------------------------------- */

typedef struct mb_follower mb_follower_t;

/* Called for every event of every stream, in order per stream.  A stream
 * whose reader fails (an unsafe file, an unreadable segment) gets one last
 * MB_EV_CORRUPT event with reason "stream stopped: ..." (mb_reader_error()
 * tells it apart) and is no longer read; the other streams go on.  The
 * callback may add and remove streams, including its own.
 */
typedef void (*mb_follow_f) (mb_follower_t *f, mb_reader_t *r,
                             const struct mb_event *ev, void *arg);

/* Create a follower.  Mode from opt->follow; AUTO decides per directory by
 * mb_fs_type().  With AUTO, the environment variable CODESWARM_FOLLOW
 * ("inotify", "poll" or "auto") replaces that decision for every stream; an
 * explicit opt->follow is not overridden.  Cost while idle: inotify mode
 * needs no wake-ups; poll mode backs each idle stream off from poll_min to
 * poll_max, and further in proportion to its quiet time (counted from the
 * file's last modification for a stream just added) up to poll_idle_max,
 * reached after poll_idle_after; it keeps streams in a timer heap, so it
 * touches only the streams that are due.  Each stream holds one open descriptor.
 */
mb_follower_t *mb_follower_create (const struct mb_options *opt,
                                   cs_error_t *errp);
void mb_follower_destroy (mb_follower_t *f);

/* Follow a stream (which may not exist yet).  Returns the reader, owned by
 * the follower.
 */
mb_reader_t *mb_follower_add (mb_follower_t *f, const char *path,
                              enum mb_start start,
                              const struct mb_cursor *cursor, mb_follow_f cb,
                              void *arg, cs_error_t *errp);
/* Stop following r and close it (r must not be used afterwards). */
int mb_follower_remove (mb_follower_t *f, mb_reader_t *r);

/* Integration with a program's poll() loop: the fd to wait on for
 * readability (-1 if none), and the time in ms until the next poll is due
 * (-1 = none, 0 = now).  mb_follower_process() reads whatever is ready and
 * runs the callbacks; returns the number of events delivered or -1.
 */
int mb_follower_fd (mb_follower_t *f);
int mb_follower_timeout (mb_follower_t *f);
int mb_follower_process (mb_follower_t *f, cs_error_t *errp);
/* From a callback: mb_follower_process() returns once the callback does,
 * reading nothing more; the rest is read by the next call (back-pressure:
 * a program that cannot take more records stops calling it meanwhile).
 */
void mb_follower_stop (mb_follower_t *f);

/* Wait up to timeout_ms (-1 forever) and process: a loop for simple
 * programs.  Returns events delivered, or -1.
 */
int mb_follower_run (mb_follower_t *f, int timeout_ms, cs_error_t *errp);

/* "inotify", "poll", or "mixed" when AUTO put some streams on each (after
 * the streams were added).
 */
const char *mb_follower_mode (mb_follower_t *f);
/* How r (a reader of f) is followed: "inotify" or "poll"; NULL when f
 * does not follow r.
 */
const char *mb_follower_stream_mode (mb_follower_t *f, mb_reader_t *r);

/* ---- segments (mailbox/segment.c) ---------------------------------------- */

struct mb_segment {
    char path[4096];
    uint64_t first;             /* first seq */
    uint64_t last;              /* last seq (0: the active segment) */
    bool compressed;
};

/* The sealed segments of a stream, oldest first (malloc'd array, free()). */
int mb_segments_list (const char *stream_path, struct mb_segment **segs,
                      size_t *count, cs_error_t *errp);

#endif
