"""One exception type for every user-facing error: the CLI prints its message as one line."""


class GestureError(Exception):
    """A problem the user can fix (bad file, bad config key, missing weights...).

    The message must name the file, row, field or key at fault.
    """


class ConfigError(GestureError, ValueError):
    """config.yaml or a model's model.json is invalid; the message names the key."""


def writable_file(path, flag: str):
    """``path`` (a ``pathlib.Path``) if the output file that ``flag`` names can be written there: its folder
    exists or is made, the name is not a folder's, and the folder takes a file (a read-only place does not).
    Checked before minutes of work whose result would otherwise be lost; else a :class:`GestureError`."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise GestureError(f"{path}: {flag} names a folder; give a file name")
    probe = path.with_name(f".{path.stem}.{os.getpid()}.probe")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GestureError(f"{path}: {flag} cannot make its folder ({e.strerror or e})") from None
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise GestureError(f"{path}: {flag} cannot write there ({e.strerror or e})") from None
    return path
