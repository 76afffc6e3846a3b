"""The one exception type for problems a user can cause and fix (bad flags, bad data, bad paths)."""


class MnistTfError(Exception):
    """A user-facing error: its message is one line that names the problem and, where possible, the fix.

    Scripts print it as `error: <message>` and exit non-zero; anything else is a bug and keeps its traceback.
    """
