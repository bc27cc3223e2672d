"""Pairs of base models: an old base and its update(s), tiny ones built here or released ones from the hub."""

from bench.pairs.base import Pair
from bench.pairs.registry import PAIRS, get_pair

__all__ = ["PAIRS", "Pair", "get_pair"]
