"""Can a module trained on the old base land on the new one? Checked before any training.

Compared from config.json and safetensors headers only (shapes, never weights), so checking
a 7B pair reads kilobytes. Rules:
  - the same architecture class (config "architectures");
  - every tensor of the old base exists in the new one with the same shape: this covers every
    module a LoRA, DoRA or Adapter can target (a GQA change shows in k_proj / v_proj) and the
    embedding and LM-head rows.
Vocabulary policy: a grown vocabulary (e.g. 151665 -> 152064 embedding rows) is refused, not
truncated or padded: PortLLM's merge and an adapter's saved embedding-side state are defined
only on identical shapes, and silently resizing would hide a different model behind a score.
"""

from __future__ import annotations

from bench.core.errors import BenchError
from bench.pairs.base import Pair


def check_compatible(old: tuple[dict, dict], new: tuple[dict, dict], names: tuple[str, str] = ("old", "new")) -> None:
    """Raise a one-line BenchError naming the first difference that breaks carrying a module across."""
    (old_config, old_shapes), (new_config, new_shapes) = old, new
    old_arch, new_arch = old_config.get("architectures"), new_config.get("architectures")
    if old_arch != new_arch:
        raise BenchError(f"incompatible pair: architecture {old_arch} ({names[0]}) vs {new_arch} ({names[1]})")
    for tensor, shape in old_shapes.items():
        if tensor not in new_shapes:
            raise BenchError(f"incompatible pair: tensor {tensor} of {names[0]} is missing from {names[1]}")
        if tuple(new_shapes[tensor]) != tuple(shape):
            raise BenchError(f"incompatible pair: tensor {tensor} has shape {list(shape)} in {names[0]} "
                             f"but {list(new_shapes[tensor])} in {names[1]}")
    for tensor in new_shapes:
        if tensor not in old_shapes:
            raise BenchError(f"incompatible pair: tensor {tensor} of {names[1]} is missing from {names[0]}")


def check_pair(pair: Pair) -> None:
    """Every consecutive pair of versions (old -> new, or each hop of a chain) must be compatible."""
    labels = pair.version_names() if pair.version_count() > 2 else ["old", "new"]
    previous = pair.architecture(labels[0])
    for label, prev_label in zip(labels[1:], labels):
        current = pair.architecture(label)
        check_compatible(previous, current, (pair.version_id(prev_label), pair.version_id(label)))
        previous = current
