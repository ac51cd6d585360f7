#!/usr/bin/env python3
"""Random-weight bf16 models of real shapes for the CUDA benchmarks (runs on the GPU host).

transformers builds each model from a config with seeded random weights on the GPU and saves it
in HF layout (safetensors shards + config.json + generation_config.json). For the models named
in --reference it also writes transformers' own bf16 forward on a fixed prompt: the last
position's logits (f32, reference_logits.bin) and the greedy continuation (reference.json), which
cuda_engine_bench --reference compares against (issue 8 "Correctness").

    python3 scripts/gpu/make_bench_models.py --out /tmp/models \
        --models qwen3-0.6b,qwen3-8b,llama3.1-8b --reference qwen3-8b \
        [--reference-init successor --embed-std 4]

--reference-init says how the reference models are initialised (the benchmark-only models
always get transformers' plain init: every linear and the embedding N(0, 0.02)):
- plain: at this init a 36-layer model amplifies bf16 rounding so much that transformers' own
  bf16 forward is only 0.99886 from its f32 one and agrees with it on 1 of 32 greedy tokens
  (docs/perf/cuda-engine.md, runs 12 and 15): no bf16 engine can meet issue 8's bar (cosine >=
  0.999, the same 32 greedy tokens) against it. The layers write almost all of the final
  residual stream (rho, printed, about 700) and the logits' top two are near ties.
- scaled: o_proj and down_proj scaled by 1 / sqrt(2 x layers), GPT-2's init. Tried in run 15:
  no better (0.99868, 3 of 32).
- successor (--embed-std, 4 in cuda_run.sh): the embedding drawn with a larger std and lm_head's
  rows the embedding's rows in a seeded random order (successor_head says how that gives each
  token a well-separated successor). Run 15: transformers' bf16 vs f32 at 0.99959 and 32 of 32
  at std 4, while the layers still write rho = 3.5 times the embedding's norm (92% of the
  final stream's energy), so the comparison is still one of the whole model.
--probe prints transformers' own bf16-vs-f32 figures for a list of inits without saving.
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


def successor_head(model, embed_std, seed=2):
    """The "successor" init: the input embedding drawn with std embed_std, and lm_head's rows the
    embedding's rows in a seeded random order, row j = embedding[pred(j)]. The last position's
    hidden state carries its token's embedding, so the logit of succ(token) stands far above the
    rest (a margin of about sqrt(hidden) / sqrt(1 + rho^2) noise deviations, rho the layers'
    share over the embedding's in the final residual stream), and the greedy continuation is a
    well-conditioned chain token -> succ(token) -> ... that bf16 rounding cannot flip, while the
    layers still carry most of the logits (rho is printed). Everything else is transformers'
    plain init."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb.normal_(0.0, embed_std, generator=g)
        pred = torch.randperm(emb.shape[0], generator=g, device="cuda")
        model.lm_head.weight.copy_(emb[pred])


def make_model(name, init="plain", embed_std=1.0):
    """The seeded random-weight bf16 model of shape `name` on the GPU, with init plain, scaled
    or successor (the module docstring says why each)."""
    spec = dict(SHAPES[name])
    model_type = spec.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **spec)
    config.torch_dtype = torch.bfloat16
    config.bos_token_id = 1
    config.eos_token_id = 2
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = transformers.AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.eval()
    if init == "scaled":
        scale_residual_writers(model, (2.0 * config.num_hidden_layers) ** -0.5)
    elif init == "successor":
        if config.tie_word_embeddings:
            raise ValueError(f"{name}: the successor init needs an untied lm_head")
        successor_head(model, embed_std)
    return model


def reference_forward(model):
    """transformers' bf16 forward on the fixed prompt, then the same in f32 (weights upcast: how
    far its own bf16 path is from exact arithmetic, so ours can be judged against both). Leaves
    the model in f32. Returns a dict of the prompt, both logits, both greedy continuations,
    their agreement, and rho: the norm of the final residual stream's part written by the layers
    over that of the last token's embedding (f32, at the last prompt position)."""
    config = model.config
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, config.vocab_size, (1, 64), generator=g).cuda()
    r = {"prompt": prompt}
    stream = {}  # the final norm's input at the prompt's last position: the raw residual stream

    def keep_first_input(module, args, output):  # returns None: the output is left as it is
        stream.setdefault("h", args[0][0, -1].float())

    hook = model.model.norm.register_forward_hook(keep_first_input)
    for dtype in ("bf16", "f32"):
        if dtype == "f32":
            model.float()
            stream.clear()
        with torch.no_grad():
            logits = model(prompt).logits[0, -1].float().cpu()
            out = model.generate(prompt, max_new_tokens=32, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        r[f"logits_{dtype}"] = logits
        r[f"greedy_{dtype}"] = out[0, prompt.shape[1]:].tolist()
    hook.remove()
    e = model.model.embed_tokens.weight[prompt[0, -1]].float()
    r["rho"] = ((stream["h"] - e).norm() / e.norm()).item()
    r["cosine"] = torch.nn.functional.cosine_similarity(
        r["logits_bf16"], r["logits_f32"], dim=0).item()
    same = 0
    while same < 32 and r["greedy_bf16"][same] == r["greedy_f32"][same]:
        same += 1
    r["greedy_agree"] = same
    return r


def build(name, out_dir, reference, reference_init="plain", embed_std=1.0):
    init = reference_init if reference else "plain"
    t0 = time.time()
    model = make_model(name, init, embed_std)
    config = model.config
    path = os.path.join(out_dir, name)
    model.save_pretrained(path, safe_serialization=True, max_shard_size="8GB")
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params, "
          f"saved in {time.time() - t0:.1f}s", flush=True)
    if reference:
        r = reference_forward(model)
        r["logits_bf16"].numpy().tofile(os.path.join(path, "reference_logits.bin"))
        r["logits_f32"].numpy().tofile(os.path.join(path, "reference_logits_f32.bin"))
        print(f"{name} ({init} init): transformers bf16 vs f32: cosine {r['cosine']:.6f}, "
              f"greedy agree {r['greedy_agree']}/32, rho {r['rho']:.2f}",
              flush=True)
        with open(os.path.join(path, "reference.json"), "w") as f:
            json.dump({"prompt": r["prompt"][0].tolist(), "greedy": r["greedy_bf16"],
                       "greedy_f32": r["greedy_f32"], "bf16_vs_f32_cosine": r["cosine"],
                       "init": init, "vocab_size": config.vocab_size,
                       "transformers": transformers.__version__,
                       "torch": torch.__version__}, f)
        print(f"{name}: reference written (greedy {r['greedy_bf16'][:8]}...)", flush=True)
    del model
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="qwen3-0.6b,qwen3-8b,llama3.1-8b")
    ap.add_argument("--reference", default="qwen3-8b")
    ap.add_argument("--reference-init", choices=["plain", "scaled", "successor"],
                    default="plain",
                    help="initialisation of the reference models (see the module docstring)")
    ap.add_argument("--embed-std", type=float, default=1.0,
                    help="the successor init's embedding standard deviation")
    ap.add_argument("--probe", action="store_true",
                    help="save nothing: for each model and each init in --probe-inits, print "
                         "transformers' own bf16 against f32 (cosine, greedy agreement, rho)")
    ap.add_argument("--probe-inits", default="plain,successor:1,successor:4",
                    help="init[:embed_std] list for --probe")
    a = ap.parse_args()
    if a.probe:
        for name in a.models.split(","):
            for item in a.probe_inits.split(","):
                init, _, std = item.partition(":")
                t0 = time.time()
                model = make_model(name, init, float(std or 1.0))
                r = reference_forward(model)
                print(f"probe {name} {item}: bf16 vs f32 cosine {r['cosine']:.6f}, greedy agree "
                      f"{r['greedy_agree']}/32, rho {r['rho']:.2f}, greedy "
                      f"{r['greedy_bf16'][:6]}... ({time.time() - t0:.0f}s)", flush=True)
                del model
                torch.cuda.empty_cache()
        return
    refs = set(a.reference.split(",")) if a.reference else set()
    for name in a.models.split(","):
        build(name, a.out, name in refs, a.reference_init, a.embed_std)


if __name__ == "__main__":
    main()
