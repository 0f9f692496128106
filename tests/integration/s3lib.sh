# tests/integration/s3lib.sh - s3rver, the S3-compatible server of the S3
# tests and bench/s3_restore.sh.  Source it after lib.sh (it uses $T,
# note, fail, wait_until and KT_SANDBOX_PIDS).
#
#   start_s3rver BUCKET [s3rver args...]
#       installs s3rver@3 into $KT_BUILD_ROOT/s3rver from the npm registry
#       on first use (the only network use; later runs reuse it), starts it
#       on 127.0.0.1 with a fresh data directory $T/s3data holding BUCKET,
#       waits until it listens, and sets S3RVER_PORT.  lib.sh's exit trap
#       stops it.  Callers check for node and npm first (require_cmd).
#   start_s3proxy [s3proxy.js options...]
#       starts tests/integration/s3proxy.js in front of s3rver (a request
#       log, held uploads, added latency: see that file), waits until it
#       listens, and sets S3PROXY_PORT.

start_s3rver() {
	local bucket=$1 dir="$KT_BUILD_ROOT/s3rver" js
	shift
	js="$dir/node_modules/s3rver/bin/s3rver.js"
	if [ ! -f "$js" ]; then
		note "installing s3rver@3 into $dir"
		npm install --prefix "$dir" --no-audit --no-fund --loglevel=error s3rver@3 \
			>"$T/npm.log" 2>&1 || fail "npm could not install s3rver@3: $(tail -5 "$T/npm.log")"
	fi
	[ -f "$js" ] || fail "s3rver was installed but $js is missing"
	mkdir -p "$T/s3data"
	# s3rver makes ListObjectsV2 continuation tokens with DES, which
	# OpenSSL 3 keeps in its legacy provider.
	node --openssl-legacy-provider "$js" -d "$T/s3data" -a 127.0.0.1 -p 0 \
		--configure-bucket "$bucket" "$@" >"$T/s3rver.log" 2>&1 &
	KT_SANDBOX_PIDS+=($!)
	wait_until 20 _s3rver_listening
	S3RVER_PORT=$(_s3rver_port)
}

_s3rver_port() {
	sed -n 's/^S3rver listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$T/s3rver.log" 2>/dev/null | head -1
}
_s3rver_listening() { [ -n "$(_s3rver_port)" ]; }

start_s3proxy() {
	node "$(dirname "${BASH_SOURCE[0]}")/s3proxy.js" "$S3RVER_PORT" "$@" >"$T/s3proxy.out" 2>&1 &
	KT_SANDBOX_PIDS+=($!)
	wait_until 20 _s3proxy_listening
	S3PROXY_PORT=$(_s3proxy_port)
}

_s3proxy_port() { sed -n 's/^proxy listening on \([0-9][0-9]*\)$/\1/p' "$T/s3proxy.out" 2>/dev/null; }
_s3proxy_listening() { [ -n "$(_s3proxy_port)" ]; }
