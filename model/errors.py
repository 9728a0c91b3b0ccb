"""The one exception type for user mistakes.

Every room raises :class:`DotcomError` for bad input a user can fix (a wrong path, a
checkpoint of another variant, an input size that is not a multiple of 32). The CLI
prints its message as a single line and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class DotcomError(Exception):
    """A user-facing error: the message is the whole story, no traceback needed."""
