/* ktape version: the versions of ktape and of the libraries it runs with,
 * which matter when reporting a bug (the mock broker's API is not stable
 * across librdkafka versions). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>
#include <jansson.h>

#include "cli.h"
#include "kt_store.h"

int kt_cli_cmd_version(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("Usage: ktape version\n\nPrints the versions of ktape and its libraries.\n");
		return KT_EXIT_OK;
	}
	if (argc > 1) {
		kt_cli_error("version", "unexpected argument '%s'", argv[1]);
		return kt_cli_usage_error("version");
	}
	printf("ktape %s (librdkafka %s, zstd %s, %s, jansson %s)\n",
	       KT_VERSION_STRING, rd_kafka_version_str(), ZSTD_versionString(),
	       kt_store_archive_version(), JANSSON_VERSION);
	return KT_EXIT_OK;
}
