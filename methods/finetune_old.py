"""Fine-tune_o: ordinary PEFT fine-tuning on the old base, used where it was trained."""

from methods.base import METHODS, Method


@METHODS.register("finetune_old")
class FinetuneOld(Method):
    name = "finetune_old"
    trains_on = "old"
    lands_on = "old"  # as an adapter, on the base it was trained on
