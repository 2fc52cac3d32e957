"""The faces: the command line (:mod:`.cli` → one :class:`~.request.Request`), the single-input
job (:mod:`.job`), collections of inputs (:mod:`.batch`, :mod:`.collection`, :mod:`.cluster` on
Ray), the OpenCV window (:mod:`.window`, :mod:`.viewer`) and the web page (:mod:`.web`). Each maps
its inputs onto the engine's recipe and the one run loop below it."""

from ..system.openmp import idle_workers_sleep

idle_workers_sleep()  # every face, before torch loads
