"""semflow_ns: Semantic Flow (Tian et al., ICLR 2024) as a nerfstudio plugin.

Kept free of imports so that nerfstudio's plugin discovery stays fast and cannot fail here.
"""

__version__ = "0.1.0"
