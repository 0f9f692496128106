/* Clocks and the parsing of times, sizes and durations given on the
 * command line. */
#include "kt_common.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t kt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t kt_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reads exactly n decimal digits; returns -1 if they are not there. */
static int read_digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that no time zone state of the process is used. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int parse_iso8601(const char *s, int64_t *out_ms)
{
	const char *p = s;
	int year, mon, day, hh = 0, mm = 0, ss = 0, ms = 0;
	int64_t offset_min = 0;

	if ((year = read_digits(&p, 4)) < 0 || *p++ != '-')
		return KT_EUSAGE;
	if ((mon = read_digits(&p, 2)) < 1 || mon > 12 || *p++ != '-')
		return KT_EUSAGE;
	if ((day = read_digits(&p, 2)) < 1 || day > 31)
		return KT_EUSAGE;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if ((hh = read_digits(&p, 2)) < 0 || hh > 23 || *p++ != ':')
			return KT_EUSAGE;
		if ((mm = read_digits(&p, 2)) < 0 || mm > 59)
			return KT_EUSAGE;
		if (*p == ':') {
			p++;
			if ((ss = read_digits(&p, 2)) < 0 || ss > 60)
				return KT_EUSAGE;
			if (*p == '.' || *p == ',') {
				int scale = 100;

				p++;
				if (!isdigit((unsigned char)*p))
					return KT_EUSAGE;
				while (isdigit((unsigned char)*p)) {
					ms += (*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1;
			int oh, om = 0;

			if ((oh = read_digits(&p, 2)) < 0 || oh > 23)
				return KT_EUSAGE;
			if (*p == ':')
				p++;
			if (isdigit((unsigned char)*p) && (om = read_digits(&p, 2)) < 0)
				return KT_EUSAGE;
			offset_min = sign * (oh * 60 + om);
		}
	}
	if (*p != '\0')
		return KT_EUSAGE;
	int64_t days = days_from_civil(year, mon, day);
	*out_ms = ((days * 86400 + hh * 3600 + mm * 60 + ss) - offset_min * 60) * 1000 + ms;
	return 0;
}

int kt_parse_time_ms(const char *text, int64_t *out_ms)
{
	if (!text || !*text)
		return KT_EUSAGE;
	if (strlen(text) >= 5 && text[4] == '-')
		return parse_iso8601(text, out_ms);

	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || *end != '\0' || end == text)
		return KT_EUSAGE;
	*out_ms = v;
	return 0;
}

void kt_format_time_ms(int64_t ms, char *buf, size_t buf_size)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, buf_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, frac);
}

int kt_parse_i64(const char *text, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!text || !(isdigit((unsigned char)*text) || (*text == '-' && isdigit((unsigned char)text[1]))))
		return KT_EUSAGE;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || *end || v < min || v > max)
		return KT_EUSAGE;
	*out = v;
	return 0;
}

int kt_parse_u64(const char *text, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	/* strtoull accepts "-1" and wraps it: insist on a digit first. */
	if (!text || !isdigit((unsigned char)*text))
		return KT_EUSAGE;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || *end || v > max)
		return KT_EUSAGE;
	*out = v;
	return 0;
}

int kt_parse_double(const char *text, double *out)
{
	const char *digits = text && *text == '-' ? text + 1 : text;
	char *end;
	double v;

	/* strtod also takes blanks, "inf", "nan" and hex floats, which no
	 * flag means: insist on a plain decimal. */
	if (!digits || !(isdigit((unsigned char)*digits) || *digits == '.') || strpbrk(text, "xX"))
		return KT_EUSAGE;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v))
		return KT_EUSAGE;
	*out = v;
	return 0;
}

int kt_parse_size(const char *text, uint64_t *out_bytes)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!text || !isdigit((unsigned char)*text))
		return KT_EUSAGE;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return KT_EUSAGE;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mult = 1ULL << 10;
		break;
	case 'M':
		mult = 1ULL << 20;
		break;
	case 'G':
		mult = 1ULL << 30;
		break;
	case 'T':
		mult = 1ULL << 40;
		break;
	default:
		return KT_EUSAGE;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return KT_EUSAGE;
	}
	if (v > UINT64_MAX / mult)
		return KT_EUSAGE;
	*out_bytes = v * mult;
	return 0;
}

int kt_parse_duration_ms(const char *text, int64_t *out_ms)
{
	char *end;
	double v;
	double mult = 1000.0;

	/* strtod would also read "0x10" as sixteen and "infs" as forever. */
	if (!text || !(isdigit((unsigned char)*text) || *text == '.') || strpbrk(text, "xX"))
		return KT_EUSAGE;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || v < 0 || !isfinite(v))
		return KT_EUSAGE;
	if (!strcmp(end, "ms"))
		mult = 1.0;
	else if (!strcmp(end, "s") || !*end)
		mult = 1000.0;
	else if (!strcmp(end, "m"))
		mult = 60000.0;
	else if (!strcmp(end, "h"))
		mult = 3600000.0;
	else
		return KT_EUSAGE;
	if (v * mult > (double)INT64_MAX / 2)
		return KT_EUSAGE;
	*out_ms = (int64_t)(v * mult + 0.5);
	return 0;
}
