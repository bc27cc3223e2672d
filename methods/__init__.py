"""One file per transfer method; importing this package registers them all."""

from methods import direct_transfer, finetune_new, finetune_old, portllm, trans_peft  # noqa: F401
