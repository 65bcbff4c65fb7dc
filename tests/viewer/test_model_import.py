"""The model module does not load the viewer: the panel is imported only when a model is built."""

import subprocess
import sys

VIEWER_MODULES = ("semflow_ns.viewer.panel", "nerfstudio.viewer.viewer_elements", "nerfstudio.viewer.viewer")


def _modules_after(statement: str) -> set[str]:
    """Names in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return set(result.stdout.split())


def test_importing_the_model_does_not_import_the_viewer():
    """``viser`` itself cannot be avoided: nerfstudio 1.1.5's ``SceneBox`` (which every model needs) imports
    ``viser.transforms``, and with it the ``viser`` package. Nothing beyond that may load: neither our panel
    nor nerfstudio's viewer elements, and no viser module that nerfstudio's scene box does not load already."""
    with_model = _modules_after("import semflow_ns.models.semflow_model")
    assert "semflow_ns.models.semflow_model" in with_model
    assert not with_model & set(VIEWER_MODULES)
    baseline = _modules_after("import nerfstudio.data.scene_box")
    viser_modules = {m for m in with_model if m == "viser" or m.startswith("viser.")}
    assert viser_modules <= baseline, sorted(viser_modules - baseline)
