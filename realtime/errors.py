"""One exception type for every user-facing error: the CLI prints its message as one line."""


class GestureError(Exception):
    """A problem the user can fix (bad file, bad config key, missing weights...).

    The message must name the file, row, field or key at fault.
    """


class ConfigError(GestureError, ValueError):
    """config.yaml or a model's model.json is invalid; the message names the key."""


def writable_file(path, flag: str):
    """``path`` (a ``pathlib.Path``) if the output file that ``flag`` names can be written there: the name is
    not a folder's, its folder exists or can be made (no file stands in its way), and the nearest existing
    folder takes a file (a read-only place does not). Checked before minutes of work whose result would
    otherwise be lost; nothing is created (the writer makes the folder). Else a :class:`GestureError`."""
    import os
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        raise GestureError(f"{path}: {flag} names a folder; give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise GestureError(f"{path}: {flag} cannot make its folder ({folder} is a file)")
    probe = folder / f".{path.stem}.{os.getpid()}.probe"
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise GestureError(f"{path}: {flag} cannot write there ({e.strerror or e})") from None
    return path
