"""The one exception type for bad input: the CLI prints its message as one line and exits with 2."""


class InputError(Exception):
    """Bad input from the user (a flag, a file, a dataset). Message is a single human-readable line."""


class RunError(Exception):
    """A run that cannot go on (e.g. the loss became NaN). The CLI prints one line and exits with 1."""
