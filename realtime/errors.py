"""One exception type for every user-facing error: the CLI prints its message as one line."""


class GestureError(Exception):
    """A problem the user can fix (bad file, bad config key, missing weights...).

    The message must name the file, row, field or key at fault.
    """


class ConfigError(GestureError, ValueError):
    """config.yaml or a model's model.json is invalid; the message names the key."""
