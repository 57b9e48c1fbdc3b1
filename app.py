"""Start the GAN studio: `python app.py [--port P] [--model PATH_OR_ID ...] [--device auto|cpu|cuda|mps]`
(127.0.0.1 only; catalog models load on first use, models given with --model at start)."""
from __future__ import annotations

import argparse
import sys

from generators.errors import CheckpointError
from studio.app import create_app, serve
from studio.catalog import Catalog, UnknownModelError
from studio.devices import add_device_argument, resolve_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Interactive GAN studio (Gradio), served on 127.0.0.1")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--catalog", help="another catalog.json (default: assets/catalog.json or $GAN_STUDIO_CATALOG)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH_OR_ID",
                        help="also offer this model: a pytorch_GAN_zoo .pth or our .safetensors (or a catalog id); "
                             "repeat for more; the first one is selected")
    add_device_argument(parser, what="where the generators run")
    args = parser.parse_args(argv)
    try:
        catalog = Catalog(args.catalog, device=str(resolve_device(args.device)))
        added = add_models(catalog, args.model)
        demo = create_app(catalog)
        for model_id in added:  # loaded already: measure how its pages are drawn before serving
            note = demo.studio_ctx.display(model_id).note()
            if note:
                print(f"{model_id}: {note.replace('**', '')}", file=sys.stderr)
    except (ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve(demo, port=args.port)
    return 0


def add_models(catalog: Catalog, models: list[str]) -> list[str]:
    """Add each --model to the catalog; a bad file is reported in one line and skipped, so the
    studio still starts on the rest. Returns the ids added."""
    added = []
    for spec in models:
        try:
            added.append(catalog.add_model(spec, prefer=not added))
        except (CheckpointError, UnknownModelError, ValueError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else e
            print(f"error: {message} (--model {spec} skipped; starting on the rest)", file=sys.stderr)
            continue
        entry = catalog.get(added[-1])
        print(f"added model {entry.id}: {entry.resolution} px, latent {entry.latent_dim}; {entry.status}",
              file=sys.stderr)
    return added


if __name__ == "__main__":
    sys.exit(main())
