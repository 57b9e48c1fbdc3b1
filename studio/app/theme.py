"""Look and launch options: CSS for big tiles upscaled by the browser, the smooth/pixelated toggle."""
from __future__ import annotations

import threading
import time
from typing import Any

import gradio as gr

# Generations are 32 or 64 px; the browser upscales them to the tile size, smooth by default
# (bilinear/bicubic, depending on the browser) or pixelated (nearest) when the user asks.
CSS = """
.tiles img, .big img { image-rendering: auto; }
body.pixelated .tiles img, body.pixelated .big img, body.pixelated .gstrip img { image-rendering: pixelated; }
.tiles .grid-wrap, .tiles .grid-wrap.fixed-height { height: auto !important; max-height: none !important;
  min-height: 0 !important; overflow: visible !important; }
.tiles .thumbnail-item { aspect-ratio: 1 / 1; }
/* small strips: the label gets its own line instead of covering the first tiles; captions wrap
   (a kept image's "12. variation" was cut to "12. variati…") */
.tiles.small .grid-wrap { padding-top: 2rem; }
.tiles.small .caption-label { white-space: normal; max-width: 94%; overflow-wrap: anywhere; }
.end-image { min-width: 120px !important; }
.big img { width: 100%; height: 100%; object-fit: contain; }
#compose-lineage button, #compose-lineage .image-frame { width: 100%; height: 100%; display: flex;
  justify-content: flex-start; align-items: flex-end; }
#compose-lineage img { width: auto; height: auto; max-width: 100%; max-height: 100%; }
#studio-header { align-items: end; }
#studio-title h1 { margin: 0; font-size: 1.6rem; }
#studio-title p { margin: 0.2rem 0 0; opacity: 0.75; }
.status { font-variant-numeric: tabular-nums; }
/* a compose round being worked out (busy_js): the tiles take no clicks and say why */
.studio-busy { position: relative; }
.studio-busy, .studio-busy * { pointer-events: none !important; }
.studio-busy img { opacity: 0.3; filter: grayscale(1); }
.studio-busy::after { content: attr(data-busy); position: absolute; inset: 0; display: flex;
  align-items: center; justify-content: center; font-size: 1.15rem; font-weight: 600; z-index: 5;
  text-shadow: 0 0 6px var(--background-fill-primary); }
footer { display: none !important; }
"""

JS = """
() => {
  window.studioPixelated = (on) => { document.body.classList.toggle('pixelated', !!on); return on; };
}
"""

PIXELATED_JS = "(on) => { document.body.classList.toggle('pixelated', !!on); return on; }"


BUSY_TARGETS = "#compose-candidates, #compose-lineage"
BUSY_MESSAGE = "Working out the next round…"


def busy_js(on: bool) -> str:
    """Browser code that covers the compose candidates and lineage while a round is worked out
    (a click on them meanwhile would be dropped by Gradio: its events take one trigger at a time)."""
    action = (f"el.classList.add('studio-busy'); el.dataset.busy = el.id === 'compose-candidates' ? "
              f"{BUSY_MESSAGE!r} : '';") if on \
        else "el.classList.remove('studio-busy');"
    return f"() => {{ document.querySelectorAll({BUSY_TARGETS!r}).forEach(el => {{ {action} }}); }}"


def goto_tab(event, tab_id: str) -> None:
    """After `event` succeeds, switch to a tab in the browser (returning gr.Tabs(selected=...) does
    not switch tabs in Gradio 6.31, see gradio-app/gradio#7726 for the history of this)."""
    event.success(None, None, None, js=f"() => {{ document.querySelector('#tab-{tab_id}-button')?.click(); }}",
                  queue=False, show_progress="hidden", api_visibility="private")


def launch_options() -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch` (Gradio 6 takes theme, css and js there)."""
    return {"css": CSS, "js": JS, "theme": gr.themes.Soft(primary_hue="indigo", radius_size="sm")}


def warm_imports(delay_s: float = 2.0) -> threading.Thread:
    """Import Nevergrad in the background once the server is up: its import is 1.5 s, which the
    first switch to a Nevergrad driver in Compose (CMA, OnePlusOne, ...) or Inspire's NGOpt would
    otherwise wait for (measured by benchmarks/compose_moves.py)."""
    def work():
        time.sleep(delay_s)
        import nevergrad  # noqa: F401
    thread = threading.Thread(target=work, name="warm-imports", daemon=True)
    thread.start()
    return thread


def serve(demo: gr.Blocks, *, port: int | None = None, **kwargs: Any):
    """Launch on 127.0.0.1 only, never with a share link."""
    warm_imports()
    options = {"server_name": "127.0.0.1", "server_port": port, "share": False, "show_error": True,
               "max_file_size": "50mb", **launch_options(), **kwargs}
    options["share"] = False
    options["server_name"] = "127.0.0.1"
    return demo.launch(**options)
