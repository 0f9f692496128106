# tests/integration/fixtures.sh - the two data sets later tests share,
# shaped like the clusters ktape is first built for.  Source it after
# lib.sh:
#     . "$(dirname "$0")/lib.sh"
#     . "$(dirname "$0")/fixtures.sh"
#
# Shell API (SIZE multiplies every record count; default $KT_FIXTURE_SIZE
# or 1; benches raise it.  KT_FIXTURE_SIZE=20 passes test_sandbox_fixtures.sh
# in about 15 s; mind the mock's 5 MiB of stored (compressed) batches per
# partition, which somabrain_events, the largest per partition, reaches
# first):
#   fixture_a_topics / fixture_b_topics
#       print the `--topic NAME:PARTITIONS` flags of the fixture, for
#       start_sandbox $(fixture_a_topics)
#   fixture_a_load [SIZE] / fixture_b_load [SIZE]
#       produce the fixture into the running sandbox ($BOOTSTRAP) with
#       `ktape gen` (and, for (a), commit the group offsets)
#   start_fixture_a [SIZE] / start_fixture_b [SIZE]
#       start_sandbox with the fixture's topics, then load it
#   fixture_a_expected DIR [SIZE] / fixture_b_expected DIR [SIZE]
#       write DIR/TOPIC.jsonl for each topic: the records the fixture holds,
#       in ktape's JSON-lines format with their offsets, computed by
#       `ktape gen --print` without any broker (compare with dumpcmp)
#   fixture_a_commits [SIZE]
#       print the committed group offsets, one "GROUP TOPIC PARTITION OFFSET"
#       per line
#
# Fixture (a), services with an outbox: (record counts for SIZE 1)
#   audit_events      2 partitions  p0 400, p1 350 records; keys tenant-N,
#                                   headers (some null, some duplicated)
#   outbox_events     2 partitions  p0 250, p1 250; keys aggregate-N, 10%
#                                   tombstones, out-of-order timestamps
#   somabrain_events  4 partitions  1000 records keyed by CRC32 (librdkafka's
#                                   default partitioner), 5% null keys,
#                                   binary values with NUL and newlines
#   groups: audit_processor_group   audit_events  p0 at 400 (caught up),
#                                                 p1 at 300 (50 behind)
#           outbox_publisher_group  outbox_events p0 at 200, p1 at 250
#   (offsets scale with SIZE)
# Fixture (b), market data:
#   market.equities.trades.asx    30 partitions, 1500 records keyed by
#                                 symbol (ASX:SYM0..199)
#   market.crypto.trades.binance  40 partitions, 2000 records keyed by
#                                 symbol (BINANCE:SYM0..299), less compressible
#   _schemas                      1 partition, 100 records over 20 keys with
#                                 20% tombstones (a compacted topic's shape)

KT_FIXTURE_SIZE=${KT_FIXTURE_SIZE:-1}

# Each spec: TOPIC PARTITIONS COUNT_AT_SIZE_1 gen-args...  Counts are scaled
# by SIZE; everything else is fixed, so --print recomputes the same records.
_kt_fixture_specs() {
	case $1 in
	a)
		echo "audit_events 2 400 -p 0 --seed 101 --keys 50 --key-prefix tenant- --headers 3 --null-headers 20% --dup-headers 30% --size 150-400 --ts-span 2h"
		echo "audit_events 2 350 -p 1 --seed 102 --keys 50 --key-prefix tenant- --headers 3 --null-headers 20% --dup-headers 30% --size 150-400 --ts-span 2h"
		echo "outbox_events 2 250 -p 0 --seed 201 --keys 100 --key-prefix aggregate- --tombstones 10% --headers 2 --disorder 10% --size 200-600"
		echo "outbox_events 2 250 -p 1 --seed 202 --keys 100 --key-prefix aggregate- --tombstones 10% --headers 2 --disorder 10% --size 200-600"
		echo "somabrain_events 4 1000 --seed 301 --keys 400 --key-prefix mem- --null-keys 5% --binary 20% --compressibility 70 --size 50-1500 --headers 1"
		;;
	b)
		echo "market.equities.trades.asx 30 1500 --seed 401 --keys 200 --key-prefix ASX:SYM --size 80-160 --ts-span 6h --disorder 2%"
		echo "market.crypto.trades.binance 40 2000 --seed 402 --keys 300 --key-prefix BINANCE:SYM --size 80-200 --compressibility 40 --ts-span 6h --disorder 5%"
		echo "_schemas 1 100 --seed 403 --keys 20 --key-prefix subject- --tombstones 20% --size 300-900"
		;;
	esac
}

_kt_fixture_topics() {
	_kt_fixture_specs "$1" | awk '!seen[$1]++ { printf "--topic %s:%s\n", $1, $2 }'
}

fixture_a_topics() { _kt_fixture_topics a; }
fixture_b_topics() { _kt_fixture_topics b; }

_kt_fixture_load() {
	local which=$1 size=${2:-$KT_FIXTURE_SIZE}
	local topic parts count args
	while read -r topic parts count args; do
		# shellcheck disable=SC2086 # args are words by design
		"$KTAPE" gen -b "$BOOTSTRAP" -t "$topic" -n $((count * size)) $args >"$T/gen.out" ||
			fail "fixture $which: ktape gen into $topic failed"
	done < <(_kt_fixture_specs "$which")
}

fixture_a_commits() {
	local size=${1:-$KT_FIXTURE_SIZE}
	echo "audit_processor_group audit_events 0 $((400 * size))"
	echo "audit_processor_group audit_events 1 $((300 * size))"
	echo "outbox_publisher_group outbox_events 0 $((200 * size))"
	echo "outbox_publisher_group outbox_events 1 $((250 * size))"
}

fixture_a_load() {
	local size=${1:-$KT_FIXTURE_SIZE}
	local group topic partition offset
	local commits=()
	_kt_fixture_load a "$size"
	while read -r group topic partition offset; do
		commits+=(--commit "$group:$topic:$partition:$offset")
	done < <(fixture_a_commits "$size")
	"$KTAPE" gen -b "$BOOTSTRAP" -n 0 "${commits[@]}" >"$T/gen.out" ||
		fail "fixture a: committing group offsets failed"
}

fixture_b_load() {
	_kt_fixture_load b "${1:-$KT_FIXTURE_SIZE}"
}

start_fixture_a() {
	# shellcheck disable=SC2046 # one flag per word
	start_sandbox $(fixture_a_topics)
	fixture_a_load "$@"
}

start_fixture_b() {
	# shellcheck disable=SC2046
	start_sandbox $(fixture_b_topics)
	fixture_b_load "$@"
}

# Appends each spec's --print output to DIR/TOPIC.jsonl.  ktape gen --print
# numbers offsets per partition from 0, which is what an empty topic gives;
# two specs never share a partition.
_kt_fixture_expected() {
	local which=$1 dir=$2 size=${3:-$KT_FIXTURE_SIZE}
	local topic parts count args
	mkdir -p "$dir"
	while read -r topic parts count args; do
		rm -f "$dir/$topic.jsonl"
	done < <(_kt_fixture_specs "$which")
	while read -r topic parts count args; do
		# shellcheck disable=SC2086
		"$KTAPE" gen --print -t "$topic" --partitions "$parts" -n $((count * size)) $args \
			>>"$dir/$topic.jsonl" || fail "fixture $which: ktape gen --print for $topic failed"
	done < <(_kt_fixture_specs "$which")
}

fixture_a_expected() { _kt_fixture_expected a "$@"; }
fixture_b_expected() { _kt_fixture_expected b "$@"; }
