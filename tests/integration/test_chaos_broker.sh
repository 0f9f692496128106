#!/usr/bin/env bash
# Broker faults injected through the sandbox's control channel while ktape
# capture and ktape restore run: a broker down and up, every partition's
# leader moved, retriable request errors (NOT_LEADER_FOR_PARTITION,
# REQUEST_TIMED_OUT, LEADER_NOT_AVAILABLE...), added round-trip time, and
# all of them at once.  Each capture must still hold every record exactly
# once (ktape cat of the whole chain against kcat), and each restore must
# land every record exactly once at its source offset (kcat against kcat).
# Errors that are not retriable (TOPIC_AUTHORIZATION_FAILED) must fail the
# run clearly, naming the topic, with no snapshot committed.
#
# Every fault is tried even after one is not survived; the test fails at
# the end listing those.  The last line counts what was survived.
#
# CI runs each fault once, in a fixed order.  By hand, more rounds follow
# in which a seeded random fault lands at a seeded random moment:
#     KTAPE=build/ktape tests/integration/test_chaos_broker.sh --rounds 20 --seed 3
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

ROUNDS=1
SEED=1
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--seed) SEED=${2:?}; shift 2 ;;
	*) fail "unknown argument '$1' (--rounds N, --seed S)" ;;
	esac
done
RANDOM=$SEED

start_sandbox -n 3 --topic f:6
SRC=$BOOTSTRAP
REPO=$T/repo
survived=()
lost=()
missed=0
rtt_all() {
	local b
	for b in 1 2 3; do sandbox_ctl broker rtt "$b" "$1" >/dev/null || fail "cannot set rtt"; done
}
ctl() { sandbox_ctl "$@" >/dev/null || fail "sandbox control refused: $*"; }

# ---- the faults ------------------------------------------------------------------
# Each runs while a capture or restore is under way, against the sandbox
# SANDBOX_CTL names; API is Fetch for a capture, Produce for a restore.
fault_broker_down() {
	ctl broker down 2
	sleep 1.5
	ctl broker up 2
}
fault_leaders_move() {
	local p
	for p in 0 1 2 3 4 5; do ctl leader "$TOPIC" "$p" $(((p + 1) % 3 + 1)); done
	sleep 0.4
	for p in 0 1 2 3 4 5; do ctl leader "$TOPIC" "$p" $(((p + 2) % 3 + 1)); done
}
fault_not_leader() {
	ctl errors "$API" NOT_LEADER_FOR_PARTITION NOT_LEADER_FOR_PARTITION NOT_LEADER_FOR_PARTITION \
		NOT_LEADER_FOR_PARTITION NOT_LEADER_FOR_PARTITION NOT_LEADER_FOR_PARTITION
}
fault_timeouts() {
	ctl errors "$API" REQUEST_TIMED_OUT REQUEST_TIMED_OUT REQUEST_TIMED_OUT LEADER_NOT_AVAILABLE \
		NOT_ENOUGH_REPLICAS
	ctl errors Metadata LEADER_NOT_AVAILABLE
}
fault_rtt() {
	ctl broker rtt 1 400
	sleep 1
	ctl broker rtt 1 "$BASE_RTT"
}
fault_all() {
	ctl errors "$API" NOT_LEADER_FOR_PARTITION REQUEST_TIMED_OUT
	ctl leader "$TOPIC" 0 3
	ctl broker rtt 3 300
	ctl broker down 1
	sleep 1
	ctl broker up 1
	ctl leader "$TOPIC" 1 1
	ctl errors "$API" REQUEST_TIMED_OUT NOT_LEADER_FOR_PARTITION
	ctl broker rtt 3 "$BASE_RTT"
}
FAULTS=(broker_down leaders_move not_leader timeouts rtt all)
# The schedule: every fault once, then ROUNDS-1 random "FAULT DELAY_MS".
SCHEDULE=()
for fault in "${FAULTS[@]}"; do SCHEDULE+=("$fault 0"); done
for ((r = 1; r < ROUNDS; r++)); do
	SCHEDULE+=("${FAULTS[RANDOM % ${#FAULTS[@]}]} $((RANDOM % 600 + 1))")
done
ms_sleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# After MS milliseconds applies $fault while the run PID (WHAT names it)
# goes on, then waits for the run and sets $rc.
apply_fault() { # WHAT PID MS
	ms_sleep "$3"
	"fault_$fault"
	# A run that ended before the fault was over did not meet all of it:
	# an error in the fixed rounds, a miss (counted) in the random ones.
	hit=1
	if ! _kt_alive "$2"; then
		[ "$delay" -gt 0 ] || fail "the $1 ended before fault $fault was over: make it last longer"
		hit=0
	fi
	rc=0
	wait "$2" || rc=$?
	rm -f "$T/cmp.out"
	ctl clear errors "$API"
	ctl clear errors Metadata
}
# Survived when the run exited 0 and CHECK... (a dump comparison) passes.
judge() { # NAME ERRFILE CHECK...
	local name=$1 err=$2
	shift 2
	if [ "$rc" -eq 0 ] && "$@"; then
		if [ "$hit" -eq 0 ]; then
			missed=$((missed + 1))
			note "$name ended before $fault was over: not counted"
			return
		fi
		survived+=("$name/$fault")
		pass "$name survived $fault"
	else
		lost+=("$name/$fault: exit $rc; $(tail -n 3 "$err" | tr '\n' ' ') $(cat "$T/cmp.out" 2>/dev/null)")
		echo "NOT SURVIVED: $name/$fault (exit $rc): $(tail -n 3 "$err") $(cat "$T/cmp.out" 2>/dev/null)" >&2
	fi
}

# ---- capture ---------------------------------------------------------------------
# Records in many small batches, and a round-trip delay: a capture of one
# chunk (5,000 records) lasts about 2.8 s after its first fetch (at 25 ms
# it lasted 1.4 s once capture got faster, and a partition could be done
# before the outage began), so the longest fault (1.7 s with its start)
# lands inside every partition's fetching: a partition whose broker is
# down waits for it.
BASE_RTT=50
round=0
produce_chunk() {
	round=$((round + 1))
	rtt_all 0
	"$KTAPE" gen -b "$SRC" -t f -n 5000 --seed $((500 + round)) --keys 200 --headers 2 \
		--tombstones 5% --size 20-200 -X batch.num.messages=20 -X linger.ms=0 >"$T/gen.out" 2>&1 ||
		fail "ktape gen failed: $(cat "$T/gen.out")"
	rtt_all "$BASE_RTT"
}
restored_as_source() { # the target topic $TOPIC holds exactly the source's records
	dumpcmp -q --rename "$TOPIC=f" "$T/src.dump" "$T/dst.dump" >"$T/cmp.out"
}
same_as_kafka() { # REPO: ktape cat of the whole chain equals kcat's dump
	kcat_dump f >"$T/f.kcat"
	"$KTAPE" cat -r "$1" -t f >"$T/f.cat" 2>"$T/cat.err" || return 1
	dumpcmp -q "$T/f.kcat" "$T/f.cat" >"$T/cmp.out"
}

API=Fetch TOPIC=f
for entry in "${SCHEDULE[@]}"; do
	read -r fault delay <<<"$entry"
	produce_chunk
	(exec "$KTAPE" -v capture -b "$SRC" -r "$REPO" -t f --no-progress --admin-timeout 200ms \
		--timeout 20s) >"$T/cap.out" 2>"$T/cap.err" &
	pid=$!
	wait_until 20 grep -q 'started at offset' "$T/cap.err"
	apply_fault capture "$pid" $((200 + delay))
	judge capture "$T/cap.err" same_as_kafka "$REPO"
done
"$KTAPE" verify -r "$REPO" --all >"$T/verify.out" 2>&1 || lost+=("capture: verify --all: $(tail -n 3 "$T/verify.out")")

# A refusal Kafka does not retry fails the capture naming the topic, and
# commits no complete snapshot (a partial one, which the next run
# continues, is allowed).  The error should also say why; when it does not,
# that is finding 9.7 of docs/RELIABILITY.md, reported here without failing.
produce_chunk
before=$(ls "$REPO/snapshots" | wc -l)
ctl errors Fetch TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED \
	TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED
rc=0
"$KTAPE" capture -b "$SRC" -r "$REPO" -t f --no-progress --admin-timeout 200ms --timeout 5s \
	>"$T/auth.out" 2>"$T/auth.err" || rc=$?
ctl clear errors Fetch
complete_new=$(ls "$REPO/snapshots" | tail -n +$((before + 1)) | while read -r m; do
	jq -r 'select(.kind != "partial") | .id' "$REPO/snapshots/$m"
done)
if [ "$rc" -eq 1 ] && grep -q '\bf \[' "$T/auth.err" && [ -z "$complete_new" ]; then
	survived+=("capture/authorization-refused")
	pass "a Fetch refused for authorization fails the capture (exit 1) naming the topic, with no complete snapshot: $(tail -n 1 "$T/auth.err" | cut -c 1-160)"
	grep -qi 'authoriz' "$T/auth.err" ||
		note "FINDING 9.7: the failed capture does not say that authorization was refused"
else
	lost+=("capture/authorization-refused: exit $rc, complete snapshots added: ${complete_new:-none}: $(tail -n 3 "$T/auth.err" | tr '\n' ' ')")
	echo "NOT SURVIVED: capture/authorization-refused (exit $rc): $(cat "$T/auth.err")" >&2
fi
# The chain is still whole after the refused run, and a clean capture
# takes the chunk the refused one could not.
rtt_all 0
"$KTAPE" capture -b "$SRC" -r "$REPO" -t f --no-progress --admin-timeout 200ms >/dev/null 2>"$T/cap.err" ||
	fail "capture after the faults failed: $(cat "$T/cap.err")"
same_as_kafka "$REPO" || fail "the chain differs from Kafka after the faults: $(cat "$T/cmp.out")"
kcat_dump f >"$T/src.dump"
total=$(wc -l <"$T/src.dump")
pass "after every fault the chain of $(ls "$REPO/snapshots" | wc -l) snapshots holds each of the $total records exactly once"

# ---- restore ---------------------------------------------------------------------
start_sandbox -n 3 --topic f:6
DST=$BOOTSTRAP
API=Produce BASE_RTT=0
# Rate-limited so that a restore of the chain lasts 3 s (4 s when random
# delays push faults later); zstd
# batches keep the sandbox's memory small over many rounds.
rate=$((ROUNDS > 1 ? total / 4 : total / 3))
n=0
for entry in "${SCHEDULE[@]}"; do
	read -r fault delay <<<"$entry"
	TOPIC=r_$((++n))_$fault
	ctl topic create "$TOPIC:6"
	(exec "$KTAPE" restore -b "$DST" -r "$REPO" --map "f=$TOPIC" --no-progress --max-rate "$rate" -X compression.type=zstd \
		--timeout 20s) >"$T/res.out" 2>"$T/res.err" &
	pid=$!
	apply_fault restore "$pid" $((600 + delay))
	kcat_dump "$TOPIC" >"$T/dst.dump"
	judge restore "$T/res.err" restored_as_source
done

# Produce refused for authorization: the restore stops naming the target
# partition, and a rerun once the refusal is gone completes exactly once.
TOPIC=r_auth
ctl topic create "$TOPIC:6"
ctl errors Produce TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED \
	TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED
rc=0
"$KTAPE" restore -b "$DST" -r "$REPO" --map "f=$TOPIC" --no-progress --timeout 5s >"$T/auth.out" 2>"$T/auth.err" || rc=$?
ctl clear errors Produce
rc2=0
"$KTAPE" restore -b "$DST" -r "$REPO" --map "f=$TOPIC" --no-progress >"$T/auth2.out" 2>"$T/auth2.err" || rc2=$?
kcat_dump "$TOPIC" >"$T/dst.dump"
if [ "$rc" -eq 1 ] && grep -q "$TOPIC\[" "$T/auth.err" && [ "$rc2" -eq 0 ] &&
	dumpcmp -q --rename "$TOPIC=f" "$T/src.dump" "$T/dst.dump" >"$T/cmp.out"; then
	survived+=("restore/authorization-refused")
	pass "a Produce refused for authorization stops the restore (exit 1) naming where; the rerun lands each record exactly once"
else
	lost+=("restore/authorization-refused: exit $rc then $rc2: $(tail -n 2 "$T/auth.err" | tr '\n' ' ') $(tail -n 2 "$T/auth2.err" | tr '\n' ' ') $(cat "$T/cmp.out" 2>/dev/null)")
	echo "NOT SURVIVED: restore/authorization-refused (exit $rc, rerun $rc2): $(cat "$T/auth.err" "$T/auth2.err")" >&2
fi

note "faults survived: ${#survived[@]} of $((${#survived[@]} + ${#lost[@]})) (seed $SEED, $ROUNDS round(s); $missed random fault(s) not counted: the run had ended before the fault was over): $(printf '%s\n' "${survived[@]}" | sort | uniq -c | awk '{ printf "%s%s x%d", sep, $2, $1; sep = ", " }')"
if [ "${#lost[@]}" -gt 0 ]; then
	printf 'NOT SURVIVED: %s\n' "${lost[@]}" >&2
	fail "${#lost[@]} fault(s) not survived"
fi
