/*
 * fuzz_index - libFuzzer target for the index (.kti) loader.
 *
 * An index is only ever read beside its segment, and a loader that rejects
 * an index bound to another segment at its first check would leave the
 * rest of the parser unexplored.  So each input is written as the index of
 * several valid segments of format/vectors/segments (copied once into a
 * scratch directory), each then read end to end with the index in use:
 * the seeds, that directory's .kti files, each match one of them.  A
 * damaged index must never change what the reader returns, only what
 * verify reports.  Each input is tried as given and with its checksums
 * repaired (kt_fuzz_fix_index_checksums).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_lib.h"
#include "kt_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The valid vectors with blocks of different counts and time orders. */
static const char *const segments[] = {
	"valid-empty", "valid-one-record", "valid-multi-block", "valid-time-order",
	"valid-extremes",
};
#define SEGMENT_COUNT (sizeof(segments) / sizeof(segments[0]))

static char seg_path[SEGMENT_COUNT][4200];

static uint8_t *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
		kt_fuzz_fail("cannot read the seed segment %s", path);
	rewind(f);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		kt_fuzz_fail("cannot read the seed segment %s", path);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

static void copy_segments(void)
{
	for (size_t i = 0; i < SEGMENT_COUNT; i++) {
		char from[4200];
		uint8_t *buf;
		size_t n;

		snprintf(from, sizeof(from), "%s/segments/%s.kts", KT_VECTORS_DIR, segments[i]);
		snprintf(seg_path[i], sizeof(seg_path[i]), "%s/%s.kts", kt_fuzz_scratch_dir(),
			 segments[i]);
		buf = slurp(from, &n);
		kt_fuzz_write_file(seg_path[i], buf, n);
		free(buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char ipath[4200];
	uint8_t *fixed;

	if (!seg_path[0][0])
		copy_segments();
	/* The bytes as given, then with their checksums repaired so that a
	 * mutated entry reaches the comparison with the segment. */
	fixed = malloc(size ? size : 1);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	kt_fuzz_fix_index_checksums(fixed, size);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && memcmp(fixed, data, size) == 0)
			break;
		for (size_t i = 0; i < SEGMENT_COUNT; i++) {
			if (kt_store_index_path(seg_path[i], ipath, sizeof(ipath)) != 0)
				kt_fuzz_fail("no index path for %s", seg_path[i]);
			kt_fuzz_write_file(ipath, pass ? fixed : data, size);
			kt_fuzz_exercise_segment(seg_path[i], 0);
		}
	}
	free(fixed);
	return 0;
}
