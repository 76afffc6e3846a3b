"""The exceptions a script turns into one line: problems a user can cause and fix (bad flags, bad data, bad paths),
and a training run stopped on request."""

import re

_TF_LOCATION = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]")


class MnistTfError(Exception):
    """A user-facing error: its message is one line that names the problem and, where possible, the fix.

    Scripts print it as `error: <message>` and exit non-zero; anything else is a bug and keeps its traceback.
    """


class Interrupted(Exception):
    """Training stopped on request after saving a checkpoint; the message says how to resume."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signal_number


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's run to pages), or its type when it has none.

    TensorFlow's op errors also carry where they happened (`{{function_node ...}}`, `[Op:SaveV2]`): dropped.
    """
    if isinstance(error, OSError) and error.strerror:
        return error.strerror  # "No space left on device", not "[Errno 28] No space left on device: '/x/y.tmp'"
    text = _TF_LOCATION.sub("", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def assertion_message(error: BaseException) -> str:
    """The message of the in-graph assertion that failed (`tf.debugging.Assert`), not TensorFlow's page of
    context around it; `first_line` for any other error."""
    for line in str(error).splitlines():
        if line.startswith("assertion failed: ["):  # in a graph: "... [message]" or "... [message] [data]"
            message, separator, data = line.removeprefix("assertion failed: [").rpartition("] [")
            return f"{message} [{data}" if separator else data.removesuffix("]")
        if "Summarized data: b'" in line:  # eagerly: "Expected ... to be true. Summarized data: b'message'"
            return line.partition("Summarized data: b'")[2].removesuffix("'")
    return first_line(error)
