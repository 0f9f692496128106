#!/usr/bin/env bash
# test_security - what a backup must not give away or let in:
#   1. repository files are created owner-only (0600 files, 0700
#      directories) even under a permissive umask, and so are export
#      archives, imported repositories and restore state;
#   2. secrets given with -X or in an -F file (passwords, key passwords,
#      SASL user names) appear nowhere: not in the repository, not in
#      stdout, stderr at debug verbosity, --json output or --stats-file, for
#      capture, restore, replay and diff;
#   3. topic names (even ".hidden" and "...") stay inside segments/, and an
#      archive whose entries climb out (../, absolute paths, symlinks, hard
#      links) is refused with nothing written outside and nothing published;
#   4. the repository lock keeps a second writer out while the first runs,
#      naming the holder's pid, and a lock file left by a dead process does
#      not block the next capture.
. "$(dirname "$0")/lib.sh"

require_cmd tar
umask 022

SECRETS=(Sup3rS3cr3tPassw0rd K3yPassw0rdS3cr3t Us3rN4meS3cr3t T0k3nS3cr3tValue)
start_sandbox -n 1 --topic orders:2 --topic ...:1 --topic .hidden:1
for t in orders ... .hidden; do
	"$KTAPE" -q gen -b "$BOOTSTRAP" -t "$t" -n 300 --headers 2 >/dev/null
done

# The -F file: comments, blanks and secrets by name.
cat > "$T/client.conf" <<'EOF'
# client settings of the backup job
ssl.key.password=K3yPassw0rdS3cr3t

sasl.username=Us3rN4meS3cr3t
EOF

# Fails when any secret appears in the given files or directories.
expect_no_secret() {
	local what=$1 s
	shift
	for s in "${SECRETS[@]}"; do
		if grep -rqaF -- "$s" "$@"; then
			fail "$what: the secret $s leaked into $(grep -rlaF -- "$s" "$@" | head -n 3 | tr '\n' ' ')"
		fi
	done
	pass "$what: no secret in $*"
}

# Fails when a file or directory under $1 has any group or other bit.
expect_owner_only() {
	local loose
	loose=$(find "$@" -perm /077 -printf '%m %p\n' | head -n 5)
	[ -z "$loose" ] || fail "not owner-only under umask 022: $loose"
	pass "owner-only: every file and directory of $* ($(find "$@" | wc -l) entries)"
}

# ---- 1 and 2: capture ---------------------------------------------------
R=$T/repo
"$KTAPE" -v -v capture -b "$BOOTSTRAP" -r "$R" -t orders -t ... -t .hidden \
	-X sasl.password=Sup3rS3cr3tPassw0rd -X sasl.oauthbearer.config=token=T0k3nS3cr3tValue \
	-F "$T/client.conf" --admin-timeout 1s --no-progress \
	--json --stats-file "$T/capture.prom" >"$T/capture.json" 2>"$T/capture.err" ||
	fail "capture with secret settings failed: $(tail -n 3 "$T/capture.err")"
jq -e . "$T/capture.json" >/dev/null || fail "capture --json is not JSON"
[ -s "$T/capture.prom" ] || fail "capture wrote no stats file"
grep -q 'debug' "$T/capture.err" || fail "capture -v -v logged no debug lines to check"
expect_no_secret "capture" "$R" "$T/capture.json" "$T/capture.err" "$T/capture.prom"
expect_owner_only "$R"

# --mode widens a new repository on purpose, and only as far as asked.
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$T/wide" -t orders --admin-timeout 1s --no-progress \
	--mode 0640 >/dev/null 2>"$T/wide.err" || fail "capture --mode 0640 failed: $(cat "$T/wide.err")"
[ -z "$(find "$T/wide" -type f ! -perm 0640 -printf '%m %p\n' | head -n 3)" ] ||
	fail "capture --mode 0640 made files of other modes"
[ -z "$(find "$T/wide" -type d ! -perm 0750 -printf '%m %p\n' | head -n 3)" ] ||
	fail "capture --mode 0640 made directories other than 0750"
expect_status 2 "$KTAPE" capture -b "$BOOTSTRAP" -r "$T/bad" -t orders --mode 0044
pass "--mode 0640 gives 0640 files and 0750 directories; a mode without the owner's rw is refused"

# ---- 3: topic names stay inside segments/ ------------------------------
for d in "$R"/segments/*; do
	case $(basename "$d") in
	orders | %2E.. | %2Ehidden) ;;
	*) fail "unexpected topic directory $d" ;;
	esac
done
[ -z "$(find "$R" -mindepth 1 -maxdepth 1 -name '.*')" ] || fail "a hidden entry at the repository root"
[ "$(find "$T" -mindepth 1 -maxdepth 1 -name '.*' | wc -l)" -eq 0 ] || fail "something was written beside the repository"
pass "topics '...' and '.hidden' live in segments/%2E.. and segments/%2Ehidden"

# ---- 2: restore, replay and diff with the same secrets ------------------
sandbox_ctl topic create copy:2 >/dev/null
"$KTAPE" -v -v restore -b "$BOOTSTRAP" -r "$R" -t orders --map orders=copy \
	-X sasl.password=Sup3rS3cr3tPassw0rd -F "$T/client.conf" --timeout 10s --no-progress \
	--json --stats-file "$T/restore.prom" >"$T/restore.json" 2>"$T/restore.err" ||
	fail "restore with secret settings failed: $(tail -n 3 "$T/restore.err")"
sandbox_ctl topic create replayed:2 >/dev/null
"$KTAPE" -v -v replay -b "$BOOTSTRAP" -r "$R" -t orders --map orders=replayed --pace none \
	-X sasl.password=Sup3rS3cr3tPassw0rd -F "$T/client.conf" --timeout 10s --no-progress \
	--json --stats-file "$T/replay.prom" >"$T/replay.json" 2>"$T/replay.err" ||
	fail "replay with secret settings failed: $(tail -n 3 "$T/replay.err")"
rc=0
"$KTAPE" -v -v diff -b "$BOOTSTRAP" -r "$R" -t orders \
	-X sasl.password=Sup3rS3cr3tPassw0rd -F "$T/client.conf" --timeout 10s \
	--json >"$T/diff.json" 2>"$T/diff.err" || rc=$?
[ "$rc" -eq 0 ] || fail "diff of an unchanged topic exited $rc: $(tail -n 3 "$T/diff.err")"
expect_no_secret "restore, replay, diff" "$R" "$T"/restore.* "$T"/replay.* "$T"/diff.*
[ -d "$R/restores" ] || fail "restore kept no state in $R/restores"
expect_owner_only "$R"

# Mistyped secret settings are refused without quoting them: a ':' or a
# blank where '=' belongs, on the command line and in an -F file, and a
# file whose secrets are fine but whose later line librdkafka refuses.
printf 'ssl.key.password K3yPassw0rdS3cr3t\n' > "$T/typo.conf"
printf 'ssl.key.password=K3yPassw0rdS3cr3t\nsasl.username=Us3rN4meS3cr3t\nenable.ssl.certificate.verification=maybe\n' \
	> "$T/refused.conf"
for args in "-X ssl.key.password:Sup3rS3cr3tPassw0rd" "-X sasl.password" "-F $T/typo.conf" \
	"-F $T/refused.conf"; do
	rc=0
	# shellcheck disable=SC2086
	"$KTAPE" -v -v capture -b "$BOOTSTRAP" -r "$T/refused" -t orders $args \
		>>"$T/refused.out" 2>>"$T/refused.err" || rc=$?
	[ "$rc" -eq 2 ] || fail "capture $args exited $rc, not 2: $(tail -n 2 "$T/refused.err")"
done
expect_no_secret "refused settings" "$T/refused.out" "$T/refused.err"
[ ! -e "$T/refused/snapshots" ] || [ -z "$(ls -A "$T/refused/snapshots")" ] ||
	fail "a capture with refused settings published a snapshot"

# ---- 1: export, import ---------------------------------------------------
"$KTAPE" -q export -r "$R" -o "$T/snap.tar" 2>/dev/null
expect_owner_only "$T/snap.tar"
"$KTAPE" -q import "$T/snap.tar" -r "$T/imported" 2>/dev/null
expect_owner_only "$T/imported"

# ---- 3: hostile archives -------------------------------------------------
id=$(basename "$(ls "$R"/snapshots/*.json | head -n 1)" .json)
hostile() { # NAME, then tar arguments that add the hostile entry
	local name=$1 stage=$T/stage-$1
	shift
	mkdir -p "$stage"
	printf '{"format":"ktape-archive","version":1,"snapshot":"%s","repository_id":"x","created_ms":0}\n' \
		"$id" > "$stage/ktape-archive.json"
	(cd "$stage" && tar -P --format=pax -cf "$T/$name.tar" ktape-archive.json "$@")
}
mkdir -p "$T/outside"
for name in dotdot absolute symlink hardlink; do
	stage=$T/stage-$name
	mkdir -p "$stage"
	case $name in
	dotdot | absolute) echo "evil bytes" > "$stage/evil" ;;
	symlink)
		mkdir -p "$stage/segments/orders/0"
		ln -sf "$T/outside/target" "$stage/segments/orders/0/00000000000000000000-0000000000000001.kts" ;;
	hardlink)
		mkdir -p "$stage/segments/orders/0"
		echo "x" > "$stage/segments/orders/0/00000000000000000000-0000000000000002.kts"
		ln -f "$stage/segments/orders/0/00000000000000000000-0000000000000002.kts" \
			"$stage/segments/orders/0/00000000000000000000-0000000000000003.kts" ;;
	esac
done
hostile dotdot --transform "s|^evil|segments/../../outside/evil|" evil
hostile absolute --transform "s|^evil|$T/outside/abs|" evil
hostile symlink segments/orders/0/00000000000000000000-0000000000000001.kts
hostile hardlink segments/orders/0/00000000000000000000-0000000000000002.kts \
	segments/orders/0/00000000000000000000-0000000000000003.kts
tar -tvf "$T/dotdot.tar" 2>/dev/null | grep -qF 'segments/../../outside/evil' || fail "tar did not keep the ../ entry"
tar -tvf "$T/absolute.tar" 2>/dev/null | grep -qF "$T/outside/abs" || fail "tar did not keep the absolute entry"
for name in dotdot absolute symlink hardlink; do
	rc=0
	"$KTAPE" import "$T/$name.tar" -r "$T/victim" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
	[ "$rc" -eq 3 ] || fail "importing the $name archive exited $rc, not 3: $(cat "$T/$name.err")"
	grep -qF "refusing entry" "$T/$name.err" || fail "the $name archive's refusal does not name the entry: $(cat "$T/$name.err")"
	[ -z "$(ls -A "$T/outside")" ] || fail "the $name archive wrote outside the repository: $(ls "$T/outside")"
	[ -z "$(ls -A "$T/victim/snapshots" 2>/dev/null)" ] || fail "the refused $name archive published a snapshot"
	# Entries before the refused one may stay as unreferenced segments
	# (format/archive.md 3; prune removes them), but never as a link.
	[ -z "$(find "$T/victim" -type l -o -type f -links +1)" ] ||
		fail "the refused $name archive left a link in the repository"
	pass "import refuses the $name archive: $(head -n 1 "$T/$name.err")"
done

# ---- 4: the writer lock --------------------------------------------------
L=$T/locked
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$L" -t orders --follow --interval 1s --admin-timeout 1s \
	--no-progress >/dev/null 2>"$T/follow.err" &
follow_pid=$!
wait_until 20 test -s "$L/lock"
wait_until 20 bash -c "ls '$L'/snapshots/*.json >/dev/null 2>&1"
for cmd in "capture -b $BOOTSTRAP -r $L -t orders --admin-timeout 1s" "prune -r $L --keep-last 1" \
	"import $T/snap.tar -r $L"; do
	rc=0
	# shellcheck disable=SC2086
	"$KTAPE" $cmd >/dev/null 2>"$T/second.err" || rc=$?
	[ "$rc" -ne 0 ] || fail "ktape ${cmd%% *} ran while a capture held the lock"
	grep -qF "locked by pid $follow_pid" "$T/second.err" ||
		fail "ktape ${cmd%% *} does not name the holder (pid $follow_pid): $(cat "$T/second.err")"
	pass "ktape ${cmd%% *} refused while pid $follow_pid writes: $(head -n 1 "$T/second.err")"
done
kill -TERM "$follow_pid"
rc=0
wait "$follow_pid" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || fail "the --follow capture ended with $rc: $(tail -n 3 "$T/follow.err")"

# A lock file naming a process that is gone (no flock held) is taken over.
echo "999999 elsewhere" > "$L/lock"
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$L" -t orders --admin-timeout 1s --no-progress ||
	fail "a stale lock file blocked the next capture"
pass "a stale lock file is taken over"
"$KTAPE" -q verify -r "$L" --all || fail "the locked repository does not verify"
pass "every snapshot written around the lock verifies"
