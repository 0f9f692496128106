/*
 * fuzz_lib.h - helpers shared by ktape's libFuzzer targets (tests/fuzz).
 *
 * The targets feed hostile bytes to the store's readers exactly as ktape
 * would meet them: as files on disk.  These helpers give each process a
 * private scratch directory, write inputs into it, and run a segment reader
 * through everything it offers, aborting (which libFuzzer records as a
 * crash, with the input) when an invariant of the API is broken rather
 * than only when memory is misused.
 */
#ifndef KT_FUZZ_LIB_H
#define KT_FUZZ_LIB_H

#include <stddef.h>
#include <stdint.h>

/* A private directory for this process, created on first use and removed
 * at exit.  Never fails: a fuzzer that cannot write files cannot run. */
const char *kt_fuzz_scratch_dir(void);

/* Writes size bytes to path (created or truncated), or aborts. */
void kt_fuzz_write_file(const char *path, const uint8_t *data, size_t size);

/* Removes a directory tree; a missing one is not an error. */
void kt_fuzz_remove_tree(const char *path);

/* Aborts with a message naming the broken invariant. */
void kt_fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Rewrites, in place, every checksum of a segment (format/segment.md) that
 * the bytes let it find: the file header's, each block's payload and header
 * checksums (and the payload checksum its seek table entry repeats), the
 * segment and footer checksums.  A mutated input would otherwise stop at
 * its first checksum, leaving the record parser and the structural checks
 * behind them unexplored; with the checksums right, those are what the
 * input tests.  Structures it cannot find are left as they are. */
void kt_fuzz_fix_segment_checksums(uint8_t *data, size_t size);

/* The same for an index file (format/segment.md 5): header and entries
 * checksums. */
void kt_fuzz_fix_index_checksums(uint8_t *data, size_t size);

/* Opens the segment at path with flags and exercises the whole reader API:
 * info and block accessors, next() over every record (touching each byte
 * it returns, so that AddressSanitizer sees any read past the block),
 * verify, find and seek by offset and time, seek by block.  Checks that
 * every failure leaves an error sentence, and that a segment verify calls
 * clean reads back exactly the records its footer promises, in strictly
 * increasing offset order inside each block's bounds. */
void kt_fuzz_exercise_segment(const char *path, unsigned flags);

#endif /* KT_FUZZ_LIB_H */
