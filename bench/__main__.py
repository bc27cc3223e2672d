"""`python -m bench` and the `bench` console script."""

import os


def main():
    # Library tqdm bars that take no explicit `disable` (lm-eval's request building) read this when tqdm is
    # imported, so it is set before the CLI imports the libraries.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from bench.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
