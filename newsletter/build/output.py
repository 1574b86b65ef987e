"""Writing build output: atomically, only when the bytes change, with a manifest per issue
that records the hash of the inputs it was made from (so an unchanged issue is not rebuilt)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from newsletter import __version__
from newsletter.errors import IssueFileError
from newsletter.workspace import read_issue_bytes

MANIFEST = "manifest.json"


def temp_prefix(path: Path) -> str:
    """Temp files are named after their target and their writer's process id, so that the
    debris of a killed writer can be told from another writer's work in progress."""
    return f".{path.name}.{os.getpid()}."


def remove_debris(folder: Path) -> int:
    """Delete temp files left in `folder` by writers that no longer run; return how many."""
    removed = 0
    for tmp in folder.glob(".*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 3)[-3])
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
            removed += 1
        except (ValueError, IndexError, PermissionError):
            continue
    return removed


@contextmanager
def _atomic_file(path: Path, mode: str, **options: Any) -> Iterator[IO[Any]]:
    """Write through a temp file in the same folder, fsync, rename: a reader never sees half
    a file, and the old one stays whole until the new one is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **options) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes) -> None:
    with _atomic_file(path, "wb") as handle:
        handle.write(data)


def atomic_text(path: Path, newline: str = "") -> AbstractContextManager[IO[Any]]:
    """A text file (UTF-8) written atomically, for output streamed row by row."""
    return _atomic_file(path, "w", encoding="utf-8", newline=newline)


def atomic_create(path: Path, data: bytes) -> None:
    """Write a new file atomically, never over an existing one (FileExistsError): the temp
    file is hard-linked into place, which fails if the name is taken, even in a race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write unless the file already holds exactly these bytes; True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True


@dataclass
class Manifest:
    """What the build knows of one built issue: enough for the archive and feeds."""

    newsletter: str
    date: str
    status: str
    subject: str
    preheader: str | None
    title: str
    web_url: str
    article_count: int
    input_hash: str
    sizes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    feed_html: str = ""
    # the stories (`attribution.ArticleRecord`s as dicts); None in a manifest written before
    # they were recorded, which makes the issue stale
    articles: list[dict[str, Any]] | None = None

    def to_bytes(self) -> bytes:
        return (
            json.dumps(asdict(self), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        ).encode()

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The manifest in `folder`, or None if missing or unreadable (then it is rebuilt)."""
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


class InputHashes:
    """The hash of everything that shapes an issue's output: this version, the config, every
    template (hashed once per build, when first needed), the issue file and its sources."""

    def __init__(self, config_path: Path, templates: Callable[[], list[Path]]):
        self._config_path = config_path
        self._templates = templates
        self._shared: str | None = None

    def shared(self) -> str:
        """Everything besides the issue itself that shapes its output."""
        if self._shared is None:
            h = hashlib.sha256(__version__.encode())
            h.update(self._config_path.read_bytes())
            for path in self._templates():
                h.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes())
            self._shared = h.hexdigest()
        return self._shared

    def of(self, path: Path, sources: list[Path]) -> str:
        """The input hash of the issue file `path`, which collects from `sources`."""
        h = hashlib.sha256(self.shared().encode())
        for part in [path, *sources]:
            h.update(str(part.name).encode() + b"\0")
            try:
                h.update(read_issue_bytes(part))
            except IssueFileError:  # missing, or a FIFO, a device, a huge file: load_issue says so
                h.update(b"\0missing" if not part.exists() else b"\0unreadable")
        return h.hexdigest()
