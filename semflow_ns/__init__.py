"""semflow_ns: Semantic Flow (Tian et al., ICLR 2024) as a nerfstudio plugin.

Kept nearly free of imports so that nerfstudio's plugin discovery stays fast and cannot fail here: the only one
installs the finder of the module paths that earlier versions used (standard library only), so that the
``config.yml`` of an older run, which names classes by module path, still loads.
"""

from semflow_ns.utils import legacy_paths  # noqa: F401

__version__ = "0.1.0"
