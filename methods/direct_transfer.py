"""Direct transfer: finetune_old's module, never retrained, plugged into the new base as an adapter."""

from methods.base import METHODS, Method


@METHODS.register("direct_transfer")
class DirectTransfer(Method):
    name = "direct_transfer"
    reuses = "finetune_old"  # the very same trained module (and recipe) as finetune_old
    lands_on = "new"
