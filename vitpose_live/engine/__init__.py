"""The engine layer: one frame in, every person's pose out. :class:`~.engine.PoseEngine` joins a
detector and a pose model (from :mod:`vitpose_live.models`) with tracking, smoothing, live
detection on a thread and latency control; :mod:`.recipe` builds it from options. No I/O here."""
