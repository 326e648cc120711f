"""The one exception type for bad input: the CLI prints its message as one line and exits with 2."""


class InputError(Exception):
    """Bad input from the user (a flag, a file, a dataset). Message is a single human-readable line."""


def warn(message: str) -> None:
    """One line on stderr for input that is used but looks wrong (continuing is defensible)."""
    import sys
    print(f"noisecli: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


class Interrupted(BaseException):
    """SIGINT or SIGTERM: staging folders are removed on the way out (or the loop saved a checkpoint), and
    the CLI exits with 128 + the signal's number, as shells do (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def raise_if_interrupted(summary: dict) -> None:
    """A training stage that stopped on a signal (after saving) ends as that signal would."""
    if summary.get("status") == "interrupted" and summary.get("signal"):
        raise Interrupted(summary["signal"])


class RunError(Exception):
    """A run that cannot go on (e.g. the loss became NaN). The CLI prints one line and exits with 1."""
