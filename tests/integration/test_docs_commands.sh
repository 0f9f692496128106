#!/usr/bin/env bash
# Runs the commands of the operations docs against the sandbox, taken from
# the docs themselves so that docs and test cannot drift:
#   docs/runbook-backup.md, docs/disaster-recovery.md, docs/replay-into-test.md
#
# Fenced blocks, by their info string:
#   ```sh               commands: each doc's blocks run in order as one bash
#                       script (set -euo pipefail) that must exit 0
#   ```LANG file=PATH   a file the doc installs: written to $ROOT/PATH
#                       (`sh` ones executable); systemd units are checked
#                       with systemd-analyze verify, the cron line's command
#                       and the service's ExecStart are run, the Prometheus
#                       rules' metrics are looked up in a real metrics file
#   ```sh norun         needs root on a real host, systemd as PID 1 or a cron
#                       daemon: listed, not run
#   any other fence     output shown as an example: ignored
# Before running, absolute paths under /etc/, /var/ and /usr/local/ are moved
# under $ROOT, and `NAME=value` lines (with or without `export`) of the
# variables this test sets (broker lists, the alert command) take the
# test's value.  `ktape` is the binary under test.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq awk

DOCS=$KT_SOURCE_ROOT/docs
ROOT=$T/root
mkdir -p "$T/bin" "$T/work" "$ROOT"/var/{backups,log,tmp,lib/node_exporter/textfile}
ln -s "$KTAPE" "$T/bin/ktape"
export PATH="$T/bin:$PATH"
declare -A OVR=()

# Splits DOC into $T/blocks/DOC/N files and prints "N LANG FILE NORUN" per
# block (FILE "-" when none).
extract() {
	local doc=$1 dir
	dir=$T/blocks/$(basename "$1" .md)
	mkdir -p "$dir"
	awk -v dir="$dir" '
		/^[ \t]*```/ {
			if (!inb) {
				inb = 1; n++; lang = ""; file = "-"; norun = 0
				info = $0
				sub(/^[ \t]*```[ \t]*/, "", info)
				k = split(info, w, /[ \t]+/)
				lang = w[1]
				for (i = 2; i <= k; i++) {
					if (w[i] ~ /^file=/) file = substr(w[i], 6)
					else if (w[i] == "norun") norun = 1
				}
				out = dir "/" n
				printf "" > out
				print n, (lang == "" ? "-" : lang), file, norun
			} else {
				inb = 0; close(out)
			}
			next
		}
		inb { print >> out }
		END { if (inb) { print "unterminated fence in " FILENAME > "/dev/stderr"; exit 1 } }
	' "$doc" || fail "$doc has an unterminated code fence"
}
rewrite() {
	local name args=(-E -e "s#(^|[ =\"':>(])/(etc|var|usr/local)/#\\1$ROOT/\\2/#g")
	for name in "${!OVR[@]}"; do
		args+=(-e "s|^([[:space:]]*)(export )?$name=.*|\\1\\2$name='${OVR[$name]}'|")
	done
	sed "${args[@]}"
}
# Installs DOC's files and writes its commands to $T/DOC.sh.
prepare() {
	local doc=$DOCS/$1 name n lang file norun dir
	name=$(basename "$1" .md)
	[ -f "$doc" ] || fail "$doc is missing"
	dir=$T/blocks/$name
	: >"$T/$name.sh"
	runs=0 files=0
	while read -r n lang file norun; do
		if [ "$file" != - ]; then
			mkdir -p "$(dirname "$ROOT$file")"
			rewrite <"$dir/$n" >"$ROOT$file"
			[ "$lang" != sh ] || chmod 755 "$ROOT$file"
			files=$((files + 1))
		elif [ "$lang" = sh ] && [ "$norun" = 1 ]; then
			note "$1: not run (needs a real host): $(grep -v '^#' "$dir/$n" | tr '\n' ';' | sed 's/;$//')"
		elif [ "$lang" = sh ]; then
			{ echo "# --- $1, block $n"; rewrite <"$dir/$n"; } >>"$T/$name.sh"
			runs=$((runs + $(grep -cv '^[[:space:]]*\(#\|$\)' "$dir/$n")))
		fi
	done < <(extract "$doc")
	[ "$runs" -gt 0 ] || fail "$1 has no sh block to run"
}
# Runs $T/DOC.sh in its own process group (a doc may start a sandbox in the
# background), then ends whatever of that group is left.
run_doc() {
	local name pid rc=0
	name=$(basename "$1" .md)
	(cd "$T/work" && exec setsid bash -euo pipefail "$T/$name.sh") >"$T/$name.out" 2>"$T/$name.err" &
	pid=$!
	wait "$pid" || rc=$?
	kill -TERM -- "-$pid" 2>/dev/null || true
	[ "$rc" -eq 0 ] || fail "the commands of $1 failed (exit $rc): $(tail -n 15 "$T/$name.err")"
	pass "$1: $runs command lines and $files files ran against the sandbox"
}
alerts() { cat "$T/alerts.log" 2>/dev/null || true; }
metric() { # NAME: its value in the capture metrics file
	awk -v n="$1" '$1 ~ "^"n"[{ ]" || $1 == n { print $2; exit }' "$ROOT/var/lib/node_exporter/textfile/ktape_capture.prom"
}

# ---- docs/runbook-backup.md: the nightly backup ----------------------------------
start_fixture_a
SRC=$BOOTSTRAP
SRC_CTL=$SANDBOX_CTL
printf '#!/bin/sh\necho "$*" >>%q\n' "$T/alerts.log" >"$T/bin/alert"
chmod 755 "$T/bin/alert"
# The sandbox speaks plaintext (the doc's properties file is SASL_SSL), and
# answers no DescribeConfigs: a short admin timeout spares 5 s per run.
OVR=([KTAPE_BROKERS]=$SRC [KTAPE_KAFKA_CONFIG]= [KTAPE_ALERT]="$T/bin/alert"
	[KTAPE_CAPTURE_FLAGS]="--admin-timeout 200ms --timeout 5s")
prepare runbook-backup.md
run_doc runbook-backup.md
REPO=$ROOT/var/backups/kafka
[ "$(metric ktape_capture_success)" = 1 ] || fail "the metrics file does not say success: $(grep -v '^#' "$ROOT/var/lib/node_exporter/textfile/ktape_capture.prom")"
[ -z "$(alerts)" ] || fail "a good run raised an alert: $(alerts)"
for t in audit_events outbox_events somabrain_events; do
	kcat_dump "$t" >"$T/$t.src"
	ktape cat -r "$REPO" -t "$t" >"$T/$t.cat" || fail "ktape cat -t $t failed"
	expect_same "$T/$t.src" "$T/$t.cat"
done
[ "$(jq '.groups | length' "$(ls "$REPO"/snapshots/*.json | tail -n 1)")" -eq 4 ] ||
	fail "the nightly capture did not record the 4 group offsets"
pass "the nightly script backed up the three topics and their groups; metrics say success; no alert"

# The schedulers' commands: the service's ExecStart and the cron line.
unit=$ROOT/etc/systemd/system/ktape-backup.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
[ -n "$exec_start" ] || fail "no ExecStart in the service"
sh -c "$exec_start" >"$T/exec.out" 2>&1 || fail "the service's ExecStart failed: $(cat "$T/exec.out")"
cronline=$(grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/etc/cron.d/ktape-backup")
[ "$(echo "$cronline" | wc -l)" -eq 1 ] || fail "expected one cron line: $cronline"
croncmd=$(echo "$cronline" | awk '{ $1 = $2 = $3 = $4 = $5 = $6 = ""; sub(/^ +/, ""); print }')
sh -c "$croncmd" || fail "the cron command failed: $(tail -n 5 "$ROOT/var/log/ktape-backup.log")"
[ -s "$ROOT/var/log/ktape-backup.log" ] || fail "the cron line wrote no log"
pass "the service's ExecStart and the cron line's command each ran a backup"
if command -v systemd-analyze >/dev/null 2>&1; then
	# Units are checked with their real names, in a directory of their own;
	# the executable they name is the installed script (under $ROOT).
	systemd-analyze verify "$ROOT"/etc/systemd/system/ktape-backup.{service,timer} >"$T/analyze.out" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$T/analyze.out")"
	[ ! -s "$T/analyze.out" ] || note "systemd-analyze verify said: $(cat "$T/analyze.out")"
	pass "systemd-analyze verify accepts ktape-backup.service and ktape-backup.timer"
else
	note "SKIP: systemd-analyze is not installed; the unit files were not verified"
fi

# ---- docs/disaster-recovery.md: topics, then groups, then diff -------------------
# The new cluster: the sandbox has no CreateTopics, so it starts with the
# snapshot's topics (a real cluster gets them from ktape restore).
start_sandbox --from-snapshot "$REPO"
DR=$BOOTSTRAP
OVR=([DR_BROKERS]=$DR)
prepare disaster-recovery.md
run_doc disaster-recovery.md
for t in audit_events outbox_events somabrain_events; do
	BOOTSTRAP=$DR kcat_dump "$t" >"$T/$t.dr"
	expect_same "$T/$t.src" "$T/$t.dr"
done
# The doc prints the group table of its restore as JSON lines.
fixture_a_commits | while read -r group topic partition offset; do
	grep -q "^{\"group\":\"$group\",\"topic\":\"$topic\",\"partition\":$partition,\"target_offset\":$offset,\"committed\":true}" \
		"$T/disaster-recovery.out" || fail "group $group $topic[$partition] was not set to $offset: $(grep '"group"' "$T/disaster-recovery.out")"
done
pass "the new cluster holds every record exactly once and each group resumes where it stood"

# ---- docs/replay-into-test.md ----------------------------------------------------
OVR=()
prepare replay-into-test.md
run_doc replay-into-test.md
grep -q 'audit_events in the test cluster: [1-9]' "$T/replay-into-test.out" ||
	fail "the replay doc's count is missing: $(cat "$T/replay-into-test.out")"

# ---- the runbook's alerts: a failed run, then records lost to retention ----------
BOOTSTRAP=$SRC
SANDBOX_CTL=$SRC_CTL
last_ok=$(metric ktape_capture_last_success_timestamp_seconds)
"$KTAPE" gen -b "$SRC" -t outbox_events -n 50 --seed 77 >/dev/null || fail "gen failed"
errs=()
for _ in $(seq 12); do errs+=(TOPIC_AUTHORIZATION_FAILED); done
sandbox_ctl errors Fetch "${errs[@]}" >/dev/null || fail "cannot inject errors"
rc=0
"$ROOT/usr/local/bin/ktape-nightly-backup" >"$T/fail.out" 2>&1 || rc=$?
sandbox_ctl clear errors Fetch >/dev/null
[ "$rc" -eq 1 ] || fail "a failed capture: the script exited $rc: $(cat "$T/fail.out")"
alerts | grep -q 'ktape capture failed with exit 1' || fail "no alert for the failed run: $(alerts)"
[ "$(metric ktape_capture_success)" = 0 ] || fail "the metrics file does not say the run failed"
[ "$(metric ktape_capture_last_success_timestamp_seconds)" = "$last_ok" ] || fail "a failed run moved last_success"
pass "a failed capture: exit 1, an alert, ktape_capture_success 0 and last_success unchanged"

# About 6 MB into one partition: the sandbox's 5 MiB retention deletes
# records the last backup had not reached.
: >"$T/alerts.log"
"$KTAPE" gen -b "$SRC" -t audit_events -p 0 -n 3000 --size 2000 --compressibility 0 --seed 78 >/dev/null ||
	fail "gen failed"
rc=0
"$ROOT/usr/local/bin/ktape-nightly-backup" >"$T/gap.out" 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "a capture with gaps: the script exited $rc: $(cat "$T/gap.out")"
alerts | grep -q 'deleted by retention' || fail "no alert for the gap: $(alerts)"
[ "$(metric ktape_capture_gap_offsets_total)" -gt 0 ] || fail "the metrics file shows no gap"
pass "records lost to retention: exit 4, an alert, ktape_capture_gap_offsets_total $(metric ktape_capture_gap_offsets_total)"

# Every metric the Prometheus rules name is one a run writes.
rules=$ROOT/etc/prometheus/rules/ktape.yml
[ -s "$rules" ] || fail "the runbook's Prometheus rules were not installed"
for m in $(grep -o 'ktape_[a-z_]*' "$rules" | sort -u); do
	grep -q "^$m[{ ]" "$ROOT/var/lib/node_exporter/textfile/ktape_capture.prom" ||
		fail "the alert rules name $m, which ktape capture --stats-file does not write"
done
pass "every metric the alert rules name is in the metrics file"
