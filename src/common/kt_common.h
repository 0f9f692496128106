/*
 * kt_common.h - the one interface header of ktape's common module.
 *
 * Error codes, kt_strerror(), the logging callback and small helpers
 * (clocks, time parsing, JSON-safe escaping) that every other module uses.
 * The module has no dependency beyond libc.
 *
 * Conventions used across ktape (see README "House style"):
 *  - Functions return 0 on success or a negative code: -errno for system
 *    errors, or one of the KT_E* codes below.  kt_strerror() names either.
 *  - Fallible functions that can say more than a code take
 *    (char *errstr, size_t errstr_size), as librdkafka does; on failure they
 *    write a sentence naming what failed and where (file, block, byte offset,
 *    topic/partition).  errstr may be NULL when the caller does not care.
 *  - Only the CLI prints or exits; modules report through struct kt_log.
 */
#ifndef KT_COMMON_H
#define KT_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KT_VERSION_STRING "0.1.0"

/* Project error codes.  They live far above any errno value so that a single
 * negative int can carry either kind. */
enum kt_error_code {
	KT_ECORRUPT = -10001,     /* checksum mismatch or malformed structure */
	KT_ETRUNCATED = -10002,   /* data ends inside a structure (torn write) */
	KT_EVERSION = -10003,     /* written by a newer, unknown format version */
	KT_EMAGIC = -10004,       /* not a ktape file of the expected kind */
	KT_ENOTFOUND = -10005,    /* snapshot, topic, partition or record absent */
	KT_ELOCKED = -10006,      /* repository locked by another live process */
	KT_ERANGE = -10007,       /* requested offset or time outside the data */
	KT_EKAFKA = -10008,       /* broker or client error; errstr says which */
	KT_EUNSUPPORTED = -10009, /* the broker does not implement the API */
	KT_EUSAGE = -10010,       /* invalid argument or option value */
	KT_EGAP = -10011,         /* records were lost to retention before capture */
	KT_EINTERRUPTED = -10012, /* stopped by a signal before completion */
	KT_ETIMEDOUT = -10013,    /* a broker did not answer in time */
	KT_EEXIST = -10014,       /* target already exists / would be overwritten */
	KT_EDELIVERY = -10015,    /* a produced record was not acknowledged */
};

/* Returns a static description of a negative ktape or errno code. */
const char *kt_strerror(int err);

/* Formats into errstr (if non-NULL) and returns err unchanged, so that error
 * paths read `return kt_seterr(errstr, errstr_size, KT_ECORRUPT, "...")`. */
int kt_seterr(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- logging ------------------------------------------------------------ */

enum kt_log_level {
	KT_LOG_ERROR = 0,
	KT_LOG_WARN = 1,
	KT_LOG_INFO = 2,
	KT_LOG_DEBUG = 3,
};

/* A log sink.  The callback may be called from any thread; it must be
 * thread-safe.  A NULL struct kt_log pointer, or a NULL fn, drops messages. */
struct kt_log {
	void (*fn)(void *opaque, int level, const char *msg);
	void *opaque;
	int max_level; /* messages above this level are not formatted */
};

void kt_log(const struct kt_log *log, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- time --------------------------------------------------------------- */

/* Monotonic clock in nanoseconds, for rates and pacing. */
int64_t kt_now_ns(void);
/* Wall clock in milliseconds since the Unix epoch (Kafka's timestamp unit). */
int64_t kt_wall_ms(void);

/* Parses a timestamp given as epoch milliseconds ("1700000000000") or
 * ISO-8601 ("2026-11-22T01:32:00Z", "2026-11-22T01:32:00.123+01:00",
 * "2026-11-22" meaning midnight UTC).  Returns 0 or KT_EUSAGE. */
int kt_parse_time_ms(const char *text, int64_t *out_ms);

/* Formats epoch ms as ISO-8601 UTC with milliseconds into buf (>= 32 bytes). */
void kt_format_time_ms(int64_t ms, char *buf, size_t buf_size);

/* Parse a whole decimal integer in [min, max]: no sign for the unsigned
 * form, no leading blanks or trailing text, no overflow.  Return 0 or
 * KT_EUSAGE (out untouched), so every flag reports bad numbers alike. */
int kt_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out);
int kt_parse_u64(const char *text, uint64_t max, uint64_t *out);
/* Parse a whole finite decimal number ("10", "0.5", "2e3"): a digit, '.'
 * or '-' first, no blanks, hex, inf/nan or trailing text.  Return 0 or
 * KT_EUSAGE (out untouched); callers check the range they need. */
int kt_parse_double(const char *text, double *out);

/* Parses a byte size with an optional K/M/G/T (powers of 1024) suffix, and a
 * duration with ms/s/m/h suffix (no suffix = seconds).  Return 0 or KT_EUSAGE. */
int kt_parse_size(const char *text, uint64_t *out_bytes);
int kt_parse_duration_ms(const char *text, int64_t *out_ms);

/* ---- misc ---------------------------------------------------------------- */

/* Fills buf with n random bytes from getrandom(2).  Returns 0 or -errno. */
int kt_random_bytes(void *buf, size_t n);

/* Writes all len bytes to fd, retrying short writes and EINTR.  Returns 0
 * or -errno of the write that failed. */
int kt_write_all(int fd, const void *buf, size_t len);

/* Writes a whole file atomically and durably: a temp file in the same
 * directory, write, fsync, rename over path, fsync the directory (Redis
 * rdb.c's sequence).  Readers see the old content or the new, never a part.
 * mode is the new file's permission bits (e.g. 0600). Returns 0 or -errno. */
int kt_write_file_atomic(const char *path, const void *data, size_t len,
			 unsigned mode, char *errstr, size_t errstr_size);

/* The same, but creates path only if it does not exist: KT_EEXIST (and path
 * untouched) when it does.  Atomic against other processes: of several
 * racing to create one path, exactly one succeeds (the temp file is
 * linked into place, not renamed). */
int kt_write_file_new(const char *path, const void *data, size_t len,
		      unsigned mode, char *errstr, size_t errstr_size);

/* fsyncs the directory that contains path (so a rename or create in it is
 * durable).  Returns 0 or -errno. */
int kt_fsync_parent_dir(const char *path);

/* Creates a directory and its missing parents with the given mode. 0/-errno */
int kt_mkdir_p(const char *path, unsigned mode);

/* Returns nonzero if a librdkafka property name holds a secret that must
 * never be logged or stored (sasl.password, ssl.key.password, *.pem, ...). */
int kt_config_is_secret(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* KT_COMMON_H */
