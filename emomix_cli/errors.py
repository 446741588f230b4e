"""The one user-facing error type.

Library code raises :class:`EmomixError` with a message that names the problem and the fix;
the CLI renders it as one red line and exits non-zero, without a traceback.
"""


class EmomixError(Exception):
    """An error caused by the user's input, with a one-line message saying what to do."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
