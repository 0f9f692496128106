/*
 * fuzz_manifest - libFuzzer target for the snapshot manifest parser,
 * kt_store_snapshot_from_json (format/repository.md section 4).
 *
 * The input is handed over in a buffer of exactly its size, with no NUL
 * after it, so that a parser that reads past len is caught.  A manifest
 * that parses must survive the round trip the API promises ("a manifest
 * that could be written can always be read back"): to_json succeeds, its
 * output parses again, and writing that gives the same text.  Seeds: the
 * manifests under format/vectors/repo.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_lib.h"
#include "kt_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks the parsed snapshot through the lookup functions, reading every
 * string so that AddressSanitizer sees any that is not terminated. */
static void walk(const struct kt_store_snapshot *snap)
{
	volatile size_t sink = strlen(snap->id) + strlen(snap->parent);

	if (snap->source)
		sink += strlen(snap->source);
	if (snap->tool_version)
		sink += strlen(snap->tool_version);
	for (size_t t = 0; t < snap->topic_count; t++) {
		const struct kt_store_topic *topic = &snap->topics[t];

		if (kt_store_snapshot_find_topic(snap, topic->name) == NULL)
			kt_fuzz_fail("topic '%s' is listed but not found", topic->name);
		for (size_t c = 0; c < topic->config_count; c++)
			sink += strlen(topic->configs[c].name) +
				(topic->configs[c].value ? strlen(topic->configs[c].value) : 0);
		for (size_t p = 0; p < topic->n_partitions; p++) {
			const struct kt_store_partition *part = &topic->partitions[p];

			if (kt_store_topic_find_partition(topic, part->partition) != part)
				kt_fuzz_fail("partition %d of '%s' is listed but not found",
					     (int)part->partition, topic->name);
			for (size_t s = 0; s < part->segment_count; s++)
				sink += strlen(part->segments[s].path);
			for (size_t g = 0; g < part->gap_count; g++)
				sink += part->gaps[g].reason ? strlen(part->gaps[g].reason) : 0;
		}
	}
	for (size_t g = 0; g < snap->group_offset_count; g++)
		sink += strlen(snap->group_offsets[g].group) + strlen(snap->group_offsets[g].topic) +
			(snap->group_offsets[g].metadata ? strlen(snap->group_offsets[g].metadata) : 0);
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_store_snapshot *snap = NULL, *again = NULL;
	char *copy = malloc(size ? size : 1);
	char *json = NULL, *json2 = NULL;
	char errstr[512] = "";
	int rc;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	rc = kt_store_snapshot_from_json(copy, size, &snap, errstr, sizeof(errstr));
	if (rc != 0) {
		if (errstr[0] == '\0')
			kt_fuzz_fail("from_json failed with %d but left errstr empty", rc);
		if (snap)
			kt_fuzz_fail("from_json failed with %d but returned a snapshot", rc);
		goto out;
	}
	walk(snap);
	rc = kt_store_snapshot_to_json(snap, &json, errstr, sizeof(errstr));
	if (rc != 0)
		kt_fuzz_fail("a manifest that was read cannot be written back: %s", errstr);
	rc = kt_store_snapshot_from_json(json, strlen(json), &again, errstr, sizeof(errstr));
	if (rc != 0)
		kt_fuzz_fail("a manifest written by to_json does not read back: %s\n%s", errstr, json);
	rc = kt_store_snapshot_to_json(again, &json2, errstr, sizeof(errstr));
	if (rc != 0 || strcmp(json, json2) != 0)
		kt_fuzz_fail("the manifest round trip is not stable:\n%s\n%s", json,
			     json2 ? json2 : errstr);
out:
	free(json);
	free(json2);
	kt_store_snapshot_destroy(again);
	kt_store_snapshot_destroy(snap);
	free(copy);
	return 0;
}
