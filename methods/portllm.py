"""PortLLM: a LoRA "model patch" trained on the old base, merged into the new base's weights (training-free).

Recipe (PortLLM): r=8 on q, k, v, o, gate, up, down; constant lr 4e-4 (x10 for the tiny world,
as for every recipe here). The patch is theta' + scaling * B @ A, computed by peft's merge.
For plain LoRA this equals direct transfer of the same LoRA up to merge rounding: the
methods differ in recipe (rank, targets, lr) and in landing merged rather than as an adapter.
"""

from bench.method import ALL_LINEAR, METHODS, Method, Recipe


@METHODS.register("portllm")
class PortLLM(Method):
    name = "portllm"
    trains_on = "old"
    lands_on = "new"
    default_recipe = Recipe(rank=8, alpha=16, targets=ALL_LINEAR, lr=4e-3, schedule="constant")

    def land(self, module_dir, target_base):
        # theta' + delta: merge the LoRA delta into the new base's weights, then drop the adapter.
        return super().land(module_dir, target_base).merge_and_unload().eval()
