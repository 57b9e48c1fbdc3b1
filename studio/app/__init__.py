"""The Gradio studio: `create_app(catalog)` builds it; `serve(demo, port=...)` runs it on 127.0.0.1."""
from studio.app.factory import create_app
from studio.app.theme import launch_options, serve

__all__ = ["create_app", "serve", "launch_options"]
