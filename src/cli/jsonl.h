/*
 * jsonl.h - private to the CLI: records as JSON lines (docs/json-records.md).
 *
 * The fields and order of kcat -J, always valid JSON: a key, payload,
 * header name or header value that is not valid UTF-8 is written as
 * {"base64":"..."} instead of a string, so nothing is lost.
 */
#ifndef KT_CLI_JSONL_H
#define KT_CLI_JSONL_H

#include <stdint.h>
#include <stdio.h>

#include "kt_store.h"

/* Writes one record as one line to out.  Allocates nothing.  Returns 0, or
 * -errno when writing to out failed (ferror). */
int kt_cli_jsonl_write(FILE *out, const char *topic, int32_t partition,
		       const struct kt_record *rec);

/* Nonzero when the n bytes at p are valid UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
int kt_cli_jsonl_utf8_valid(const void *p, size_t n);

#endif /* KT_CLI_JSONL_H */
