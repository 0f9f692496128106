/* Error codes and messages shared by every ktape module. */
#include "kt_common.h"

#include <stdio.h>
#include <string.h>

const char *kt_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case KT_ECORRUPT:
		return "data is corrupt (checksum mismatch or malformed structure)";
	case KT_ETRUNCATED:
		return "data is truncated (torn write)";
	case KT_EVERSION:
		return "written by a newer format version";
	case KT_EMAGIC:
		return "not a ktape file of the expected kind";
	case KT_ENOTFOUND:
		return "not found";
	case KT_ELOCKED:
		return "repository is locked by another process";
	case KT_ERANGE:
		return "outside the stored range";
	case KT_EKAFKA:
		return "Kafka error";
	case KT_EUNSUPPORTED:
		return "not supported by the broker";
	case KT_EUSAGE:
		return "invalid argument";
	case KT_EGAP:
		return "records were lost to retention before capture";
	case KT_EINTERRUPTED:
		return "interrupted";
	case KT_ETIMEDOUT:
		return "timed out";
	case KT_EEXIST:
		return "already exists";
	case KT_EDELIVERY:
		return "record delivery failed";
	default:
		break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}

int kt_seterr(char *errstr, size_t errstr_size, int err, const char *fmt, ...)
{
	va_list ap;

	if (errstr && errstr_size) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return err;
}
