/*
 * fuzz_segment - libFuzzer target for the segment reader.
 *
 * Each input is a whole .kts file (format/segment.md).  It is written to a
 * scratch file, with no index beside it, and read end to end twice: as a
 * sealed segment and with KT_STORE_OPEN_RECOVER, the mode `ktape verify`
 * and a restore after a crash use on torn files.  Then the same bytes are
 * read again with every checksum repaired (kt_fuzz_fix_segment_checksums),
 * so that a mutation inside a block reaches the record parser instead of
 * stopping at the payload checksum.  Seeds: format/vectors/segments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_lib.h"
#include "kt_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4200];
	uint8_t *fixed;

	snprintf(path, sizeof(path), "%s/input.kts", kt_fuzz_scratch_dir());
	kt_fuzz_write_file(path, data, size);
	kt_fuzz_exercise_segment(path, 0);
	kt_fuzz_exercise_segment(path, KT_STORE_OPEN_RECOVER);

	fixed = malloc(size ? size : 1);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	kt_fuzz_fix_segment_checksums(fixed, size);
	if (memcmp(fixed, data, size) != 0) {
		kt_fuzz_write_file(path, fixed, size);
		kt_fuzz_exercise_segment(path, 0);
		kt_fuzz_exercise_segment(path, KT_STORE_OPEN_RECOVER);
	}
	free(fixed);
	return 0;
}
