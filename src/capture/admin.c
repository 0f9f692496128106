/* Admin calls of a capture: the topic configs that differ from the broker's
 * defaults (DescribeConfigs) and the committed offsets of consumer groups
 * (ListConsumerGroups, ListConsumerGroupOffsets).  A broker that cannot
 * answer them costs a warning, never the backup.  DescribeConsumerGroups is
 * deliberately never used: it hangs librdkafka 2.0.2 against the mock. */
#include "capture_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_AdminOptions_t *admin_options(struct kt_capture *cap, rd_kafka_admin_op_t op)
{
	rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(cap->rk, op);
	char why[256];

	if (options &&
	    rd_kafka_AdminOptions_set_request_timeout(options, (int)cap->opts.admin_timeout_ms, why,
						      sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		kt_log(cap->opts.log, KT_LOG_DEBUG, "admin request timeout not applied: %s", why);
	return options;
}

/* Polls rkqu for the one result event, for at most the admin timeout plus a
 * margin (librdkafka answers by the request timeout). */
static rd_kafka_event_t *admin_wait(struct kt_capture *cap, rd_kafka_queue_t *rkqu)
{
	return rd_kafka_queue_poll(rkqu, (int)cap->opts.admin_timeout_ms + 2000);
}

static void configs_unavailable(struct kt_capture *cap, const char *why)
{
	cap->configs_unavailable = 1;
	if (cap->configs_warned)
		return;
	cap->configs_warned = 1;
	kt_log(cap->opts.log, KT_LOG_WARN,
	       "the broker could not describe topic configs (%s); the snapshot records "
	       "them as unavailable and the capture carries on", why);
}

rd_kafka_queue_t *cap_admin_configs_start(struct kt_capture *cap)
{
	rd_kafka_ConfigResource_t **resources;
	rd_kafka_AdminOptions_t *options;
	rd_kafka_queue_t *rkqu;

	if (cap->configs_unavailable || cap->topic_count == 0)
		return NULL;
	resources = calloc(cap->topic_count, sizeof(*resources));
	if (!resources)
		return NULL;
	for (size_t i = 0; i < cap->topic_count; i++)
		resources[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cap->topics[i].name);
	options = admin_options(cap, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rkqu = rd_kafka_queue_new(cap->rk);
	/* Asynchronous: the answer (or the timeout of a broker that has no
	 * controller, like the mock) overlaps with the consumption. */
	rd_kafka_DescribeConfigs(cap->rk, resources, cap->topic_count, options, rkqu);
	rd_kafka_AdminOptions_destroy(options);
	rd_kafka_ConfigResource_destroy_array(resources, cap->topic_count);
	free(resources);
	return rkqu;
}

static int topic_store_configs(struct cap_topic *topic, const rd_kafka_ConfigResource_t *res)
{
	size_t count = 0, kept = 0;
	const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res, &count);

	topic->config_names = calloc(count ? count : 1, sizeof(char *));
	topic->config_values = calloc(count ? count : 1, sizeof(char *));
	if (!topic->config_names || !topic->config_values)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		const rd_kafka_ConfigEntry_t *entry = entries[i];
		const char *name = rd_kafka_ConfigEntry_name(entry);
		const char *value = rd_kafka_ConfigEntry_value(entry);

		/* Only what an operator set on the topic: defaults come
		 * back with the broker they are restored to. */
		if (rd_kafka_ConfigEntry_is_default(entry) ||
		    rd_kafka_ConfigEntry_source(entry) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
			continue;
		if (rd_kafka_ConfigEntry_is_sensitive(entry) || kt_config_is_secret(name))
			value = NULL;
		topic->config_names[kept] = strdup(name);
		topic->config_values[kept] = value ? strdup(value) : NULL;
		if (!topic->config_names[kept] || (value && !topic->config_values[kept]))
			return -ENOMEM;
		topic->config_count = ++kept;
	}
	return 0;
}

void cap_admin_configs_finish(struct kt_capture *cap, rd_kafka_queue_t *rkqu)
{
	rd_kafka_event_t *rkev;
	const rd_kafka_DescribeConfigs_result_t *result;
	const rd_kafka_ConfigResource_t **resources;
	size_t count = 0;

	if (!rkqu) {
		configs_unavailable(cap, "it failed to answer earlier in this run");
		return;
	}
	rkev = admin_wait(cap, rkqu);
	if (!rkev) {
		configs_unavailable(cap, "no answer within the admin timeout");
		goto out;
	}
	if (rd_kafka_event_error(rkev)) {
		configs_unavailable(cap, rd_kafka_event_error_string(rkev));
		goto out;
	}
	result = rd_kafka_event_DescribeConfigs_result(rkev);
	resources = result ? rd_kafka_DescribeConfigs_result_resources(result, &count) : NULL;
	for (size_t i = 0; i < count; i++) {
		struct cap_topic *topic = cap_find_topic(cap, rd_kafka_ConfigResource_name(resources[i]));
		rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(resources[i]);

		if (!topic)
			continue;
		if (err) {
			kt_log(cap->opts.log, KT_LOG_WARN, "topic %s: configs unavailable: %s",
			       topic->name, rd_kafka_ConfigResource_error_string(resources[i]));
			continue;
		}
		if (topic_store_configs(topic, resources[i]) == 0)
			topic->configs_available = 1;
	}
out:
	if (rkev)
		rd_kafka_event_destroy(rkev);
	rd_kafka_queue_destroy(rkqu);
}

/* Adds name to the list unless present.  Returns 0 or -ENOMEM. */
static int names_add(char ***names, size_t *count, const char *name)
{
	char **grown;

	for (size_t i = 0; i < *count; i++)
		if (strcmp((*names)[i], name) == 0)
			return 0;
	grown = realloc(*names, (*count + 1) * sizeof(char *));
	if (!grown)
		return -ENOMEM;
	*names = grown;
	grown[*count] = strdup(name);
	if (!grown[*count])
		return -ENOMEM;
	(*count)++;
	return 0;
}

/* Adds the groups the broker lists that match --groups. */
static int list_groups(struct kt_capture *cap, char ***names, size_t *count)
{
	rd_kafka_AdminOptions_t *options = admin_options(cap, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
	rd_kafka_queue_t *rkqu = rd_kafka_queue_new(cap->rk);
	rd_kafka_event_t *rkev;
	const rd_kafka_ListConsumerGroups_result_t *result;
	const rd_kafka_ConsumerGroupListing_t **valid = NULL;
	const rd_kafka_error_t **errors = NULL;
	size_t nvalid = 0, nerrors = 0;
	const char *why = NULL;
	int err = 0;

	rd_kafka_ListConsumerGroups(cap->rk, options, rkqu);
	rkev = admin_wait(cap, rkqu);
	if (!rkev)
		why = "no answer within the admin timeout";
	else if (rd_kafka_event_error(rkev))
		why = rd_kafka_event_error_string(rkev);
	else if ((result = rd_kafka_event_ListConsumerGroups_result(rkev))) {
		valid = rd_kafka_ListConsumerGroups_result_valid(result, &nvalid);
		errors = rd_kafka_ListConsumerGroups_result_errors(result, &nerrors);
		if (nerrors > 0)
			why = rd_kafka_error_string(errors[0]);
	}
	if (why && !cap->groups_list_warned) {
		cap->groups_list_warned = 1;
		kt_log(cap->opts.log, KT_LOG_WARN,
		       "the broker could not list consumer groups (%s): --groups '%s' needs an explicit "
		       "--group list on this broker", why, cap->groups_regex_text);
	}
	for (size_t i = 0; i < nvalid && !err; i++) {
		const char *name = rd_kafka_ConsumerGroupListing_group_id(valid[i]);

		if (regexec(&cap->groups_regex, name, 0, NULL, 0) == 0)
			err = names_add(names, count, name);
	}
	if (rkev)
		rd_kafka_event_destroy(rkev);
	rd_kafka_queue_destroy(rkqu);
	rd_kafka_AdminOptions_destroy(options);
	return err;
}

/* Reads one group's committed offsets for the partitions in parts. */
static int group_offsets(struct kt_capture *cap, const char *group,
			 const rd_kafka_topic_partition_list_t *parts,
			 struct kt_store_snapshot *snap, uint32_t *recorded)
{
	rd_kafka_AdminOptions_t *options = admin_options(cap, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
	rd_kafka_queue_t *rkqu = rd_kafka_queue_new(cap->rk);
	rd_kafka_ListConsumerGroupOffsets_t *request = rd_kafka_ListConsumerGroupOffsets_new(group, parts);
	const rd_kafka_ListConsumerGroupOffsets_result_t *result;
	const rd_kafka_group_result_t **groups;
	rd_kafka_event_t *rkev;
	size_t ngroups = 0;
	int err = 0, any = 0;

	/* An explicit partition list: the mock (and some brokers) answer
	 * nothing to a NULL one. */
	rd_kafka_ListConsumerGroupOffsets(cap->rk, &request, 1, options, rkqu);
	rkev = admin_wait(cap, rkqu);
	if (!rkev || rd_kafka_event_error(rkev)) {
		kt_log(cap->opts.log, KT_LOG_WARN, "consumer group %s: committed offsets unavailable: %s",
		       group, rkev ? rd_kafka_event_error_string(rkev) : "no answer within the admin timeout");
		goto out;
	}
	result = rd_kafka_event_ListConsumerGroupOffsets_result(rkev);
	groups = result ? rd_kafka_ListConsumerGroupOffsets_result_groups(result, &ngroups) : NULL;
	for (size_t g = 0; g < ngroups && !err; g++) {
		const rd_kafka_error_t *gerr = rd_kafka_group_result_error(groups[g]);
		const rd_kafka_topic_partition_list_t *offs = rd_kafka_group_result_partitions(groups[g]);

		if (gerr) {
			kt_log(cap->opts.log, KT_LOG_WARN, "consumer group %s: %s", group,
			       rd_kafka_error_string(gerr));
			continue;
		}
		for (int i = 0; offs && i < offs->cnt && !err; i++) {
			const rd_kafka_topic_partition_t *tp = &offs->elems[i];
			char meta[1024];
			size_t mlen = tp->metadata_size < sizeof(meta) - 1 ? tp->metadata_size : sizeof(meta) - 1;

			if (tp->err || tp->offset < 0)
				continue; /* nothing committed for this partition */
			if (tp->metadata && mlen > 0) {
				memcpy(meta, tp->metadata, mlen);
				meta[mlen] = '\0';
			}
			if (kt_store_snapshot_add_group_offset(snap, group, tp->topic, tp->partition, tp->offset,
							       tp->metadata && mlen > 0 ? meta : NULL))
				err = -ENOMEM;
			any = 1;
		}
	}
	if (any)
		(*recorded)++;
	else if (!err)
		kt_log(cap->opts.log, KT_LOG_INFO, "consumer group %s has no committed offset on the captured topics",
		       group);
out:
	if (rkev)
		rd_kafka_event_destroy(rkev);
	rd_kafka_queue_destroy(rkqu);
	rd_kafka_AdminOptions_destroy(options);
	rd_kafka_ListConsumerGroupOffsets_destroy(request);
	return err;
}

int cap_admin_group_offsets(struct kt_capture *cap, struct kt_store_snapshot *snap,
			    uint32_t *groups_recorded)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	char **names = NULL;
	size_t count = 0;
	int err = 0;

	*groups_recorded = 0;
	if (cap->group_count == 0 && !cap->has_groups_regex)
		return 0;
	for (size_t i = 0; i < cap->group_count && !err; i++)
		err = names_add(&names, &count, cap->groups[i]);
	if (!err && cap->has_groups_regex)
		err = list_groups(cap, &names, &count);
	if (err || count == 0)
		goto out;
	parts = rd_kafka_topic_partition_list_new(16);
	for (size_t t = 0; t < cap->topic_count; t++)
		for (size_t p = 0; p < cap->topics[t].part_count; p++)
			rd_kafka_topic_partition_list_add(parts, cap->topics[t].name, (int32_t)p);
	for (size_t i = 0; i < count && !err; i++)
		err = group_offsets(cap, names[i], parts, snap, groups_recorded);
out:
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return err;
}
