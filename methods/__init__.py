"""The Method contract (methods.base) and one file per transfer method; importing this package registers them."""

from methods import cross_lora, direct_transfer, finetune_new, finetune_old, portllm, trans_peft, warm_retune  # noqa: F401
from methods.base import METHODS, Method, MethodContext

__all__ = ["METHODS", "Method", "MethodContext"]
