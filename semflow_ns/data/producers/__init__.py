"""Helpers shared by the three scene producers (the demo generator :mod:`semflow_ns.data.demo`,
``semflow-process-data`` in :mod:`semflow_ns.process`, and the DynNeRF conversion :mod:`semflow_ns.data.dynnerf`):
optical flow, input label decoding, input file listing, world normalisation, and the writer of per-frame files."""
