"""Start the GAN studio: `python app.py [--port P]` (127.0.0.1 only; models load on first use)."""
from __future__ import annotations

import argparse
import sys

from studio.app import create_app, serve
from studio.catalog import Catalog
from studio.devices import add_device_argument, resolve_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Interactive GAN studio (Gradio), served on 127.0.0.1")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--catalog", help="another catalog.json (default: assets/catalog.json or $GAN_STUDIO_CATALOG)")
    add_device_argument(parser, what="where the generators run")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        demo = create_app(Catalog(args.catalog, device=str(device)))
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve(demo, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
