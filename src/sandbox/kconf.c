/*
 * librdkafka client configuration from `-X key=value` and `-F file`, as kcat
 * takes them.  Settings are recorded first and applied later so that one
 * command line can configure several client handles (a consumer and an
 * admin client, say), and so that an error can name where a setting came
 * from without ever quoting a secret value.
 */
#include "kt_sandbox.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kconf_entry {
	char *key;
	char *value;
	char *origin; /* "-X" or "FILE:LINE" */
};

struct kt_sandbox_kconf {
	struct kconf_entry *entries;
	size_t count;
	size_t cap;
};

int kt_sandbox_kconf_create(struct kt_sandbox_kconf **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void kt_sandbox_kconf_destroy(struct kt_sandbox_kconf *kconf)
{
	if (!kconf)
		return;
	for (size_t i = 0; i < kconf->count; i++) {
		free(kconf->entries[i].key);
		free(kconf->entries[i].value);
		free(kconf->entries[i].origin);
	}
	free(kconf->entries);
	free(kconf);
}

/* Trims blanks from both ends of [*start, *start+*len). */
static void trim(const char **start, size_t *len)
{
	while (*len && isspace((unsigned char)**start)) {
		(*start)++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)(*start)[*len - 1]))
		(*len)--;
}

static int push(struct kt_sandbox_kconf *kconf, const char *key, size_t key_len,
		const char *value, size_t value_len, const char *origin)
{
	struct kconf_entry *e;

	if (kconf->count == kconf->cap) {
		size_t cap = kconf->cap ? kconf->cap * 2 : 16;
		struct kconf_entry *grown = realloc(kconf->entries, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		kconf->entries = grown;
		kconf->cap = cap;
	}
	e = &kconf->entries[kconf->count];
	e->key = strndup(key, key_len);
	e->value = strndup(value, value_len);
	e->origin = strdup(origin);
	if (!e->key || !e->value || !e->origin) {
		free(e->key);
		free(e->value);
		free(e->origin);
		return -ENOMEM;
	}
	kconf->count++;
	return 0;
}

/* Splits "key=value" (blanks around either trimmed) and records it. */
static int add_setting(struct kt_sandbox_kconf *kconf, const char *text, size_t len,
		       const char *origin, char *errstr, size_t errstr_size)
{
	const char *eq = memchr(text, '=', len);
	const char *key = text, *value;
	size_t key_len, value_len;
	int err;

	if (!eq)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "%s: expected key=value, found no '='", origin);
	key_len = (size_t)(eq - text);
	value = eq + 1;
	value_len = len - key_len - 1;
	trim(&key, &key_len);
	trim(&value, &value_len);
	if (key_len == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE,
				 "%s: expected key=value, the key is empty", origin);
	err = push(kconf, key, key_len, value, value_len, origin);
	if (err)
		return kt_seterr(errstr, errstr_size, err, "%s: out of memory", origin);
	return 0;
}

int kt_sandbox_kconf_add(struct kt_sandbox_kconf *kconf, const char *setting,
			 char *errstr, size_t errstr_size)
{
	return add_setting(kconf, setting, strlen(setting), "-X", errstr, errstr_size);
}

int kt_sandbox_kconf_add_file(struct kt_sandbox_kconf *kconf, const char *path,
			      char *errstr, size_t errstr_size)
{
	size_t first = kconf->count;
	char *line = NULL;
	size_t line_cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	FILE *f;
	int err = 0;

	f = fopen(path, "re");
	if (!f)
		return kt_seterr(errstr, errstr_size, -errno, "%s: cannot open the configuration file: %s",
				 path, strerror(errno));
	while ((len = getline(&line, &line_cap, f)) >= 0) {
		const char *p = line;
		size_t n = (size_t)len;
		char origin[4096 + 16];

		lineno++;
		trim(&p, &n);
		if (n == 0 || *p == '#' || *p == '!')
			continue;
		if (memchr(p, '\0', n)) {
			err = kt_seterr(errstr, errstr_size, KT_EUSAGE, "%s:%u: NUL byte in the line",
					path, lineno);
			goto out;
		}
		snprintf(origin, sizeof(origin), "%s:%u", path, lineno);
		err = add_setting(kconf, p, n, origin, errstr, errstr_size);
		if (err)
			goto out;
	}
	if (ferror(f))
		err = kt_seterr(errstr, errstr_size, -EIO, "%s: read error after line %u", path, lineno);
out:
	if (err) {
		/* A half-read file must not leave half its settings behind. */
		while (kconf->count > first) {
			struct kconf_entry *e = &kconf->entries[--kconf->count];
			free(e->key);
			free(e->value);
			free(e->origin);
		}
	}
	free(line);
	fclose(f);
	return err;
}

int kt_sandbox_kconf_apply(const struct kt_sandbox_kconf *kconf,
			   rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	char rkerr[512];

	for (size_t i = 0; i < kconf->count; i++) {
		const struct kconf_entry *e = &kconf->entries[i];

		if (rd_kafka_conf_set(conf, e->key, e->value, rkerr, sizeof(rkerr)) == RD_KAFKA_CONF_OK)
			continue;
		/* librdkafka's message may quote the value itself; for a
		 * secret, say only that it was refused. */
		if (kt_config_is_secret(e->key))
			return kt_seterr(errstr, errstr_size, KT_EUSAGE,
					 "%s: librdkafka refused %s (value not shown: it is a secret)",
					 e->origin, e->key);
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "%s: %s=%s: %s",
				 e->origin, e->key, e->value, rkerr);
	}
	return 0;
}

const char *kt_sandbox_kconf_get(const struct kt_sandbox_kconf *kconf, const char *key)
{
	for (size_t i = kconf->count; i > 0; i--)
		if (strcmp(kconf->entries[i - 1].key, key) == 0)
			return kconf->entries[i - 1].value;
	return NULL;
}

size_t kt_sandbox_kconf_describe(const struct kt_sandbox_kconf *kconf, char *buf,
				 size_t buf_size)
{
	size_t need = 0;

	if (buf_size)
		buf[0] = '\0';
	for (size_t i = 0; i < kconf->count; i++) {
		const struct kconf_entry *e = &kconf->entries[i];
		/* Once buf is full, keep counting what it would need, as
		 * snprintf(NULL, 0, ...) does. */
		char *dst = NULL;
		size_t room = 0;
		if (buf && need < buf_size) {
			dst = buf + need;
			room = buf_size - need;
		}
		int n = snprintf(dst, room, "%s%s=%s", i ? ", " : "", e->key,
				 kt_config_is_secret(e->key) ? "(secret)" : e->value);
		if (n > 0)
			need += (size_t)n;
	}
	return need;
}
