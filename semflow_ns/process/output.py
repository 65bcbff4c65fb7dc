"""The output folder of ``semflow-process-data``: safety checks, staging and publishing.

A scene is written into a hidden staging folder next to the output and renamed into place only when it is
complete and validated, so a failed run leaves no half-written scene behind. An existing, non-empty output is
replaced only with ``--overwrite``, and never when it is, contains or lies inside one of the inputs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from semflow_ns.process import ProcessError


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(output: Path, inputs: Sequence[Path], overwrite: bool) -> Path:
    """Resolves ``output`` and refuses unsafe or occupied folders.

    Raises:
        ProcessError: the output is a file, is non-empty without ``overwrite``, contains an input, or lies inside
            an input folder.
    """
    output = Path(output).expanduser().resolve()
    for source in inputs:
        source = Path(source).expanduser().resolve()
        if _inside(source, output) or (source.is_dir() and _inside(output, source)):
            raise ProcessError(
                f"--output {output}: overlaps the input {source}; the input folder is never written to - "
                "choose an output folder outside it"
            )
    if output.exists() and not output.is_dir():
        raise ProcessError(f"--output {output}: exists and is a file, not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise ProcessError(
            f"--output {output}: exists and is not empty; pass --overwrite to replace it, or choose another folder"
        )
    return output


def make_staging(output: Path) -> Path:
    """A new hidden folder next to ``output`` in which the scene is assembled."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    staging.chmod(0o755)
    return staging


def publish(staging: Path, output: Path) -> None:
    """Moves the finished scene into place, deleting a previous output (already allowed by ``check_output``)."""
    if output.exists():
        aside = output.with_name(f".{output.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        output.rename(aside)
        staging.rename(output)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        staging.rename(output)
