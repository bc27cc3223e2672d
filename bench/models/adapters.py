"""Houlsby bottleneck Adapters (Houlsby et al., 2019), as the Trans-PEFT paper's Table 1 uses them.

After the attention sub-layer and after the FFN sub-layer of every decoder layer:
    h <- h + up(act(down(h)))        down: hidden -> r, up: r -> hidden (zero-initialised: starts as identity)
Written here because no maintained library fits transformers 5 (AdapterHub's `adapters` 1.3.0 pins
transformers ~=4.57.6). The adapters are put into the model in place, so the result is still the
transformers model (generate, lm-eval's HFLM and save/load work unchanged); only the adapters are
saved, as safetensors.

When Trans-PEFT drops an FFN sub-layer (bench/ffn.py skipped_output), the FFN adapter still runs: on
the FFN's input hidden state, since the FFN output it would have adapted does not exist.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bench.core.errors import BenchError
from bench.models.ffn import decoder_layers, is_skipped

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
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)

    def delta(self, h: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(h.to(self.down.weight.dtype)))).to(h.dtype)


class AdaptedSublayer(torch.nn.Module):
    """A sub-layer followed by its adapter. The inner module keeps its attribute name (mlp / self_attn ...)."""

    def __init__(self, attribute: str, inner: torch.nn.Module, adapter: Bottleneck):
        super().__init__()
        self.attribute = attribute
        setattr(self, attribute, inner)  # so bench/ffn.py still finds the FFN and its down projection
        self.bottleneck_adapter = adapter

    def forward(self, hidden_states, *args, **kwargs):
        out = getattr(self, self.attribute)(hidden_states, *args, **kwargs)
        h = out[0] if isinstance(out, tuple) else out
        if is_skipped(h):  # Trans-PEFT dropped this FFN: the adapter runs on what would have entered it
            h = self.bottleneck_adapter.delta(hidden_states)
        else:
            h = h + self.bottleneck_adapter.delta(h)
        return (h, *out[1:]) if isinstance(out, tuple) else h


def _sublayers(model: torch.nn.Module):
    """(parent, attribute) of the attention and FFN sub-layers of every decoder layer, in order."""
    found = [(layer, attribute) for layer, attention, ffn in decoder_layers(model) for attribute in (attention, ffn)]
    if not found:
        raise BenchError(f"no decoder layers found for bottleneck adapters in {type(model).__name__}")
    return found


def add_adapters(model: torch.nn.Module, config: BottleneckConfig) -> torch.nn.Module:
    """Freeze the model and put a trainable adapter after every attention and FFN sub-layer (in place)."""
    for param in model.parameters():
        param.requires_grad = False
    hidden = model.config.hidden_size
    reference = next(model.parameters())
    for parent, attribute in _sublayers(model):
        adapter = Bottleneck(hidden, config).to(reference.device)
        setattr(parent, attribute, AdaptedSublayer(attribute, getattr(parent, attribute), adapter))
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
