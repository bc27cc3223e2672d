"""Kept for plugins written against 0.1: the Method contract now lives in methods.base."""

from methods.base import ALL_LINEAR, ATTENTION, METHODS, PEFT_TYPES, Method, MethodContext, Recipe

__all__ = ["ALL_LINEAR", "ATTENTION", "METHODS", "PEFT_TYPES", "Method", "MethodContext", "Recipe"]
