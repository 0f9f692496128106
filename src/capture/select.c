/* Topic selection: exact names and '^'-regexes, exclusions, and the rule
 * that internal topics are captured only when named. */
#include "capture_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int pattern_init(struct cap_pattern *pat, const char *text, const char *what,
			char *errstr, size_t errstr_size)
{
	int rc;

	if (!text || !*text)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "an empty %s pattern is not allowed", what);
	pat->text = strdup(text);
	if (!pat->text)
		return -ENOMEM;
	pat->is_regex = text[0] == '^';
	if (!pat->is_regex)
		return 0;
	rc = regcomp(&pat->re, text, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char why[128];

		regerror(rc, &pat->re, why, sizeof(why));
		pat->is_regex = 0; /* nothing to regfree */
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "invalid %s regex '%s': %s", what, text, why);
	}
	return 0;
}

static void patterns_free(struct cap_pattern *pats, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (pats[i].is_regex)
			regfree(&pats[i].re);
		free(pats[i].text);
	}
	free(pats);
}

static int patterns_init(struct cap_pattern **out, const char *const *texts, size_t count,
			 const char *what, char *errstr, size_t errstr_size)
{
	struct cap_pattern *pats;
	int err = 0;

	*out = NULL;
	if (count == 0)
		return 0;
	pats = calloc(count, sizeof(*pats));
	if (!pats)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		err = pattern_init(&pats[i], texts[i], what, errstr, errstr_size);
		if (err) {
			patterns_free(pats, i + 1);
			return err;
		}
	}
	*out = pats;
	return 0;
}

int cap_selector_init(struct cap_selector *sel, const char *const *topics, size_t topic_count,
		      const char *const *excludes, size_t exclude_count,
		      char *errstr, size_t errstr_size)
{
	int err;

	memset(sel, 0, sizeof(*sel));
	if (topic_count == 0)
		return kt_seterr(errstr, errstr_size, KT_EUSAGE, "no topic selected: give -t NAME or -t '^REGEX'");
	err = patterns_init(&sel->include, topics, topic_count, "topic", errstr, errstr_size);
	if (err)
		return err;
	sel->include_count = topic_count;
	err = patterns_init(&sel->exclude, excludes, exclude_count, "exclude", errstr, errstr_size);
	if (err) {
		cap_selector_free(sel);
		return err;
	}
	sel->exclude_count = exclude_count;
	return 0;
}

void cap_selector_free(struct cap_selector *sel)
{
	patterns_free(sel->include, sel->include_count);
	patterns_free(sel->exclude, sel->exclude_count);
	memset(sel, 0, sizeof(*sel));
}

static int pattern_match(const struct cap_pattern *pat, const char *name)
{
	if (!pat->is_regex)
		return strcmp(pat->text, name) == 0;
	return regexec(&pat->re, name, 0, NULL, 0) == 0;
}

int cap_selector_match(const struct cap_selector *sel, const char *name)
{
	int selected = 0;
	/* Kafka's own topics (__consumer_offsets, __transaction_state) and
	 * those of tools built on it are never what a broad regex means. */
	int internal = strncmp(name, "__", 2) == 0;

	for (size_t i = 0; i < sel->include_count && !selected; i++) {
		const struct cap_pattern *pat = &sel->include[i];

		if (pat->is_regex && internal)
			continue;
		selected = pattern_match(pat, name);
	}
	if (!selected)
		return 0;
	for (size_t i = 0; i < sel->exclude_count; i++)
		if (pattern_match(&sel->exclude[i], name))
			return 0;
	return 1;
}

const char *cap_selector_missing(const struct cap_selector *sel, const char *const *names,
				 size_t count)
{
	for (size_t i = 0; i < sel->include_count; i++) {
		const struct cap_pattern *pat = &sel->include[i];
		int found = 0;

		if (pat->is_regex)
			continue;
		for (size_t j = 0; j < count && !found; j++)
			found = strcmp(names[j], pat->text) == 0;
		if (!found)
			return pat->text;
	}
	return NULL;
}
