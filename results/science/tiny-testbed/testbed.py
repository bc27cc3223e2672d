"""What the diagnostics in this folder share: the LoRA targets they compare, and the pair as it was before the
testbed changes of 2026-12-04, so that a script reruns what it measured (the default pair now has a 2,400-step
update, and the tiny suite puts tiny_arith's LoRA on every linear layer)."""

from bench.pairs import PAIRS

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
EVERY_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def pair_with_800_step_update():
    """The default tiny pair with v1's update of before 2026-12-04 (800 steps): the same shipped checkpoint."""
    return PAIRS.get("tiny").with_update("full", 800 / PAIRS.get("tiny").spec.update.steps)
