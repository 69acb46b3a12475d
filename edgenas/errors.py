"""The one exception type users see: a single line naming the problem and its fix."""


class EdgenasError(Exception):
    """A problem with the user's input or environment, worded as `what is wrong; how to fix it`."""
