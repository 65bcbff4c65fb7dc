"""Every module of semflow_ns imports on its own: no import cycles, whatever module a program starts from.

One interpreter (a subprocess, so the test run's own imports do not count) imports the modules one after the
other; before each, every ``semflow_ns`` module is dropped from ``sys.modules``, so each import starts from
nothing of the package (third-party modules such as torch and nerfstudio stay loaded, which keeps this fast).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "semflow_ns"

SCRIPT = """
import importlib, json, sys, traceback, warnings
warnings.simplefilter("ignore")
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "semflow_ns" or m.startswith("semflow_ns.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except BaseException:
        failed[name] = traceback.format_exc(limit=-4)
print(json.dumps(failed))
"""


def module_names() -> list[str]:
    """Dotted names of every module and package of semflow_ns, from the source tree."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_module_list_covers_the_package() -> None:
    names = module_names()
    assert "semflow_ns" in names and "semflow_ns.data.format.reader" in names and "semflow_ns.process.run" in names
    assert len(names) == len(set(names)) > 50


def test_every_module_imports_in_isolation() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE.parent), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(module_names())],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failed, "\n\n".join(f"{name}:\n{trace}" for name, trace in failed.items())
