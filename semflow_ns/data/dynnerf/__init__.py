"""DynNeRF/NSFF scene folders (the layout of the Semantic Flow paper's data): reading the layout, LLFF
``poses_bounds.npy``, and conversion into a cached semflow scene."""
