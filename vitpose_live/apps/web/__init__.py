"""The web app (Gradio): ``build_demo(...)`` returns a ``gr.Blocks`` without launching it.

- :mod:`.settings`: the controls as one checked record; the defaults per device (models, rate).
- :mod:`.state`: the shared model cache, each browser session's engine and tracks, the registry.
- :mod:`.payloads`: upload limits and checks; what the browser sends turned into pixels.
- :mod:`.frames`: mirrored poses, the inline JPEG the webcam tab gets back.
- :mod:`.jobs`: a webcam frame, a video, an image, each from one settings record.
- :mod:`.layout`: the page, one function per tab.
- :mod:`.app`: the events (:class:`PoseWebApp`), ``build_demo`` and ``main``.

Importing this package imports gradio; the rest of ``vitpose_live`` does not need it.
"""

from .app import PoseWebApp, build_demo, build_parser, main
from .frames import mirror_poses
from .payloads import Limits
from .settings import MODEL_CHOICES, Settings

__all__ = ["MODEL_CHOICES", "Limits", "PoseWebApp", "Settings", "build_demo", "build_parser", "main", "mirror_poses"]
