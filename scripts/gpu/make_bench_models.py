#!/usr/bin/env python3
"""Random-weight bf16 models of real shapes for the CUDA benchmarks (runs on the GPU host).

transformers builds each model from a config with seeded random weights on the GPU and saves it
in HF layout (safetensors shards + config.json + generation_config.json). For the models named
in --reference it also writes transformers' own bf16 forward on a fixed prompt: the last
position's logits (f32, reference_logits.bin) and the greedy continuation (reference.json), which
cuda_engine_bench --reference compares against (issue 8 "Correctness").

    python3 scripts/gpu/make_bench_models.py --out /tmp/models \
        --models qwen3-0.6b,qwen3-8b,llama3.1-8b --reference qwen3-8b [--reference-init scaled]

--reference-init scaled builds the reference models with their residual writers (o_proj,
down_proj) scaled by 1 / sqrt(2 x layers), the GPT-2 initialisation. Why: at transformers' plain
init (every linear N(0, 0.02)) a 36-layer model amplifies bf16 rounding so much that
transformers' own bf16 forward is only 0.99886 from its f32 one and agrees with it on 1 of 32
greedy tokens (docs/perf/cuda-engine.md), so no bf16 engine can meet issue 8's bar (cosine >=
0.999, the same 32 greedy tokens) against it. Scaled, each layer perturbs the residual stream as
a trained model's does, not chaotically; the check stays a whole-model one. Only the models
named in --reference get it; their greedy and matmul timings do not depend on the weights'
values, their drawn-sampling timings may (the logits' spread), so runs that compare those keep
the plain init.
"""
import argparse
import json
import os
import time

import torch
import transformers

SHAPES = {
    # Qwen3-0.6B
    "qwen3-0.6b": dict(model_type="qwen3", hidden_size=1024, intermediate_size=3072,
                       num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, vocab_size=151936, tie_word_embeddings=True,
                       max_position_embeddings=40960, rope_theta=1000000.0,
                       rms_norm_eps=1e-6),
    # Qwen3-8B
    "qwen3-8b": dict(model_type="qwen3", hidden_size=4096, intermediate_size=12288,
                     num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, vocab_size=151936, tie_word_embeddings=False,
                     max_position_embeddings=40960, rope_theta=1000000.0, rms_norm_eps=1e-6),
    # Llama-3.1-8B
    "llama3.1-8b": dict(model_type="llama", hidden_size=4096, intermediate_size=14336,
                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                        head_dim=128, vocab_size=128256, tie_word_embeddings=False,
                        max_position_embeddings=131072, rope_theta=500000.0,
                        rms_norm_eps=1e-5,
                        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                          high_freq_factor=4.0,
                                          original_max_position_embeddings=8192)),
}


def scale_residual_writers(model, factor):
    """Multiplies every layer's o_proj and down_proj weights by factor (Qwen3 and Llama name
    them alike)."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(factor)
            layer.mlp.down_proj.weight.mul_(factor)


def build(name, out_dir, reference, reference_init="plain"):
    spec = dict(SHAPES[name])
    model_type = spec.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **spec)
    config.torch_dtype = torch.bfloat16
    config.bos_token_id = 1
    config.eos_token_id = 2
    torch.manual_seed(0)
    t0 = time.time()
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.eval()
    init = reference_init if reference else "plain"
    if init == "scaled":
        scale_residual_writers(model, (2.0 * config.num_hidden_layers) ** -0.5)
    path = os.path.join(out_dir, name)
    model.save_pretrained(path, safe_serialization=True, max_shard_size="8GB")
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params, "
          f"saved in {time.time() - t0:.1f}s", flush=True)
    if reference:
        g = torch.Generator().manual_seed(1)
        prompt = torch.randint(3, config.vocab_size, (1, 64), generator=g).cuda()
        with torch.no_grad():
            logits = model(prompt).logits[0, -1].float().cpu()
            out = model.generate(prompt, max_new_tokens=32, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        greedy = out[0, prompt.shape[1]:].tolist()
        logits.numpy().tofile(os.path.join(path, "reference_logits.bin"))
        # The same forward in f32 (weights upcast): how far transformers' own bf16 path is from
        # exact arithmetic, so ours can be judged against both.
        model.float()
        with torch.no_grad():
            logits32 = model(prompt).logits[0, -1].float().cpu()
            out32 = model.generate(prompt, max_new_tokens=32, do_sample=False,
                                   eos_token_id=None, pad_token_id=0)
        logits32.numpy().tofile(os.path.join(path, "reference_logits_f32.bin"))
        greedy32 = out32[0, prompt.shape[1]:].tolist()
        bf16_vs_f32 = torch.nn.functional.cosine_similarity(logits, logits32, dim=0).item()
        same = 0
        while same < len(greedy) and greedy[same] == greedy32[same]:
            same += 1
        print(f"{name} ({init} init): transformers bf16 vs f32: cosine {bf16_vs_f32:.6f}, "
              f"greedy agree {same}/{len(greedy)}", flush=True)
        with open(os.path.join(path, "reference.json"), "w") as f:
            json.dump({"prompt": prompt[0].tolist(), "greedy": greedy, "greedy_f32": greedy32,
                       "bf16_vs_f32_cosine": bf16_vs_f32, "init": init,
                       "vocab_size": config.vocab_size,
                       "transformers": transformers.__version__,
                       "torch": torch.__version__}, f)
        print(f"{name}: reference written (greedy {greedy[:8]}...)", flush=True)
    del model
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="qwen3-0.6b,qwen3-8b,llama3.1-8b")
    ap.add_argument("--reference", default="qwen3-8b")
    ap.add_argument("--reference-init", choices=["plain", "scaled"], default="plain",
                    help="initialisation of the reference models (see the module docstring)")
    a = ap.parse_args()
    refs = set(a.reference.split(",")) if a.reference else set()
    for name in a.models.split(","):
        build(name, a.out, name in refs, a.reference_init)


if __name__ == "__main__":
    main()
