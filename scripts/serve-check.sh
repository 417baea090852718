#!/usr/bin/env bash
# Serves a compiled program (--serve on a free loopback port) and sends it
# every prompt of PROMPTS (text, one per line) at once as a greedy
# completion, through bash's /dev/tcp (a GPU machine may have no HTTP
# client): requests join the running batch and leave it as they finish.
# Each completion's text must equal the same program's offline run of the
# same prompts (--json-lines), on the same backend. Prints one line per
# request and a verdict; exits 0 when every text matches and the server
# stops cleanly on SIGTERM.
# Usage: serve-check.sh PROGRAM WEIGHTS TOKENIZER PROMPTS TOKENS [ARGS...]
#   TOKENS: tokens per completion; ARGS go to both runs (e.g. --backend cuda,
#   --prefill-tokens N, --batch-size N).
set -euo pipefail
if [ $# -lt 5 ]; then
  echo "usage: $0 PROGRAM WEIGHTS TOKENIZER PROMPTS TOKENS [ARGS...]" >&2
  exit 2
fi
program=$1 weights=$2 tokenizer=$3 prompts=$4 tokens=$5
shift 5
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
common=(--weights "$weights" --tokenizer "$tokenizer" --max-new-tokens "$tokens"
        --ignore-eos "$@")

# The offline texts: one batch of every prompt.
"$program" "${common[@]}" --text-prompts "$prompts" --json-lines \
  > "$work/offline.jsonl" 2> "$work/offline.err" || {
  echo "serve-check: the offline run failed: $(tail -1 "$work/offline.err")"
  exit 1
}

"$program" "${common[@]}" --serve 127.0.0.1:0 > "$work/server.out" \
  2> "$work/server.err" &
server=$!
port=
for _ in $(seq 600); do
  port=$(sed -n 's|.*http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/server.out")
  [ -n "$port" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "serve-check: the server did not start: $(tail -1 "$work/server.err")"
  exit 1
fi

# A completion's whole HTTP response.
complete() {
  local prompt=$1 out=$2 body
  prompt=${prompt//\\/\\\\}
  prompt=${prompt//\"/\\\"}
  body="{\"prompt\": \"$prompt\", \"max_tokens\": $tokens, \"temperature\": 0}"
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  # Content-Length counts bytes (${#body} counts characters in UTF-8).
  printf 'POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$(printf '%s' "$body" | wc -c)" "$body" >&3
  cat <&3 > "$out"
  exec 3<&-
}
n=0
while IFS= read -r line; do
  complete "$line" "$work/response.$n" &
  n=$((n + 1))
done < "$prompts"
wait $(jobs -p | grep -vx "$server") 2>/dev/null || true

# "text":"..." of a JSON line (no spaces after the colon, as both print it).
textOf() { sed -n 's/.*"text":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | head -1; }
failed=0
for ((i = 0; i < n; ++i)); do
  want=$(sed -n "$((i + 1))p" "$work/offline.jsonl" | textOf)
  got=$(textOf < "$work/response.$i")
  status=$(head -1 "$work/response.$i" | tr -d '\r')
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    echo "  request $i: the offline text (${#got} characters)"
  else
    echo "  request $i: DIFFERS (${status:-no response}): '$got' against '$want'"
    failed=1
  fi
done
kill -TERM "$server"
if ! wait "$server"; then
  echo "  the server did not stop cleanly: $(tail -1 "$work/server.err")"
  failed=1
fi
server=
if [ $failed = 0 ]; then
  echo "serve-check: $n concurrent completions give the offline texts: PASS"
else
  echo "serve-check: FAIL"
fi
exit $failed
