"""One exception type for bad user input, so every entry point can print one line and exit non-zero."""


class NexaError(Exception):
    """A user-facing error: the message names the field or file and says how to fix it."""

    exit_code = 2

    def __str__(self) -> str:
        # Keep messages on one line even when wrapped exceptions carry newlines.
        return " ".join(super().__str__().split())
