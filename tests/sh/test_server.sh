#!/usr/bin/env bash
# spillway-server with curl: the endpoints a shell user touches first, the
# error statuses, SSE framing, auth, and a clean SIGTERM. The deeper checks
# (openai client, hostile inputs, disconnects) are in tests/py/test_server.py.
set -u
BIN=${SW_SERVER_BIN:-${SW_BIN_DIR:-build/bin}/spillway-server}
TMP=${SW_TMP_DIR:-/tmp}
MODEL=${SW_SHARED_DIR:-/work/shared}/models/stories260K.gguf
mkdir -p "$TMP"
if [ ! -x "$BIN" ]; then echo "SKIP: no spillway-server at $BIN"; exit 77; fi
if ! command -v curl >/dev/null; then echo "SKIP: curl is not installed"; exit 77; fi
if [ ! -f "$MODEL" ]; then
    MODEL=$TMP/server-sh-tiny.gguf
    "$(dirname "$BIN")/spillway-mkmodel" -o "$MODEL" --shape tiny --type q8_0 >/dev/null 2>&1 ||
        { echo "SKIP: no stories260K.gguf and spillway-mkmodel failed"; exit 77; }
fi

OUT=$TMP/server-sh-$$.out
LOG=$TMP/server-sh-$$.log
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"; sleep 1; kill -KILL "$PID" 2>/dev/null
    fi
    rm -f "$OUT" "$LOG"
}
trap cleanup EXIT

fail=0
check() { # name, condition result
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

start() { # extra args...
    "$BIN" -m "$MODEL" --host 127.0.0.1 --port 0 "$@" >"$OUT" 2>"$LOG" &
    PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$OUT" 2>/dev/null | grep -o '[0-9]*$')
        [ -n "$PORT" ] && break
        sleep 0.1
    done
    [ -n "$PORT" ] || { echo "server did not start:"; cat "$LOG"; exit 1; }
    URL=http://127.0.0.1:$PORT
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && return
        sleep 0.1
    done
    echo "server not ready:"; cat "$LOG"; exit 1
}

stop() {
    kill -TERM "$PID"
    wait "$PID"
    local rc=$?
    PID=
    return $rc
}

# status of a request: code METHOD PATH [curl args...]
code() { local m=$1 p=$2; shift 2; curl -s -o /dev/null -w '%{http_code}' -X "$m" "$URL$p" "$@"; }

start
check "listening printed once" "$([ "$(cat "$OUT" "$LOG" | grep -c 'listening on')" = 1 ]; echo $?)"
check "health" "$([ "$(curl -s "$URL/health")" = '{"status":"ok"}' ]; echo $?)"
check "models" "$(curl -s "$URL/v1/models" | grep -q '"object":"list"'; echo $?)"
R=$(curl -s "$URL/v1/completions" -H 'Content-Type: application/json' \
    -d '{"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0}')
check "completion" "$(echo "$R" | grep -q '"finish_reason":"length"'; echo $?)"
case "$MODEL" in *stories260K*)
    check "completion text" "$(echo "$R" | grep -q '"text":", there was a little girl'; echo $?)";;
esac
R=$(curl -sN "$URL/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": true,
         "stream_options": {"include_usage": true}}')
check "sse framing" "$(echo "$R" | tail -n 1 | grep -qx 'data: \[DONE\]'; echo $?)"
check "sse usage" "$(echo "$R" | grep -q '"choices":\[\],"usage":{"prompt_tokens"'; echo $?)"
check "sse role" "$(echo "$R" | head -n 1 | grep -q '"delta":{"role":"assistant"'; echo $?)"
check "curl -d default content type" "$([ "$(code POST /v1/completions -d '{"prompt":"a","max_tokens":1}')" = 200 ]; echo $?)"
check "400 bad json" "$([ "$(code POST /v1/completions -d '{')" = 400 ]; echo $?)"
check "400 n=2" "$(curl -s "$URL/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],"n":2}' | grep -q '"param":"n"'; echo $?)"
check "404 path" "$([ "$(code GET /nope)" = 404 ]; echo $?)"
check "any model" "$(curl -s "$URL/v1/completions" -d '{"model":"gpt-9","prompt":"a","max_tokens":1}' | grep -q '"object":"text_completion"'; echo $?)"
check "cors preflight" "$(curl -s -i -X OPTIONS "$URL/v1/chat/completions" -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: POST' | tr -d '\r' | grep -qi '^access-control-allow-origin: http://localhost:3000$'; echo $?)"
check "405 method" "$([ "$(code GET /v1/chat/completions)" = 405 ]; echo $?)"
head -c 1200000 /dev/zero | tr '\0' 'x' > "$TMP/big-$$.json"
check "413 body" "$([ "$(code POST /v1/completions --data-binary @"$TMP/big-$$.json")" = 413 ]; echo $?)"
rm -f "$TMP/big-$$.json"
check "tokenize" "$(curl -s "$URL/tokenize" -d '{"content":"Once upon a time"}' | grep -q '"tokens":\['; echo $?)"
check "metrics" "$(curl -s "$URL/metrics" | grep -q '^spillway_requests_running 0'; echo $?)"
stop; check "sigterm exit 0" "$?"

start --api-key k1 --model-alias tiny
check "401 no key" "$([ "$(code POST /v1/completions -d '{"prompt":"a"}')" = 401 ]; echo $?)"
check "401 wrong key" "$([ "$(code POST /v1/completions -H 'Authorization: Bearer k2' -d '{"prompt":"a"}')" = 401 ]; echo $?)"
check "200 key" "$([ "$(code POST /v1/completions -H 'Authorization: Bearer k1' -d '{"prompt":"a","max_tokens":1,"model":"tiny"}')" = 200 ]; echo $?)"
check "health open" "$([ "$(code GET /health)" = 200 ]; echo $?)"
check "alias" "$(curl -s -H 'Authorization: Bearer k1' "$URL/v1/models" | grep -q '"id":"tiny"'; echo $?)"
stop; check "sigterm exit 0 (auth)" "$?"

exit $fail
