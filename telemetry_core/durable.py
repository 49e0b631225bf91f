"""Files that readers see whole or not at all, and that survive a crash once written.

A file is written under a hidden temporary name beside its target (the pipeline and every glob
skip hidden names), fsynced, renamed over the target, and the folder is fsynced so the rename
itself is durable.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(folder: Path) -> None:
    """Create `folder` and its missing parents so that their entries survive a crash too."""
    if folder.is_dir():
        return
    created = []
    path = folder
    while not path.is_dir():
        created.append(path)
        path = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    for path in created:
        fsync_dir(path.parent)


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temporary path to write; when the block ends without error it replaces `target`."""
    ensure_dir(target.parent)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes | memoryview) -> Path:
    """Replace `target` with `data`, durably and atomically."""
    with replacing(target) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return target
