"""Houlsby bottleneck Adapters (Houlsby et al., 2019), as the Trans-PEFT paper's Table 1 uses them.

After the attention sub-layer and after the FFN sub-layer of every decoder layer:
    h <- h + up(act(down(h)))        down: hidden -> r, up: r -> hidden
Initialised as Trans-PEFT's reference (modeling_qwen2.py): down's weight ~ N(0, 0.02), up's weight zero, both
biases at PyTorch's default init. The reference leaves up's bias non-zero, so an untrained adapter adds a small
constant rather than being the identity.
Written here because no maintained library fits transformers 5 (AdapterHub's `adapters` 1.3.0 pins
transformers ~=4.57.6). The adapters are put into the model in place, so the result is still the
transformers model (generate, lm-eval's HFLM and save/load work unchanged); only the adapters are
saved, as safetensors.

When Trans-PEFT drops an FFN sub-layer (bench/models/ffn.py skipped_output), the FFN adapter still runs, as in
the reference: on the raw residual stream, before the FFN's LayerNorm, so the layer outputs
residual + up(act(down(residual))). The FFN wrapper learns that residual from a pre-hook on the norm.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.core.errors import BenchError
from bench.models.ffn import decoder_layers, ffn_norm, is_skipped

WEIGHTS, CONFIG = "adapter_model.safetensors", "bottleneck_adapter.json"


@dataclass(frozen=True)
class BottleneckConfig:
    bottleneck: int = 8          # r: the paper uses rank 32 for every PEFT type on commonsense
    activation: str = "relu"


class Bottleneck(torch.nn.Module):
    def __init__(self, hidden: int, config: BottleneckConfig):
        super().__init__()
        self.down = torch.nn.Linear(hidden, config.bottleneck)
        self.up = torch.nn.Linear(config.bottleneck, hidden)
        self.act = {"relu": torch.nn.ReLU(), "gelu": torch.nn.GELU(), "silu": torch.nn.SiLU()}[config.activation]
        # As the reference: A ~ N(0, 0.02), B's weight zero; both biases keep nn.Linear's init (the reference
        # leaves B's bias non-zero too).
        torch.nn.init.normal_(self.down.weight, std=0.02)
        torch.nn.init.zeros_(self.up.weight)

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(h.to(self.down.weight.dtype)))).to(h.dtype)


class AdaptedSublayer(torch.nn.Module):
    """A sub-layer followed by its adapter. The inner module keeps its attribute name (mlp / self_attn ...)."""

    def __init__(self, attribute: str, inner: torch.nn.Module, adapter: Bottleneck):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, inner)  # so bench/models/ffn.py still finds the FFN and its down projection
        self.bottleneck_adapter = adapter
        self.residual = None  # FFN wrappers: the residual stream of the current forward (remember_residual)

    def remember_residual(self, norm, args):
        """Pre-hook on the FFN's norm: its input is the residual stream a dropped FFN's adapter runs on."""
        self.residual = args[0]

    def forward(self, hidden_states, *args, **kwargs):
        out = getattr(self, self.attribute)(hidden_states, *args, **kwargs)
        h = out[0] if isinstance(out, tuple) else out
        residual, self.residual = self.residual, None  # never kept past this forward
        if is_skipped(h):  # Trans-PEFT dropped this FFN: the adapter runs on the raw residual (the reference)
            if residual is None:
                raise BenchError(f"a dropped FFN's adapter needs the residual stream, but no norm in front of "
                                 f"{type(getattr(self, self.attribute)).__name__} is known (bench/models/ffn.py)")
            h = self.bottleneck_adapter.delta(residual)  # the decoder layer adds the residual itself
        else:
            h = h + self.bottleneck_adapter.delta(h)
        return (h, *out[1:]) if isinstance(out, tuple) else h


def _sublayers(model: torch.nn.Module):
    """(parent, attribute, is_ffn) of the attention and FFN sub-layers of every decoder layer, in order."""
    found = [(layer, attribute, attribute == ffn) for layer, attention, ffn in decoder_layers(model)
             for attribute in (attention, ffn)]
    if not found:
        raise BenchError(f"no decoder layers found for bottleneck adapters in {type(model).__name__}")
    return found


def add_adapters(model: torch.nn.Module, config: BottleneckConfig) -> torch.nn.Module:
    """Freeze the model and put a trainable adapter after every attention and FFN sub-layer (in place)."""
    for param in model.parameters():
        param.requires_grad = False
    hidden = model.config.hidden_size
    reference = next(model.parameters())
    for parent, attribute, is_ffn in _sublayers(model):
        adapter = Bottleneck(hidden, config).to(reference.device)
        adapted = AdaptedSublayer(attribute, getattr(parent, attribute), adapter)
        setattr(parent, attribute, adapted)
        norm = ffn_norm(parent) if is_ffn else None
        if norm is not None:
            norm.register_forward_pre_hook(adapted.remember_residual)
    model.bottleneck_config = config
    return model


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if ".bottleneck_adapter." in n}


def save_adapters(model: torch.nn.Module, out: Path) -> None:
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(adapter_state(model), out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps(asdict(model.bottleneck_config), sort_keys=True))


def load_adapters(base: torch.nn.Module, module_dir: Path) -> torch.nn.Module:
    """Put saved adapters on a base of the same shapes (the compatibility check guarantees it)."""
    from safetensors.torch import load_file

    config = BottleneckConfig(**json.loads((Path(module_dir) / CONFIG).read_text()))
    model = add_adapters(base, config)
    state = load_file(Path(module_dir) / WEIGHTS, device=str(next(base.parameters()).device))
    expected = adapter_state(model)
    if set(state) != set(expected):
        missing = sorted(set(expected) ^ set(state))[0]
        raise BenchError(f"adapter in {module_dir} does not fit this base: tensor {missing} differs")
    model.load_state_dict(state, strict=False)
    return model.eval()
