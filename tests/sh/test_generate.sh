#!/usr/bin/env bash
# test_generate.sh — spillway-generate end to end: greedy output of stories260K
# against llama.cpp's reference, --json shape, context overflow, chat mode on a
# synthetic model, and exit code 2 for bad command lines.
set -u

BIN="${SW_BIN_DIR:-}"
TMP="${SW_TMP_DIR:-/tmp}"
SHARED="${SW_SHARED_DIR:-}"
GEN="$BIN/spillway-generate"
MK="$BIN/spillway-mkmodel"

if [[ -z "$BIN" || ! -x "$GEN" ]]; then
    echo "SKIP: spillway-generate is not built (SW_BIN_DIR='$BIN')"
    exit 77
fi
mkdir -p "$TMP"
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
have_python() { command -v python3 >/dev/null 2>&1; }

# Run, capturing stdout, stderr and the exit code.
run() {
    "$@" >"$TMP/gen.out" 2>"$TMP/gen.err"
    rc=$?
}

# ---- bad command lines: exit 2 ------------------------------------------------
for args in "--bogus" "-m" "-m x.gguf -p hi -n abc" "-m x.gguf -p hi --temp -1" \
            "-p hi" "-m x.gguf -p hi --backend quantum" "-m x.gguf -p hi --top-logprobs 99" \
            "-m x.gguf -p hi -l 5" "-m x.gguf -p hi -l 5+101" "-m x.gguf -p hi --logit-bias x+1"; do
    # shellcheck disable=SC2086
    run "$GEN" $args
    if [[ $rc -eq 2 ]]; then pass "bad flags ($args) -> 2"; else fail "bad flags ($args) -> $rc"; fi
done

# ---- stories260K: greedy matches the reference --------------------------------
STORIES="$SHARED/models/stories260K.gguf"
REF="$SHARED/reference/stories260K-greedy.json"
if [[ -n "$SHARED" && -f "$STORIES" && -f "$REF" ]]; then
    run "$GEN" -m "$STORIES" -p "Once upon a time" -n 20 --temp 0 --json --backend cpu --threads 2 \
        --top-logprobs 3
    if [[ $rc -ne 0 ]]; then
        fail "stories260K --json exited $rc: $(tail -3 "$TMP/gen.err")"
    elif grep -q '"text":", there was a little girl named Lily' "$TMP/gen.out"; then
        pass "stories260K greedy text starts with the reference"
    else
        fail "stories260K greedy text: $(head -c 600 "$TMP/gen.out")"
    fi
    if [[ $rc -eq 0 ]] && have_python; then
        if python3 - "$TMP/gen.out" "$REF" <<'EOF'
import json, math, sys
out = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))["prompts"][0]
assert out["prompt_ids"] == ref["prompt_ids"], (out["prompt_ids"], ref["prompt_ids"])
assert out["gen_ids"] == ref["gen_ids"][:20], (out["gen_ids"], ref["gen_ids"][:20])
n = len(out["gen_ids"])
assert len(out["logprobs"]) == n and len(out["entropy"]) == n and len(out["top_logprobs"]) == n
for lp, top, tok in zip(out["logprobs"], out["top_logprobs"], out["gen_ids"]):
    assert lp <= 0 and len(top) == 3
    # greedy: the chosen token is the most likely one
    assert top[0]["id"] == tok and abs(top[0]["logprob"] - lp) < 1e-5
    assert top[0]["logprob"] >= top[1]["logprob"] >= top[2]["logprob"]
assert all(e >= 0 and math.isfinite(e) for e in out["entropy"])
t = out["timings"]
for k in ("load_ms", "prompt_ms", "prompt_tok_s", "gen_ms", "gen_tok_s"):
    assert k in t and t[k] >= 0, k
EOF
        then pass "stories260K --json ids, logprobs, entropy, timings"; else fail "stories260K --json contents"; fi
        # -l ID-100 bans the greedy first token: the runner-up takes its place,
        # with the same (unbiased) logprob
        read -r first second second_lp < <(python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
print(o["gen_ids"][0], o["top_logprobs"][0][1]["id"], o["top_logprobs"][0][1]["logprob"])' "$TMP/gen.out")
        run "$GEN" -m "$STORIES" -p "Once upon a time" -n 1 --temp 0 --json --backend cpu --threads 1 \
            -l "${first}-100"
        if [[ $rc -eq 0 ]] && python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["gen_ids"] == [int(sys.argv[2])], o["gen_ids"]
assert abs(o["logprobs"][0] - float(sys.argv[3])) < 1e-4, o["logprobs"]' "$TMP/gen.out" "$second" "$second_lp"
        then pass "--logit-bias ${first}-100 hands the first step to token $second"
        else fail "--logit-bias ${first}-100: rc $rc $(head -c 300 "$TMP/gen.out") $(tail -2 "$TMP/gen.err")"; fi
        run "$GEN" -m "$STORIES" -p "Once upon a time" -n 1 --temp 0 --backend cpu -l 99999+1
        if [[ $rc -ne 0 && $rc -ne 2 ]] && grep -q "logit_bias token id 99999" "$TMP/gen.err"; then
            pass "--logit-bias with an id past the vocabulary: clear error"
        else fail "--logit-bias 99999+1: rc $rc $(tail -2 "$TMP/gen.err")"; fi
    fi

    # streaming text mode prints the same continuation
    run "$GEN" -m "$STORIES" -p "Once upon a time" -n 20 --temp 0 --backend cpu --threads 2
    if [[ $rc -eq 0 ]] && grep -q '^, there was a little girl named Lily' "$TMP/gen.out" &&
        grep -q 'tok/s' "$TMP/gen.err"; then
        pass "stories260K streaming text + timings on stderr"
    else
        fail "stories260K streaming ($rc): $(head -c 300 "$TMP/gen.out") / $(tail -2 "$TMP/gen.err")"
    fi

    # sampling with a seed is reproducible
    run "$GEN" -m "$STORIES" -p "Once upon a time" -n 24 --temp 0.9 --top-k 40 --top-p 0.9 \
        --seed 42 --repeat-penalty 1.1 --backend cpu --threads 2
    first=$(cat "$TMP/gen.out")
    run "$GEN" -m "$STORIES" -p "Once upon a time" -n 24 --temp 0.9 --top-k 40 --top-p 0.9 \
        --seed 42 --repeat-penalty 1.1 --backend cpu --threads 2
    if [[ $rc -eq 0 && -n "$first" && "$first" == "$(cat "$TMP/gen.out")" ]]; then
        pass "seeded sampling is reproducible"
    else
        fail "seeded sampling: '$first' vs '$(cat "$TMP/gen.out")'"
    fi

    # a prompt longer than the context fails before any compute
    run "$GEN" -m "$STORIES" -p "Once upon a time there was a little girl" --ctx 4 -n 5 --backend cpu
    if [[ $rc -eq 1 ]] && grep -q "context" "$TMP/gen.err"; then
        pass "prompt longer than --ctx -> exit 1 with a message"
    else
        fail "prompt longer than --ctx: rc $rc, $(cat "$TMP/gen.err")"
    fi

    # no chat template in stories260K: --chat explains how to pick one
    run "$GEN" -m "$STORIES" -p "hi" --chat -n 2 --backend cpu
    if [[ $rc -ne 0 ]] && grep -q -- "--chat-template" "$TMP/gen.err"; then
        pass "--chat without a template -> error naming --chat-template"
    else
        fail "--chat without a template: rc $rc, $(cat "$TMP/gen.err")"
    fi
else
    echo "skip stories260K checks: $STORIES or $REF is absent"
fi

# ---- chat mode on a synthetic model ------------------------------------------
if [[ -x "$MK" ]]; then
    PHI3="$SHARED/models/vocab/ggml-vocab-phi-3.gguf"
    CHAT_MODEL="$TMP/test_generate-chat.gguf"
    if [[ -n "$SHARED" && -f "$PHI3" ]]; then
        "$MK" -o "$CHAT_MODEL" --shape tiny --type q8_0 --vocab-from "$PHI3" >/dev/null 2>&1
        tmpl_args=()
    else
        echo "note: phi-3 vocab absent, using a generated vocab with --chat-template chatml"
        "$MK" -o "$CHAT_MODEL" --shape tiny --type q8_0 >/dev/null 2>&1
        tmpl_args=(--chat-template chatml)
    fi
    if [[ ! -f "$CHAT_MODEL" ]]; then
        fail "spillway-mkmodel did not write $CHAT_MODEL"
    else
        run "$GEN" -m "$CHAT_MODEL" --chat "${tmpl_args[@]}" --system "Be brief." -p "Hello there" \
            -n 8 --temp 0 --json --backend cpu --threads 2
        if [[ $rc -eq 0 ]] && grep -q '"gen_ids"' "$TMP/gen.out"; then
            pass "synthetic model with --chat --system"
        else
            fail "synthetic --chat: rc $rc, $(tail -3 "$TMP/gen.err")"
        fi
        cat >"$TMP/test_generate-messages.json" <<'EOF'
[{"role": "system", "content": "You are terse."},
 {"role": "user", "content": "Name a colour."},
 {"role": "assistant", "content": "Blue."},
 {"role": "user", "content": "Another?"}]
EOF
        run "$GEN" -m "$CHAT_MODEL" --messages "$TMP/test_generate-messages.json" "${tmpl_args[@]}" \
            -n 6 --temp 0.7 --seed 3 --backend cpu --threads 2
        if [[ $rc -eq 0 ]]; then pass "--messages FILE.json"; else fail "--messages: rc $rc, $(tail -3 "$TMP/gen.err")"; fi
        run "$GEN" -m "$CHAT_MODEL" --chat --chat-template no-such-template -p hi -n 2 --backend cpu
        if [[ $rc -eq 2 ]] && grep -q -- "--chat-template" "$TMP/gen.err"; then
            pass "unknown --chat-template -> exit 2 naming the flag"
        else
            fail "unknown --chat-template: rc $rc, $(cat "$TMP/gen.err")"
        fi
        # --chat-template-file: the prompt is exactly what the file renders
        printf '%s' '{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<go>' \
            >"$TMP/test_generate-tmpl.jinja"
        run "$GEN" -m "$CHAT_MODEL" --chat --chat-template-file "$TMP/test_generate-tmpl.jinja" \
            --system "S" -p "hi" -n 1 --temp 0 --json --backend cpu --threads 2
        if [[ $rc -eq 0 ]] && have_python && [[ -x "$BIN/spillway-tokenize" ]] &&
            python3 - "$TMP/gen.out" "$BIN/spillway-tokenize" "$CHAT_MODEL" <<'EOF'
import json, subprocess, sys
ids = json.load(open(sys.argv[1]))["prompt_ids"]
want = subprocess.run([sys.argv[2], "-m", sys.argv[3], "--parse-special", "-p", "<system>S<user>hi<go>"],
                      capture_output=True, text=True).stdout.split()
want = [int(x) for x in want]
assert ids in (want, ids[:1] + want), (ids, want)
EOF
        then
            pass "--chat-template-file renders the prompt"
        else
            fail "--chat-template-file: rc $rc, $(tail -3 "$TMP/gen.err")"
        fi
        run "$GEN" -m "$CHAT_MODEL" --chat --chat-template-file "$TMP/no-such.jinja" -p hi -n 2 --backend cpu
        if [[ $rc -eq 2 ]] && grep -q -- "no-such.jinja" "$TMP/gen.err"; then
            pass "missing --chat-template-file -> exit 2 naming the file"
        else
            fail "missing --chat-template-file: rc $rc, $(cat "$TMP/gen.err")"
        fi
        # interactive chat: turn 2 answers exactly what a one-shot run with the
        # same history answers, reusing the cached prefix; /reset starts over;
        # a full context drops the oldest turns; an oversize message is refused
        printf 'Name a colour.\nAnother?\n/reset\nName a colour.\n' |
            "$GEN" -m "$CHAT_MODEL" -i "${tmpl_args[@]}" --system "You are terse." -n 8 --temp 0 \
                --json --backend cpu --threads 2 >"$TMP/gen.out" 2>"$TMP/gen.err"
        rc=$?
        if [[ $rc -eq 0 ]] && have_python &&
            python3 - "$TMP/gen.out" "$TMP/test_generate-i.json" <<'EOF'
import json, sys
turns = [json.loads(l) for l in open(sys.argv[1])]
assert [t["turn"] for t in turns] == [1, 2, 3], turns
assert turns[1]["cached_tokens"] > 0, turns[1]
assert turns[2]["gen_ids"] == turns[0]["gen_ids"], "after /reset the same question, the same answer"
json.dump([{"role": "system", "content": "You are terse."},
           {"role": "user", "content": "Name a colour."},
           {"role": "assistant", "content": turns[0]["text"]},
           {"role": "user", "content": "Another?"}], open(sys.argv[2], "w"))
EOF
        then
            want=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[1])["gen_ids"])' "$TMP/gen.out")
            run "$GEN" -m "$CHAT_MODEL" --messages "$TMP/test_generate-i.json" "${tmpl_args[@]}" \
                -n 8 --temp 0 --json --backend cpu --threads 2
            got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gen_ids"])' "$TMP/gen.out" 2>/dev/null)
            if [[ $rc -eq 0 && -n "$want" && "$want" == "$got" ]]; then
                pass "-i: turn 2 = one-shot run with the same history, prefix reused, /reset"
            else
                fail "-i turn 2: interactive $want vs one-shot $got (rc $rc)"
            fi
        else
            fail "-i: rc $rc, $(head -c 400 "$TMP/gen.out") / $(tail -3 "$TMP/gen.err")"
        fi
        long=$(printf 'word %.0s' $(seq 1 200))
        # room for about two exchanges: phi-3's vocabulary takes ~14 tokens per short
        # turn, the generated fallback vocabulary (mostly single characters) ~54
        small_ctx=64
        [[ ${#tmpl_args[@]} -gt 0 ]] && small_ctx=192
        printf 'Hello there\nAnd again\nOnce more\nA fourth\n%s\nLast one\n' "$long" |
            "$GEN" -m "$CHAT_MODEL" -i "${tmpl_args[@]}" -n 8 --temp 0 --ctx $small_ctx --backend cpu \
                --threads 2 >"$TMP/gen.out" 2>"$TMP/gen.err"
        rc=$?
        if [[ $rc -eq 0 ]] && grep -q "context full: dropped" "$TMP/gen.err" &&
            grep -q "does not fit the context" "$TMP/gen.err" && grep -q "^turn 5:" "$TMP/gen.err" &&
            ! grep -q "^turn 5: prompt [0-9]* tokens (0 cached" "$TMP/gen.err"; then
            pass "-i: full context drops old turns, an oversize message is refused, the chat goes on"
        else
            fail "-i small ctx: rc $rc, $(tail -5 "$TMP/gen.err")"
        fi
        echo '{"not": "an array"}' >"$TMP/test_generate-bad.json"
        run "$GEN" -m "$CHAT_MODEL" --messages "$TMP/test_generate-bad.json" "${tmpl_args[@]}" -n 2 \
            --backend cpu
        if [[ $rc -ne 0 ]] && grep -q "array" "$TMP/gen.err"; then
            pass "malformed --messages -> error"
        else
            fail "malformed --messages: rc $rc, $(cat "$TMP/gen.err")"
        fi
    fi
else
    echo "skip chat checks: $MK is not built"
fi


# --list-devices prints every backend's section and exits 0; a device index
# that does not exist is a clean error, not a crash.
out=$("$GEN" --list-devices 2>&1); rc=$?
if [[ $rc -eq 0 && $out == *"cpu:"* && $out == *"cuda:"* && $out == *"vulkan:"* ]]; then
    pass "--list-devices"
else
    fail "--list-devices: rc $rc, $out"
fi
if out=$("$GEN" --list-devices 2>&1) && [[ $out == *"vulkan:"*"0: "* ]]; then
    # the backend is created before the model is opened, so no model is needed
    "$GEN" -m "$TMP/unused.gguf" -p x -n 1 --backend vulkan --device 99 >/dev/null 2>"$TMP/dev.err"; rc=$?
    if [[ $rc -eq 1 ]] && grep -q "device 99 does not exist" "$TMP/dev.err"; then
        pass "--device out of range -> error"
    else
        fail "--device 99: rc $rc, $(cat "$TMP/dev.err")"
    fi
else
    echo "skip --device check: no Vulkan device"
fi

# ---- --json is valid UTF-8 JSON even when the bytes generated are not --------
# Byte tokens that do not form UTF-8 (here a lead byte 0xE3, <0xE3> = id 230,
# pushed up by a logit bias so that the synthetic model samples it among its
# usual tokens) must come out as U+FFFD, never as raw bytes in the JSON string.
RAND="$TMP/test_generate-rand.gguf"
if have_python && "$MK" -o "$RAND" --shape tiny --type q8_0 --seed 7 >/dev/null 2>&1; then
    : >"$TMP/rand.all"
    for seed in 1 2 3 4 5 6 7 8 9 10 11 12; do
        "$GEN" -m "$RAND" -p "word $seed" -n 48 --temp 1.5 --seed "$seed" --json --backend cpu \
            --threads 1 -l 230+16 >"$TMP/rand.$seed" 2>/dev/null || fail "random model seed $seed: exit $?"
        cat "$TMP/rand.$seed" >>"$TMP/rand.all"
    done
    if python3 - "$TMP/rand.all" <<'EOF'
import json, sys
raw = open(sys.argv[1], "rb").read()
lines = [l for l in raw.split(b"\n") if l]
n_fffd = 0
for l in lines:
    o = json.loads(l.decode("utf-8", errors="strict"))  # raises on invalid UTF-8
    n_fffd += o["text"].count("\ufffd")
assert len(lines) == 12, "expected 12 JSON objects"
# the fixture must really produce invalid bytes, or this check proves nothing
assert n_fffd > 0, "no replacement characters: the random model made only valid UTF-8"
print("replacement characters:", n_fffd)
EOF
    then pass "--json on a random model: valid UTF-8, bad bytes as U+FFFD"
    else fail "--json on a random model: invalid JSON or UTF-8"; fi
else
    echo "skip --json UTF-8 check: no python3 or spillway-mkmodel failed"
fi

if [[ $fails -gt 0 ]]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
