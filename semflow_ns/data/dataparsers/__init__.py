"""nerfstudio DataParsers of the plugin (``semflow-data``, ``dynnerf-data``), the split options they share, and
the metadata they hand the dataset and the model (:mod:`~semflow_ns.data.dataparsers.metadata`)."""
