#!/usr/bin/env bash
# test_bad_input - every command refuses bad command-line and configuration
# input clearly: the exit code the README promises (2 usage, 1 failure,
# 3 damaged data), a sentence on stderr naming what is wrong, nothing on
# stdout, no crash and no sanitizer report.
#
# The table below is the whole test: one row per input,
#     ARGS | EXIT | STDERR SUBSTRING
# where ARGS is evaluated by bash after `ktape ` in a scratch directory
# (so it may quote, and use $DEAD, $T and the fixtures made below), EXIT
# is the exit status and the substring must appear in stderr verbatim.
# Every command `ktape --help` lists must have at least one row, so a new
# command arrives with its bad inputs.
#
# Brokers that cannot be reached are 127.0.0.1:1 (nothing listens on port
# 1) with a short --timeout; no sandbox is needed.
. "$(dirname "$0")/lib.sh"

DEAD=127.0.0.1:1
VEC=$KT_SOURCE_ROOT/format/vectors
cd "$T"

# Fixtures: a valid repository, repositories from the future or damaged
# (copies, since commands may take locks in them), and things that are not
# repositories.
for r in valid future-marker wrong-format-marker future-manifest dotdot-manifest versionless-manifest; do
	cp -r "$VEC/repo/$r" "$r"
done
touch afile
mkdir emptydir
printf '# a comment, then a line without =\nthis line has no equals sign\n' > noeq.conf
printf '=value\n' > emptykey.conf
printf 'socket.timeout.ms=soon\n' > badvalue.conf
printf 'ok:1\nbad line\n' > topics.txt
long_topic=$(printf 'x%.0s' $(seq 250))

rows=0
failures=0
declare -A covered=()

while IFS= read -r line; do
	case "$line" in '' | '#'*) continue ;; esac
	args=${line%%|*}
	rest=${line#*|}
	want_rc=${rest%%|*}
	want_err=${rest#*|}
	# Trim the blanks around each field.
	args=$(sed -e 's/^ *//' -e 's/ *$//' <<<"$args")
	want_rc=$(tr -d ' ' <<<"$want_rc")
	want_err=$(sed -e 's/^ *//' -e 's/ *$//' <<<"$want_err")
	rows=$((rows + 1))
	set -f
	eval "set -- $args"
	set +f
	[ $# -gt 0 ] && covered[$1]=1
	rc=0
	timeout 60 "$KTAPE" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	problem=
	if [ "$rc" != "$want_rc" ]; then
		problem="exit $rc, expected $want_rc"
	elif ! grep -qF -- "$want_err" "$T/err"; then
		problem="stderr lacks '$want_err'"
	elif [ "$want_rc" != 0 ] && [ -s "$T/out" ]; then
		problem="wrote to stdout on failure: $(head -c 200 "$T/out")"
	elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$T/err"; then
		problem="sanitizer report"
	fi
	if [ -n "$problem" ]; then
		failures=$((failures + 1))
		echo "not ok: ktape $args: $problem" >&2
		sed 's/^/    stderr: /' "$T/err" | head -n 8 >&2
	else
		pass "ktape $args -> $rc: $want_err"
	fi
done <<'TABLE'
# ---- the dispatcher ------------------------------------------------------
                                                     | 2 | Usage: ktape
bogus                                                | 2 | unknown command 'bogus'
--bogus                                              | 2 | unrecognized option '--bogus'

# ---- capture -------------------------------------------------------------
capture --bogus                                      | 2 | unrecognized option '--bogus'
capture -b $DEAD -t x                                | 2 | no repository given (-r REPO)
capture -b $DEAD -r new -t x -r                      | 2 | option requires an argument -- 'r'
capture -b $DEAD -r new                              | 2 | no topic selected
capture -r new -t x                                  | 2 | no broker given (-b BROKERS)
capture -b '' -r new -t x                            | 2 | no broker given (-b BROKERS)
capture -b $DEAD -r new -t ''                        | 2 | an empty topic pattern is not allowed
capture -b $DEAD -r new -t '^['                      | 2 | invalid topic regex '^['
capture -b $DEAD -r new -t x --groups '('            | 2 | invalid --groups regex '('
capture -b $DEAD -r new -t x --timeout abc           | 2 | --timeout wants a duration such as 30s, not 'abc'
capture -b $DEAD -r new -t x --timeout -5s           | 2 | --timeout wants a duration such as 30s, not '-5s'
capture -b $DEAD -r new -t x --admin-timeout 0       | 2 | --admin-timeout wants a duration such as 30s, not '0'
capture -b $DEAD -r new -t x --follow --interval 1fortnight | 2 | --interval wants a duration such as 30s, not '1fortnight'
capture -b $DEAD -r new -t x --segment-size 12Q      | 2 | --segment-size wants a size such as 64M, not '12Q'
capture -b $DEAD -r new -t x --segment-size=99999999999999999999 | 2 | --segment-size wants a size such as 64M
capture -b $DEAD -r new -t x --segment-size 1        | 2 | segment size 1 is below 64 KiB
capture -b $DEAD -r new -t x --block-size 8G         | 2 | block size 8589934592 is outside 4 KiB..64 MiB
capture -b $DEAD -r new -t x --memory 0              | 2 | --memory wants a size such as 64M, not '0'
capture -b $DEAD -r new -t x --level 99              | 2 | --level wants a zstd level from -7 to 22, not '99'
capture -b $DEAD -r new -t x -l 3x                   | 2 | --level wants a zstd level from -7 to 22, not '3x'
capture -b $DEAD -r new -t x -j 0                    | 2 | --threads wants a number from 1 to 256, not '0'
capture -b $DEAD -r new -t x -j many                 | 2 | --threads wants a number from 1 to 256, not 'many'
capture -b $DEAD -r new -t x -z lz5                  | 2 | --compression wants none or zstd, not 'lz5'
capture -b $DEAD -r new -t x --io-backend foo        | 2 | --io-backend wants auto, uring or pwrite, not 'foo'
capture -b $DEAD -r new -t x -X foo                  | 2 | -X: expected key=value, found no '='
capture -b $DEAD -r new -t x -X =v                   | 2 | -X: expected key=value, the key is empty
capture -b $DEAD -r new -t x -X no.such.prop=1       | 2 | No such configuration property: "no.such.prop"
capture -b $DEAD -r new -t x -X socket.timeout.ms=abc | 2 | Invalid value for configuration property "socket.timeout.ms"
capture -b $DEAD -r new -t x -F /nonexistent.conf    | 1 | /nonexistent.conf: cannot open the configuration file
capture -b $DEAD -r new -t x -F noeq.conf            | 2 | noeq.conf:2: expected key=value, found no '='
capture -b $DEAD -r new -t x -F emptykey.conf        | 2 | emptykey.conf:1: expected key=value, the key is empty
capture -b $DEAD -r new -t x -F badvalue.conf        | 2 | badvalue.conf:1: socket.timeout.ms=soon: Invalid value
capture -b $DEAD -r afile -t x --timeout 2s          | 2 | afile is a snapshot archive: it can be read in place, not written to
capture -b $DEAD -r future-marker -t x --timeout 2s  | 1 | repository format version 2 is newer than this ktape supports (1)
capture -b $DEAD -r wrong-format-marker -t x --timeout 2s | 3 | not a ktape repository marker
capture -b $DEAD -r future-manifest -t x --timeout 2s | 1 | snapshot manifest version 2 is newer than this ktape supports (1)
capture -b $DEAD -r unreachable -t x --timeout 2s    | 1 | cannot read the cluster metadata from 127.0.0.1:1 within 2000 ms

# ---- cat -----------------------------------------------------------------
cat                                                  | 2 | no repository given (-r REPO)
cat -r valid                                         | 2 | no topic given (-t TOPIC)
cat -r valid -t orders extra                         | 2 | unexpected argument 'extra'
cat -r valid -t orders -p abc                        | 2 | --partition wants a partition number, not 'abc'
cat -r valid -t orders -p -1                         | 2 | --partition wants a partition number, not '-1'
cat -r valid -t orders -p 2147483648                 | 2 | --partition wants a partition number, not '2147483648'
cat -r valid -t orders --from-offset x               | 2 | --from-offset wants an offset, not 'x'
cat -r valid -t orders --to-offset 99999999999999999999 | 2 | --to-offset wants an offset
cat -r valid -t orders --from-time yesterday         | 2 | --from-time wants an ISO-8601 time or epoch milliseconds, not 'yesterday'
cat -r valid -t orders --to-time 2026-13-45T00:00:00Z | 2 | --to-time wants an ISO-8601 time or epoch milliseconds
cat -r valid -t orders --from-offset 5 --to-offset 2 | 2 | the window is empty: --to-offset must be above --from-offset
cat -r valid -t orders --from-time 5 --to-time 5     | 2 | the window is empty: --to-time must be above --from-time
cat -r valid -t orders -p 99                         | 1 | topic 'orders' has no partition 99 in snapshot
cat -r valid -t nosuch                               | 1 | topic 'nosuch' is not in snapshot
cat -r valid -t orders -s 20990101T000000000Z-00000000 | 1 | has no snapshot 20990101T000000000Z-00000000
cat -r valid -t orders -s ../ktape-repository        | 2 | '../ktape-repository' is not a snapshot id
cat -r nonexistent -t orders                         | 1 | nonexistent: no such repository
cat -r afile -t orders                               | 3 | afile: not a tar archive: Unrecognized archive format
cat -r emptydir -t orders                            | 1 | is not a ktape repository (it has no ktape-repository.json)
cat -r future-marker -t orders                       | 1 | repository format version 2 is newer than this ktape supports (1)
cat -r dotdot-manifest -t orders                     | 3 | is not a relative path inside the repository

# ---- restore -------------------------------------------------------------
restore                                              | 2 | --repo is required
restore -r valid                                     | 2 | --brokers is required
restore -b $DEAD -r valid --bogus                    | 2 | unrecognized option '--bogus'
restore -b $DEAD -r valid --partitioning foo         | 2 | --partitioning 'foo': expected preserve, key or random
restore -b $DEAD -r valid --max-rate abc             | 2 | --max-rate 'abc': expected a positive number of records per second
restore -b $DEAD -r valid --max-bytes-rate 5Q        | 2 | --max-bytes-rate '5Q': expected a positive byte count per second
restore -b $DEAD -r valid --map foo                  | 2 | --map 'foo': expected SOURCE=TARGET
restore -b $DEAD -r valid --map a=                   | 2 | --map 'a=': expected SOURCE=TARGET
restore -b $DEAD -r valid --from-offset a:b:c:d      | 2 | offset bound has too many ':' fields
restore -b $DEAD -r valid --from-offset 1:-2         | 2 | '-2' is not an offset (a number >= 0)
restore -b $DEAD -r valid --from-offset 5 --to-offset 2 | 2 | --from-offset 5 is not before --to-offset 2
restore -b $DEAD -r valid --from-time nope           | 2 | --from-time 'nope': expected ISO-8601
restore -b $DEAD -r valid --replication-factor 0     | 2 | --replication-factor '0': expected a positive integer
restore -b $DEAD -r valid --timeout 0                | 2 | --timeout '0': expected a positive duration
restore -b $DEAD -r valid -X junk                    | 2 | -X: expected key=value, found no '='
restore -b $DEAD -r valid -F noeq.conf               | 2 | noeq.conf:2: expected key=value, found no '='
restore -b $DEAD -r valid --resume ../../etc         | 2 | --resume '../../etc' is not a restore id
restore -b $DEAD -r valid --resume nosuch --timeout 2s | 1 | restore nosuch not found
restore -b $DEAD -r valid -s nosuch --timeout 2s     | 1 | has no snapshot nosuch
restore -b $DEAD -r valid -t nosuchtopic --timeout 2s | 1 | has no topic nosuchtopic
restore -b $DEAD -r nonexistent --timeout 2s         | 1 | nonexistent: no such repository
restore -b $DEAD -r future-marker --timeout 2s       | 1 | repository format version 2 is newer than this ktape supports (1)
restore -b $DEAD -r dotdot-manifest --timeout 2s     | 3 | is not a relative path inside the repository
restore -b $DEAD -r valid --timeout 2s               | 1 | cannot reach the target brokers 127.0.0.1:1 within 2000 ms

# ---- replay --------------------------------------------------------------
replay                                               | 2 | --repo is required
replay -b $DEAD -r valid --speed 0                   | 2 | --speed '0': expected a positive number
replay -b $DEAD -r valid --speed fast                | 2 | --speed 'fast': expected a positive number
replay -b $DEAD -r valid --pace weird                | 2 | --pace 'weird': expected original or none
replay -b $DEAD -r valid --timestamps weird          | 2 | --timestamps 'weird': expected keep, shift or now
replay -b $DEAD -r valid --loop 0                    | 2 | --loop '0': expected a count of at least 1
replay -b $DEAD -r valid --max-gap xyz               | 2 | --max-gap 'xyz': expected a positive duration
replay -b $DEAD -r nonexistent --timeout 2s          | 1 | nonexistent: no such repository
replay -b $DEAD -r future-manifest --timeout 2s      | 1 | snapshot manifest version 2 is newer than this ktape supports (1)
replay -b $DEAD -r valid --timeout 2s                | 1 | cannot reach the target brokers 127.0.0.1:1 within 2000 ms

# ---- ls, show ------------------------------------------------------------
ls                                                   | 2 | -r REPO is required
ls -r valid --bogus                                  | 2 | unrecognized option '--bogus'
ls -r nonexistent                                    | 1 | nonexistent: no such repository
ls -r afile                                          | 3 | afile: not a tar archive: Unrecognized archive format
ls -r emptydir                                       | 1 | is not a ktape repository
ls -r future-marker                                  | 1 | repository format version 2 is newer than this ktape supports (1)
ls -r wrong-format-marker                            | 3 | not a ktape repository marker
show -r valid 20990101T000000000Z-00000000           | 1 | has no snapshot 20990101T000000000Z-00000000
show -r valid ../ktape-repository                    | 2 | '../ktape-repository' is not a snapshot id
show -r valid a b                                    | 2 | unexpected argument 'b'
show -r nonexistent                                  | 1 | nonexistent: no such repository
show -r versionless-manifest                         | 3 | version must be a positive integer

# ---- verify, prune -------------------------------------------------------
verify                                               | 2 | -r REPO is required
verify -r valid -j 0                                 | 2 | --threads wants a number from 1 to 1024, not '0'
verify -r valid --all -s x                           | 2 | --all and --snapshot exclude each other
verify -r nonexistent                                | 1 | nonexistent: no such repository
verify -r valid -s nosuch                            | 1 | has no snapshot nosuch
verify -r future-marker                              | 1 | repository format version 2 is newer than this ktape supports (1)
verify -r future-manifest                            | 1 | snapshot manifest version 2 is newer than this ktape supports (1)
verify -r dotdot-manifest                            | 3 | is not a relative path inside the repository
prune -r valid                                       | 2 | the policy would keep no snapshot
prune -r valid --keep-last abc                       | 2 | --keep-last wants a number of snapshots, not 'abc'
prune -r valid --keep-daily -1                       | 2 | --keep-daily wants a number of snapshots, not '-1'
prune -r valid --keep-weekly 99999999999999999999    | 2 | --keep-weekly wants a number of snapshots
prune --keep-last 1                                  | 2 | -r REPO is required
prune -r nonexistent --keep-last 1                   | 1 | nonexistent: no such repository
prune -r dotdot-manifest --keep-last 1               | 3 | is not a relative path inside the repository

# ---- export, import ------------------------------------------------------
export -r valid                                      | 2 | -o FILE (or -o -) is required
export -r valid -o out.tar -c lz4                    | 2 | --compress wants none, zstd or gzip, not 'lz4'
export -r valid -s nosuch -o out.tar                 | 1 | has no snapshot nosuch
export -r valid -o /nonexistent/dir/out.tar          | 1 | cannot create: No such file or directory
export -r valid -o afile/out.tar                     | 1 | cannot create: Not a directory
export -r nonexistent -o out.tar                     | 1 | nonexistent: no such repository
export -r dotdot-manifest -o out.tar                 | 3 | is not a relative path inside the repository
import -r imported                                   | 2 | the archive FILE (or -) is required
import afile                                         | 2 | -r REPO is required
import nofile.tar -r imported                        | 1 | nofile.tar: cannot open: No such file or directory
import afile -r imported                             | 3 | archive: cannot read: Unrecognized archive format
import noeq.conf -r imported                         | 3 | archive: cannot read
import - -r imported                                 | 3 | archive: cannot read

# ---- version -------------------------------------------------------------
version extra                                        | 2 | unexpected argument 'extra'
version --bogus                                      | 2 | unexpected argument '--bogus'

# ---- sandbox -------------------------------------------------------------
sandbox -n 0                                         | 2 | --brokers '0' is not a number from 1 to 64
sandbox -n abc                                       | 2 | --brokers 'abc' is not a number from 1 to 64
sandbox -t bad                                       | 2 | topic spec 'bad' has no partition count: expected NAME:PARTITIONS[:RF]
sandbox -t a:0                                       | 2 | partition count '0' is not a number from 1 to 100000
sandbox -t a:abc                                     | 2 | partition count 'abc' is not a number from 1 to 100000
sandbox -t a:2:x                                     | 2 | replication factor 'x' is not a number from 1 to 64
sandbox -t :3                                        | 2 | '' is not a legal topic name
sandbox -t 'a b:1'                                   | 2 | 'a b' is not a legal topic name
sandbox -t ..:1                                      | 2 | '..' is not a legal topic name
sandbox -t ../etc:1                                  | 2 | '../etc' is not a legal topic name
sandbox -t "$long_topic:1"                           | 2 | is not a legal topic name (1-249
sandbox --topic-file /nonexistent                    | 2 | /nonexistent: cannot open the topic file
sandbox --topic-file topics.txt                      | 2 | topics.txt:2: topic spec 'bad line' has no partition count
sandbox --from-snapshot nonexistent                  | 2 | --from-snapshot: nonexistent: no such repository
sandbox --from-snapshot valid:nosuch                 | 2 | --from-snapshot: repository
sandbox --from-snapshot afile                        | 3 | afile: not a tar archive: Unrecognized archive format
sandbox --from-snapshot dotdot-manifest              | 3 | is not a relative path inside the repository
sandbox --bogus                                      | 2 | unrecognized option '--bogus'
sandbox ctl                                          | 2 | --control PATH is required
sandbox ctl --control /nonexistent/sock ping         | 1 | cannot reach a sandbox at /nonexistent/sock

# ---- gen -----------------------------------------------------------------
gen                                                  | 2 | -b BROKERS and -t TOPIC are required (or --print)
gen -b $DEAD -t x -n abc                             | 2 | --count 'abc' is not a valid number
gen -b $DEAD -t x --size 5-1                         | 2 | --size '5-1' is not SIZE or MIN-MAX
gen -b $DEAD -t x --null-keys 150%                   | 2 | --null-keys '150%' is not a share from 0 to 1
gen -b $DEAD -t x --compressibility 101              | 2 | --compressibility '101' is not a number from 0
gen -b $DEAD -t x --ts-start never                   | 2 | --ts-start 'never' is neither epoch milliseconds nor ISO-8601
gen -b $DEAD -t x --commit bad                       | 2 | --commit 'bad' is not GROUP:TOPIC:PARTITION:OFFSET
gen -b $DEAD -t x -z foo                             | 2 | --compression foo: Invalid value "foo"
gen -b $DEAD -t x -X junk                            | 2 | -X: expected key=value, found no '='
gen -b $DEAD -t x -F badvalue.conf                   | 2 | badvalue.conf:1: socket.timeout.ms=soon: Invalid value
gen --print -t x                                     | 2 | --print needs --partitions N
gen -b $DEAD -t x -n 1                               | 1 | cannot read the cluster's topics

# ---- diff ----------------------------------------------------------------
diff                                                 | 2 | -r REPO is required
diff -r valid --bogus                                | 2 | unrecognized option '--bogus'
diff -b $DEAD -r valid -X junk                       | 2 | -X: expected key=value, found no '='
diff -b $DEAD -r valid -F /nonexistent.conf          | 1 | /nonexistent.conf: cannot open the configuration file
diff -b $DEAD -r valid --timeout abc                 | 2 | --timeout wants a duration such as 30s, not 'abc'
diff -b $DEAD -r valid -t '^['                       | 2 | topic pattern '^[' is not a valid regex
diff -b $DEAD -r nonexistent --timeout 2s            | 1 | nonexistent: no such repository
diff -b $DEAD -r valid -s nosuch --timeout 2s        | 1 | has no snapshot nosuch
diff -b $DEAD -r future-manifest --timeout 2s        | 1 | snapshot manifest version 2 is newer than this ktape supports (1)
diff -b $DEAD -r valid --timeout 2s                  | 1 | cannot read the cluster's metadata from 127.0.0.1:1

# ---- demo ----------------------------------------------------------------
demo --size 9                                        | 2 | --size '9': expected a whole number from 1 to
demo --speed -1                                      | 2 | --speed '-1': expected a positive number
demo --window abc                                    | 2 | --window 'abc': expected a positive duration
demo --bogus                                         | 2 | unrecognized option '--bogus'
TABLE

# Every command of `ktape --help` has rows.
while read -r cmd; do
	if [ -z "${covered[$cmd]:-}" ]; then
		failures=$((failures + 1))
		echo "not ok: command '$cmd' (listed by ktape --help) has no row in the table" >&2
	fi
done < <("$KTAPE" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 { print $1 }')

# Refused input publishes nothing: the captures that failed above left no
# snapshot behind, and the refused imports none either.
for r in new unreachable imported; do
	if [ -d "$r/snapshots" ] && [ -n "$(ls -A "$r/snapshots")" ]; then
		failures=$((failures + 1))
		echo "not ok: a refused command left a snapshot in $r: $(ls "$r/snapshots")" >&2
	fi
done
# Copies of the vectors are unchanged: nothing was repaired or written.
for r in future-marker wrong-format-marker future-manifest dotdot-manifest versionless-manifest; do
	if ! diff -r -x lock -x tmp "$VEC/repo/$r" "$r" >/dev/null; then
		failures=$((failures + 1))
		echo "not ok: a refused command changed the repository $r" >&2
	fi
done

note "$rows bad inputs tried, $failures failed"
[ "$failures" -eq 0 ] || fail "$failures of $rows bad inputs were not refused as the table says"
pass "all $rows bad inputs refused with the expected exit code and message"
