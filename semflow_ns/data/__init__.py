"""Data side of the plugin, split by role.

* :mod:`~semflow_ns.data.format` - the scene format (``transforms.json``, label and flow files);
* :mod:`~semflow_ns.data.dataparsers` - the nerfstudio DataParsers (``semflow-data``, ``dynnerf-data``);
* :mod:`~semflow_ns.data.datasets` - the nerfstudio dataset and pixel sampler;
* :mod:`~semflow_ns.data.dynnerf` - DynNeRF/NSFF folders and their conversion;
* :mod:`~semflow_ns.data.demo` - the procedural demo scene;
* :mod:`~semflow_ns.data.producers` - what the scene producers share (optical flow, label decoding, writing).

Old module paths (``semflow_ns.data.scene_format``, ``semflow_ns.data.semflow_dataparser``, ...) stay importable
through :mod:`~semflow_ns.utils.legacy_paths`, so that ``config.yml`` files of earlier runs still load.
"""

from semflow_ns.data import legacy_paths  # noqa: F401  (installs the finder of the old module paths)
