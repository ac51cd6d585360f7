#!/usr/bin/env bash
# Runs on the GPU host (python3 with torch, transformers, tokenizers, jinja2): produces every committed
# reference fixture with the reference implementations and packs them into $OUT/fixtures.tar.gz.
# node_modules (the real tokenizer/template files from npm) must travel with the tree (carry it).
#   bash scripts/gpu/make_fixtures.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, tokenizers, jinja2; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, 'jinja2', jinja2.__version__)"
status=0
for s in scripts/fixtures/make_tokenizer_refs.py scripts/fixtures/make_template_refs.py \
         scripts/fixtures/make_model_fixtures.py; do
    if [ -f "$s" ]; then
        echo "== $s"
        python3 "$s" 2>&1 | tee "$out/$(basename "$s" .py).log" | tail -20 || status=1
    fi
done
tar czf "$out/fixtures.tar.gz" tests/fixtures
ls -la "$out"
exit $status
