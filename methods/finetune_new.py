"""Fine-tune_n: re-tuning on the new base. The ideal, and the cost every transfer method avoids."""

from methods.base import METHODS, Method


@METHODS.register("finetune_new")
class FinetuneNew(Method):
    name = "finetune_new"
    trains_on = "new"
    lands_on = "new"
