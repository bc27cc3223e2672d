"""Parsing option values shared by every command: numbers, lists of numbers, typed --set values."""

from __future__ import annotations

from bench.core.errors import BenchError


def parse_value(text: str):
    """'3' -> 3, '0.1' -> 0.1, 'true' -> True; anything else stays a string."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_numbers(text: str, option: str, convert=int, noun: str = "integers") -> list:
    """'0,1,2' -> [0, 1, 2] for a comma-separated option; a one-line error naming the option otherwise."""
    try:
        values = [convert(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"{option} takes comma-separated {noun}, got {text!r}") from None
    if not values:
        raise BenchError(f"{option} is empty")
    return values
