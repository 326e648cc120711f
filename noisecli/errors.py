"""The one exception type for bad input: the CLI prints its message as one line and exits with 2."""


class InputError(Exception):
    """Bad input from the user (a flag, a file, a dataset). Message is a single human-readable line."""
