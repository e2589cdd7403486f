"""Files a command writes: checked before any request, written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

__all__ = ["journal_target", "output_file", "write_atomically"]


def output_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback that checks a file the command will write, when the line is read.

    Checked before the first request, because a run that buys IPs and then cannot say which
    costs money: the directory must exist and take a new file (tried for real: permission
    bits say nothing for root or on a read-only mount), and the path must not be a directory.

    Raises:
        click.BadParameter: the file could not be written (a usage error, exit 2).
    """
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_symlink():
        path = path.resolve()  # the file is replaced whole: replace the link's target, not it
    if path.is_dir():
        raise click.BadParameter(f"{str(path)!r} is a directory", ctx, param)
    directory = path.parent
    if not directory.is_dir():
        why = "is not a directory" if directory.exists() else "does not exist"
        raise click.BadParameter(f"directory {str(directory)!r} {why}", ctx, param)
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write in {str(directory)!r}: {exc.strerror or exc}", ctx, param) from None
    return path  # an existing file is replaced, not written in: the directory is what counts


def journal_target(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | Path | None:
    """A click callback for ``--journal``: a URL (``redis://...``) as it is, else a file
    checked as `output_file` checks it."""
    if value is None or "://" in value:
        return value
    return output_file(ctx, param, Path(value))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            umask = os.umask(0o022)
            os.umask(umask)
            os.fchmod(file.fileno(), 0o666 & ~umask)  # as open() would, not mkstemp's 0600
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
