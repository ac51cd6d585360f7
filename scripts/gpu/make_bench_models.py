#!/usr/bin/env python3
"""Random-weight bf16 models of real shapes for the CUDA benchmarks (runs on the GPU host).

transformers builds each model from a config with seeded random weights on the GPU and saves it
in HF layout (safetensors shards + config.json + generation_config.json). For the models named
in --reference it also writes transformers' own bf16 forward on a fixed prompt: the last
position's logits (f32, reference_logits.bin) and the greedy continuation (reference.json), which
cuda_engine_bench --reference compares against (issue 8 "Correctness").

    python3 scripts/gpu/make_bench_models.py --out /tmp/models \
        --models qwen3-0.6b,qwen3-8b,llama3.1-8b --reference qwen3-8b
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


def build(name, out_dir, reference):
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
        print(f"{name}: transformers bf16 vs f32: cosine {bf16_vs_f32:.6f}, greedy agree "
              f"{same}/{len(greedy)}", flush=True)
        with open(os.path.join(path, "reference.json"), "w") as f:
            json.dump({"prompt": prompt[0].tolist(), "greedy": greedy, "greedy_f32": greedy32,
                       "bf16_vs_f32_cosine": bf16_vs_f32,
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
    a = ap.parse_args()
    refs = set(a.reference.split(",")) if a.reference else set()
    for name in a.models.split(","):
        build(name, a.out, name in refs)


if __name__ == "__main__":
    main()
