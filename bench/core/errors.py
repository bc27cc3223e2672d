"""User-facing errors: the CLI prints them as one line and exits 2."""


class BenchError(Exception):
    """Bad input or an unusable environment; the message is the whole story."""
