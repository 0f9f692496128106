/* Unit tests of the -X / -F client configuration helper: kcat's syntax,
 * file:line in errors, nothing half-loaded, and secrets never echoed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kt_sandbox.h"

static char *write_temp(const char *content)
{
	char *path = strdup("/tmp/kt-kconf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

static void test_kconf_records_settings_and_last_one_wins(void **state)
{
	struct kt_sandbox_kconf *kconf = NULL;
	rd_kafka_conf_t *conf;
	char errstr[512], value[64];
	size_t value_size = sizeof(value);

	(void)state;
	assert_int_equal(kt_sandbox_kconf_create(&kconf), 0);
	assert_int_equal(kt_sandbox_kconf_add(kconf, "client.id=first", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_sandbox_kconf_add(kconf, " client.id = second ", errstr, sizeof(errstr)), 0);
	assert_int_equal(kt_sandbox_kconf_add(kconf, "linger.ms=5", errstr, sizeof(errstr)), 0);
	assert_string_equal(kt_sandbox_kconf_get(kconf, "client.id"), "second");
	assert_null(kt_sandbox_kconf_get(kconf, "acks"));
	conf = rd_kafka_conf_new();
	assert_int_equal(kt_sandbox_kconf_apply(kconf, conf, errstr, sizeof(errstr)), 0);
	assert_int_equal(rd_kafka_conf_get(conf, "client.id", value, &value_size), RD_KAFKA_CONF_OK);
	assert_string_equal(value, "second");
	rd_kafka_conf_destroy(conf);
	kt_sandbox_kconf_destroy(kconf);
	kt_sandbox_kconf_destroy(NULL);
}

static void test_kconf_refuses_settings_without_key_or_equals(void **state)
{
	struct kt_sandbox_kconf *kconf = NULL;
	char errstr[512];

	(void)state;
	assert_int_equal(kt_sandbox_kconf_create(&kconf), 0);
	assert_int_equal(kt_sandbox_kconf_add(kconf, "linger.ms", errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "-X"));
	assert_int_equal(kt_sandbox_kconf_add(kconf, "=5", errstr, sizeof(errstr)), KT_EUSAGE);
	/* An empty value is legal: it resets a property in librdkafka. */
	assert_int_equal(kt_sandbox_kconf_add(kconf, "client.id=", errstr, sizeof(errstr)), 0);
	kt_sandbox_kconf_destroy(kconf);
}

static void test_kconf_file_skips_comments_and_names_bad_line(void **state)
{
	struct kt_sandbox_kconf *kconf = NULL;
	char errstr[512], want[600];
	char *good = write_temp("# a comment\n\n  ! another\nclient.id = from-file\r\n"
				"  linger.ms=7  \nsasl.password=a=b=c\n");
	char *bad = write_temp("acks=all\n\nthis line is wrong\nlinger.ms=1\n");

	(void)state;
	assert_int_equal(kt_sandbox_kconf_create(&kconf), 0);
	assert_int_equal(kt_sandbox_kconf_add_file(kconf, good, errstr, sizeof(errstr)), 0);
	assert_string_equal(kt_sandbox_kconf_get(kconf, "client.id"), "from-file");
	assert_string_equal(kt_sandbox_kconf_get(kconf, "linger.ms"), "7");
	/* Only the first '=' separates key from value. */
	assert_string_equal(kt_sandbox_kconf_get(kconf, "sasl.password"), "a=b=c");

	assert_int_equal(kt_sandbox_kconf_add_file(kconf, bad, errstr, sizeof(errstr)), KT_EUSAGE);
	snprintf(want, sizeof(want), "%s:3:", bad);
	assert_non_null(strstr(errstr, want));
	/* Nothing of the bad file was kept, not even its good first line. */
	assert_null(kt_sandbox_kconf_get(kconf, "acks"));
	assert_string_equal(kt_sandbox_kconf_get(kconf, "linger.ms"), "7");

	assert_int_equal(kt_sandbox_kconf_add_file(kconf, "/nonexistent/kt.properties", errstr,
						   sizeof(errstr)), -ENOENT);
	assert_non_null(strstr(errstr, "/nonexistent/kt.properties"));
	unlink(good);
	unlink(bad);
	free(good);
	free(bad);
	kt_sandbox_kconf_destroy(kconf);
}

static void test_kconf_apply_names_origin_and_hides_secrets(void **state)
{
	struct kt_sandbox_kconf *kconf = NULL;
	rd_kafka_conf_t *conf;
	char errstr[512], desc[512], want[600];
	size_t need;
	char *file = write_temp("client.id=x\nmy.secret.token=hunter2\n");

	(void)state;
	assert_int_equal(kt_sandbox_kconf_create(&kconf), 0);
	assert_int_equal(kt_sandbox_kconf_add(kconf, "linger.ms=notanumber", errstr, sizeof(errstr)), 0);
	conf = rd_kafka_conf_new();
	assert_int_equal(kt_sandbox_kconf_apply(kconf, conf, errstr, sizeof(errstr)), KT_EUSAGE);
	assert_non_null(strstr(errstr, "-X: linger.ms=notanumber"));
	rd_kafka_conf_destroy(conf);
	kt_sandbox_kconf_destroy(kconf);

	assert_int_equal(kt_sandbox_kconf_create(&kconf), 0);
	assert_int_equal(kt_sandbox_kconf_add_file(kconf, file, errstr, sizeof(errstr)), 0);
	conf = rd_kafka_conf_new();
	assert_int_equal(kt_sandbox_kconf_apply(kconf, conf, errstr, sizeof(errstr)), KT_EUSAGE);
	snprintf(want, sizeof(want), "%s:2:", file);
	assert_non_null(strstr(errstr, want));
	assert_non_null(strstr(errstr, "my.secret.token"));
	assert_null(strstr(errstr, "hunter2"));
	rd_kafka_conf_destroy(conf);

	assert_int_equal(kt_sandbox_kconf_add(kconf, "sasl.password=hunter3", errstr, sizeof(errstr)), 0);
	need = kt_sandbox_kconf_describe(kconf, desc, sizeof(desc));
	assert_int_equal(need, strlen(desc));
	assert_non_null(strstr(desc, "client.id=x"));
	assert_non_null(strstr(desc, "sasl.password=(secret)"));
	assert_null(strstr(desc, "hunter"));
	/* A short buffer is truncated, and the needed length still reported. */
	assert_int_equal(kt_sandbox_kconf_describe(kconf, desc, 5), need);
	assert_int_equal(strlen(desc), 4);
	unlink(file);
	free(file);
	kt_sandbox_kconf_destroy(kconf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kconf_records_settings_and_last_one_wins),
		cmocka_unit_test(test_kconf_refuses_settings_without_key_or_equals),
		cmocka_unit_test(test_kconf_file_skips_comments_and_names_bad_line),
		cmocka_unit_test(test_kconf_apply_names_origin_and_hides_secrets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
