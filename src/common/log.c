/* The logging callback: modules never print; they hand sentences to the
 * sink the CLI (or a test) installed. */
#include "kt_common.h"

#include <stdio.h>

void kt_log(const struct kt_log *log, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!log || !log->fn || level > log->max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log->fn(log->opaque, level, msg);
}
