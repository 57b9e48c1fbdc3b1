"""The studio run in-process, for tests and benchmarks (tiny catalogs and a free port: `studio.testing`)."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from studio.app.context import Limits
from studio.app.factory import create_app
from studio.app.theme import serve
from studio.catalog import Catalog
from studio.testing import free_port


@contextlib.contextmanager
def running(catalog: str | Path | Catalog, *, limits: Limits | None = None) -> Iterator[tuple[object, str]]:
    """The studio served on 127.0.0.1 in this process: yields (demo, url), closes it afterwards."""
    cat = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
    demo = create_app(cat, limits=limits)
    for attempt in range(3):
        port = free_port()
        try:
            serve(demo, port=port, prevent_thread_lock=True, quiet=True)
            break
        except ValueError as e:
            # Gradio gives up on a server that does not answer its 3-second check (a starved CPU)
            demo.close()
            if "localhost is not accessible" not in str(e) or attempt == 2:
                raise
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
