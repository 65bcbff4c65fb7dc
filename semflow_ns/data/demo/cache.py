"""Finding, reusing and safely (re)generating the demo scene on disk.

A folder is recognised as a demo scene by the extra keys ``demo_version`` and ``demo_config`` in its
``transforms.json``. New scenes are rendered into a hidden sibling folder and renamed into place when
complete, so an interrupted run never leaves a half-written scene behind that would later be reused.
Folders that are not demo scenes are never modified.
"""

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from enum import Enum
from pathlib import Path

from rich.console import Console

from semflow_ns.data.demo.config import DEMO_VERSION, DemoSceneConfig
from semflow_ns.data.demo.generate import generate_demo_scene
from semflow_ns.data.format import SCENE_FILE

DEMO_DIR_ENV = "SEMFLOW_DEMO_DIR"
"""Environment variable that overrides the default demo folder."""
DEMO_ENTRIES = frozenset({SCENE_FILE, "images", "semantics", "instances", "flow", "eval", "gt"})
"""Top-level names a generated demo folder contains; an outdated demo with anything else is kept aside."""


class DemoStatus(Enum):
    """What a folder holds with respect to a requested demo configuration."""

    MISSING = "missing"
    """No folder, or an empty one."""
    CURRENT = "current"
    """A demo scene of the current version rendered with the requested configuration."""
    OUTDATED = "outdated"
    """A demo scene of another version or configuration."""
    FOREIGN = "foreign"
    """Something else (not a file or folder we created): never touched."""


def default_demo_dir() -> Path:
    """``$SEMFLOW_DEMO_DIR`` if set, else ``~/.cache/semflow_ns/demo``."""
    override = os.environ.get(DEMO_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "semflow_ns" / "demo"


def demo_status(path: Path, config: DemoSceneConfig) -> DemoStatus:
    """Classifies ``path`` for ``config`` (see :class:`DemoStatus`) without modifying anything."""
    path = Path(path).expanduser()
    if not path.exists():
        return DemoStatus.MISSING
    if not path.is_dir():
        return DemoStatus.FOREIGN
    if not any(path.iterdir()):
        return DemoStatus.MISSING
    try:
        meta = json.loads((path / SCENE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return DemoStatus.FOREIGN
    if not isinstance(meta, dict) or "demo_version" not in meta:
        return DemoStatus.FOREIGN
    if meta["demo_version"] == DEMO_VERSION and meta.get("demo_config") == asdict(config):
        return DemoStatus.CURRENT
    return DemoStatus.OUTDATED


def _foreign_message(path: Path) -> str:
    return (
        f"{path} exists and is not a semflow demo scene (no {SCENE_FILE} with a 'demo_version' key); "
        f"refusing to write into it. Choose another folder (the default one can be set with ${DEMO_DIR_ENV})."
    )


def _checked_status(path: Path, config: DemoSceneConfig) -> DemoStatus:
    """``demo_status`` of ``path``; a folder that is not a demo scene raises FileExistsError (it is left untouched)."""
    status = demo_status(path, config)
    if status is DemoStatus.FOREIGN:
        raise FileExistsError(_foreign_message(path))
    return status


def _retire(path: Path, console: Console) -> None:
    """Moves an outdated demo aside; deletes it if it holds only demo files, else keeps it and says where."""
    aside = path.with_name(f".{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    path.rename(aside)
    if {entry.name for entry in aside.iterdir()} <= DEMO_ENTRIES:
        shutil.rmtree(aside)
    else:
        console.print(f"[yellow]The previous demo folder held extra files; it was moved to {aside}[/yellow]")


def _move_into_place(staging: Path, path: Path, status: DemoStatus, console: Console) -> None:
    """Renames the finished ``staging`` folder to ``path``, first removing an empty folder or retiring an old demo."""
    if path.exists() and status is DemoStatus.MISSING:
        path.rmdir()
    elif path.exists():
        _retire(path, console)
    staging.rename(path)


def ensure_demo_scene(
    path: Path, config: DemoSceneConfig | None = None, progress: bool = True, overwrite: bool = False
) -> Path:
    """Returns a folder holding the demo scene for ``config``, rendering it only when needed.

    An up-to-date demo in ``path`` is reused as is. A missing or empty folder is generated; an outdated demo
    (another ``DEMO_VERSION`` or configuration) is replaced. Generation happens in a hidden sibling folder that
    is renamed into place when complete; when another process has put an up-to-date demo there meanwhile (two
    commands started together), that demo is kept and this one discarded.

    Args:
        path: the scene folder.
        config: what to render; None uses the defaults of :class:`DemoSceneConfig`.
        progress: show progress bars and messages.
        overwrite: regenerate even an up-to-date demo.

    Returns:
        ``path``.

    Raises:
        FileExistsError: ``path`` exists, is not empty and is not a demo scene (it is left untouched).
    """
    config = config if config is not None else DemoSceneConfig()
    config.validate()
    path = Path(path).expanduser().absolute()
    status = _checked_status(path, config)
    if status is DemoStatus.CURRENT and not overwrite:
        return path
    console = Console(quiet=not progress)
    console.print(f"Generating the semflow demo scene in [bold]{path}[/bold]")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        staging.chmod(0o755)
        generate_demo_scene(staging, config, progress=progress)
        # Another process (e.g. a second benchmark started at the same time) may have put a demo there meanwhile.
        status = _checked_status(path, config)
        if status is DemoStatus.CURRENT and not overwrite:
            shutil.rmtree(staging)
            return path
        try:
            _move_into_place(staging, path, status, console)
        except OSError:
            # the other process moved its demo into place between that check and this rename: keep its demo
            if overwrite or _checked_status(path, config) is not DemoStatus.CURRENT:
                raise
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path
