"""Update anatomy: what an update changed, layer by layer (`bench diagnose`).

Three measurements, for any registered pair (tiny on CPU; 7B pairs on a GPU through the same code):
  weights      relative change ||W_new - W_old||_F / ||W_old||_F of attention and FFN matrices per layer,
               read tensor by tensor from the safetensors files (never both models in memory);
  activations  both versions run on one fixed probe set (Trans-PEFT Figs. 1-3): per layer, the cosine
               similarity of attention outputs old vs new, the cosine and relative shift of FFN outputs,
               and each FFN sub-layer's effect on activation magnitude, ||h + FFN(h)|| / ||h|| (h: the
               residual stream entering the FFN), found with forward hooks on generic sub-layers;
  portllm      PortLLM's Table 1 check, when finetune_old's and finetune_new's LoRA modules for a task are
               both in the cache: sigma_max and Frobenius norm of theta' + delta_i (new base + old patch)
               versus delta'_i - delta_i (how much the patch itself would have to change).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import torch

from bench.analysis.plots import pyplot, save_png
from bench.core.errors import BenchError
from bench.core.store import cache_dir
from bench.engine.protocol import build_method, load_base, module_key
from bench.models.ffn import decoder_layers
from bench.models.loading import tensor_files
from bench.models.precision import DTYPES
from bench.models.training import TrainOptions

ATTENTION_NAMES = ("self_attn.", ".attention.", ".attn.")
FFN_NAMES = (".mlp.", ".feed_forward.")
LAYER_INDEX = re.compile(r"layers?\.(\d+)\.|\.h\.(\d+)\.")

# Probe texts for pairs without a synthetic world: math, code, facts and prose, as in the papers' suites.
GENERIC_PROBES = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "Question: A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total?",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "The capital of France is Paris, and the river that runs through it is the Seine.",
    "Water boils at 100 degrees Celsius at sea level, but at lower temperatures on high mountains.",
    "import numpy as np\nx = np.linspace(0, 1, 100)\nprint(x.mean())\n",
    "She put the book on the shelf because it was too heavy to carry any further.",
    "If a train travels 60 miles per hour for 3 hours, it covers 180 miles.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\n",
    "In 1969, Apollo 11 landed on the Moon and Neil Armstrong became the first person to walk on it.",
    "To solve 3x + 5 = 20, subtract 5 from both sides and divide by 3, so x = 5.",
    "A healthy breakfast can include oats, fruit, yogurt and a glass of water.",
    "The mitochondria is the part of the cell that produces most of its energy.",
    "for i in range(10):\n    total += i * i\n",
]


# ---- weights ------------------------------------------------------------------------------------

def matrix_group(name: str) -> str | None:
    """attention | ffn | None (embeddings, norms, biases: not what the papers compare)."""
    if not name.endswith(".weight"):
        return None
    if any(a in name for a in ATTENTION_NAMES) and "norm" not in name:
        return "attention"
    if any(f in name for f in FFN_NAMES) and "norm" not in name:
        return "ffn"
    return None


def layer_of(name: str) -> int | None:
    match = LAYER_INDEX.search(name)
    return int(next(g for g in match.groups() if g is not None)) if match else None


@torch.no_grad()
def weight_change(old_dir: Path, new_dir: Path) -> dict:
    """Relative Frobenius change of attention and FFN matrices, overall and per layer."""
    from safetensors import safe_open

    old_files, new_files = tensor_files(old_dir), tensor_files(new_dir)
    diff_sq, base_sq = defaultdict(float), defaultdict(float)  # keyed by (group, layer) and (group, None)
    for name, old_file in sorted(old_files.items()):
        group = matrix_group(name)
        if group is None or name not in new_files:
            continue
        with safe_open(str(old_file), framework="pt") as a, safe_open(str(new_files[name]), framework="pt") as b:
            w_old, w_new = a.get_tensor(name).float(), b.get_tensor(name).float()
        d, n = float(torch.sum((w_new - w_old) ** 2)), float(torch.sum(w_old ** 2))
        for key in ((group, layer_of(name)), (group, None), ("all", None)):
            diff_sq[key] += d
            base_sq[key] += n

    def rel(key):
        return (diff_sq[key] / base_sq[key]) ** 0.5 if base_sq.get(key) else 0.0

    layers = sorted({layer for group, layer in base_sq if layer is not None})
    return {"attention": rel(("attention", None)), "ffn": rel(("ffn", None)), "overall": rel(("all", None)),
            "layers": [{"layer": i, "attention": rel(("attention", i)), "ffn": rel(("ffn", i))} for i in layers]}


# ---- activations --------------------------------------------------------------------------------

def probe_texts(pair, probe_file: Path | None = None, n: int = 32) -> list[str]:
    """A fixed probe set: the file's lines, else the tiny world's text (both versions), else generic text."""
    if probe_file is not None:
        try:
            lines = [line.rstrip("\n") for line in Path(probe_file).read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise BenchError(f"cannot read probe file {probe_file}: {error}") from None
        if not lines:
            raise BenchError(f"probe file {probe_file} has no text lines")
        return lines[:n]
    world = pair.world()
    if world is not None:
        return world.corpus(0, n // 2, seed=12345) + world.corpus(1, n - n // 2, seed=12345)
    return GENERIC_PROBES[:n]


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@torch.no_grad()
def capture_activations(model, tokenizer, texts: list[str], max_tokens: int = 64) -> tuple[dict, torch.Tensor]:
    """Per layer: attention output, FFN output and the residual leaving the layer, on CPU in float32."""
    layers = decoder_layers(model)
    if not layers:
        raise BenchError(f"no decoder layers (attention + FFN sub-layers) found in {type(model).__name__}")
    captured = defaultdict(list)
    handles = []
    for i, (layer, attention, ffn) in enumerate(layers):
        for kind, module in (("attn", getattr(layer, attention)), ("ffn", getattr(layer, ffn)), ("layer", layer)):
            handles.append(module.register_forward_hook(
                lambda _m, _args, out, key=(kind, i): captured[key].append(_first(out).float().cpu())))
    device = next(model.parameters()).device
    tokenizer.padding_side = "right"
    encoded = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
    try:
        model(input_ids=encoded["input_ids"].to(device), attention_mask=encoded["attention_mask"].to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {key: torch.cat(value) for key, value in captured.items()}, encoded["attention_mask"].bool()


def _cosine(a, b, mask):
    return float(torch.nn.functional.cosine_similarity(a[mask], b[mask], dim=-1).mean())


def activation_stats(old: tuple[dict, torch.Tensor], new: tuple[dict, torch.Tensor]) -> list[dict]:
    (acts_old, mask), (acts_new, mask_new) = old, new
    if not torch.equal(mask, mask_new):
        raise BenchError("the two versions tokenize the probe set differently; a per-token comparison needs one "
                         "tokenizer")
    rows = []
    for i in range(len({k[1] for k in acts_old})):
        ffn_o, ffn_n = acts_old[("ffn", i)][mask], acts_new[("ffn", i)][mask]
        row = {"layer": i, "attn_cosine": _cosine(acts_old[("attn", i)], acts_new[("attn", i)], mask),
               "ffn_cosine": _cosine(acts_old[("ffn", i)], acts_new[("ffn", i)], mask),
               "ffn_shift": float(((ffn_n - ffn_o).norm(dim=-1) / ffn_o.norm(dim=-1).clamp_min(1e-12)).mean())}
        for version, acts in (("old", acts_old), ("new", acts_new)):
            out, ffn = acts[("layer", i)][mask], acts[("ffn", i)][mask]
            entering = out - ffn  # the residual stream the FFN adds to
            row[f"ffn_gain_{version}"] = float((out.norm(dim=-1) / entering.norm(dim=-1).clamp_min(1e-12)).mean())
        rows.append(row)
    return rows


# ---- PortLLM Table 1 ----------------------------------------------------------------------------

def lora_deltas(module_dir: Path) -> dict[str, torch.Tensor]:
    """{base weight name: scaling * B @ A} of a saved peft LoRA module."""
    from safetensors import safe_open

    config = json.loads((module_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        raise BenchError(f"PortLLM's check needs plain LoRA modules; {module_dir} is not one")
    scaling = config["lora_alpha"] / config["r"]
    with safe_open(str(module_dir / "adapter_model.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k).float() for k in handle.keys()}
    deltas = {}
    for key, a in tensors.items():
        if ".lora_A." in key:
            b = tensors[key.replace(".lora_A.", ".lora_B.")]
            deltas[key.split(".lora_A.")[0].removeprefix("base_model.model.") + ".weight"] = scaling * b @ a
    return deltas


@torch.no_grad()
def portllm_check(new_dir: Path, old_module: Path, new_module: Path) -> list[dict]:
    """Per patched matrix: sigma_max and ||.||_F of theta' + delta_i and of delta'_i - delta_i."""
    from safetensors import safe_open

    delta_old, delta_new = lora_deltas(old_module), lora_deltas(new_module)
    files = tensor_files(new_dir)
    rows = []
    for name in sorted(set(delta_old) & set(delta_new)):
        if name not in files:
            raise BenchError(f"module {old_module} patches {name}, which the new base {new_dir} does not have")
        with safe_open(str(files[name]), framework="pt") as handle:
            w_new = handle.get_tensor(name).float()
        patched, gap = w_new + delta_old[name], delta_new[name] - delta_old[name]
        rows.append({"matrix": name, "layer": layer_of(name),
                     "patched_sigma_max": float(torch.linalg.matrix_norm(patched, ord=2)),
                     "patched_fro": float(torch.linalg.matrix_norm(patched)),
                     "gap_sigma_max": float(torch.linalg.matrix_norm(gap, ord=2)),
                     "gap_fro": float(torch.linalg.matrix_norm(gap))})
    return rows


def cached_module(method_name: str, pair, task, seed: int, overrides: dict | None = None) -> Path | None:
    """The cached module of (method, task, seed) if it was trained already, with the recipe `bench run` trained it
    with (`overrides`: its tuned recipe, "METHOD.option" keys) and in whichever precision (bf16 where asked, or
    auto on a real pair whose CPU probe prefers it; the precision is part of the key); never trains."""
    method = build_method(method_name, overrides, pair, task)
    for precision in DTYPES:  # fp32 first
        options = TrainOptions(precision=precision)
        path = cache_dir() / "modules" / module_key(method, pair, task, seed, overrides, options)
        if (path / "adapter_model.safetensors").exists():
            return path
    return None


# ---- the command ----------------------------------------------------------------------------------

def diagnose(pair, tasks: list, seeds: list[int], probe_file: Path | None = None,
             task_overrides: dict[str, dict] | None = None) -> dict:
    """task_overrides: the tuned recipes `bench run` applies ({task: {"METHOD.option": value}}), so the Table 1
    check finds the leaderboard's finetune_old / finetune_new modules, not modules of the methods' defaults."""

    report = {"kind": "diagnose", "pair": pair.name,
              "versions": {"old": pair.version_id("old"), "new": pair.version_id("new")},
              "weights": weight_change(Path(pair.base_dir("old")), Path(pair.base_dir("new")))}
    texts = probe_texts(pair, probe_file)
    captured = []
    for version in ("old", "new"):  # one model in memory at a time (7B pairs)
        model, tokenizer = load_base(pair, version)
        captured.append(capture_activations(model, tokenizer, texts))
        del model
    report["probes"] = len(texts)
    report["activations"] = activation_stats(*captured)
    checks = []
    for task in tasks:
        for seed in seeds:
            recipes = (task_overrides or {}).get(task.name)
            old_module = cached_module("finetune_old", pair, task, seed, recipes)
            new_module = cached_module("finetune_new", pair, task, seed, recipes)
            if old_module and new_module:
                checks.append({"task": task.name, "seed": seed,
                               "matrices": portllm_check(Path(pair.base_dir("new")), old_module, new_module)})
    report["portllm"] = checks
    return report


def tables(report: dict, fmt: str = "github") -> str:
    from tabulate import tabulate

    w = report["weights"]
    parts = [f"## Update anatomy: {report['pair']} ({report['versions']['old']} -> {report['versions']['new']})",
             "", f"Relative weight change ||W1-W0||/||W0||: attention {w['attention']:.4f}, FFN {w['ffn']:.4f}, "
             f"all {w['overall']:.4f}", "",
             tabulate([[r["layer"], f"{r['attention']:.4f}", f"{r['ffn']:.4f}"] for r in w["layers"]],
                      ["layer", "attention rel. change", "FFN rel. change"], tablefmt=fmt, disable_numparse=True),
             "", f"Activations on {report['probes']} probe texts (cosine old vs new; FFN shift "
             "||FFN1-FFN0||/||FFN0||; FFN gain ||h+FFN(h)||/||h||):", "",
             tabulate([[r["layer"], f"{r['attn_cosine']:.4f}", f"{r['ffn_cosine']:.4f}", f"{r['ffn_shift']:.4f}",
                        f"{r['ffn_gain_old']:.4f}", f"{r['ffn_gain_new']:.4f}"] for r in report["activations"]],
                      ["layer", "attn cos", "FFN cos", "FFN shift", "FFN gain old", "FFN gain new"],
                      tablefmt=fmt, disable_numparse=True)]
    if not report["portllm"]:
        parts += ["", "PortLLM Table 1 check: needs finetune_old and finetune_new modules in the cache "
                  "(run `bench run --methods finetune_old,finetune_new` first)."]
    for check in report["portllm"]:
        rows = check["matrices"]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("patched_sigma_max", "patched_fro",
                                                                 "gap_sigma_max", "gap_fro")}
        parts += ["", f"PortLLM Table 1 check ({check['task']}, seed {check['seed']}), mean over "
                  f"{len(rows)} patched matrices:", "",
                  tabulate([["theta' + delta_i", f"{mean['patched_sigma_max']:.4f}", f"{mean['patched_fro']:.4f}"],
                            ["delta'_i - delta_i", f"{mean['gap_sigma_max']:.4f}", f"{mean['gap_fro']:.4f}"]],
                           ["", "sigma_max", "Frobenius"], tablefmt=fmt, disable_numparse=True)]
    return "\n".join(parts) + "\n"


def plot(report: dict, out: Path) -> Path:
    from matplotlib.ticker import MaxNLocator


    plt = pyplot()
    layers = [r["layer"] for r in report["weights"]["layers"]]
    acts = report["activations"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(layers, [r["attention"] for r in report["weights"]["layers"]], "o-", label="attention")
    axes[0].plot(layers, [r["ffn"] for r in report["weights"]["layers"]], "s-", label="FFN")
    axes[0].set(title="relative weight change", xlabel="layer", ylabel="||W1-W0|| / ||W0||")
    idx = [r["layer"] for r in acts]
    axes[1].plot(idx, [r["attn_cosine"] for r in acts], "o-", label="attention output")
    axes[1].plot(idx, [r["ffn_cosine"] for r in acts], "s-", label="FFN output")
    axes[1].set(title="cosine similarity, old vs new", xlabel="layer", ylabel="cosine")
    axes[2].plot(idx, [r["ffn_gain_old"] for r in acts], "o-", label="old")
    axes[2].plot(idx, [r["ffn_gain_new"] for r in acts], "s-", label="new")
    axes[2].set(title="FFN effect on activation magnitude", xlabel="layer", ylabel="||h + FFN(h)|| / ||h||")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=min(len(layers), 12), integer=True))  # 30 layers stay legible
        ax.legend()
    fig.suptitle(f"{report['pair']}: update anatomy")
    return save_png(fig, out)
