"""The web app (Gradio): ``build_demo(...)`` returns a ``gr.Blocks`` without launching it.

Importing this package imports gradio; the rest of ``vitpose_live`` does not need it.
"""

from .gradio_app import MODEL_CHOICES, Limits, PoseWebApp, build_demo, main

__all__ = ["MODEL_CHOICES", "Limits", "PoseWebApp", "build_demo", "main"]
