"""The card of a model a user brings: what it is, where it came from, and which dependent files it
lacks (each with what the studio does without it, and the command that makes it).

The dependent files live beside the model file (`assetpaths.beside`): PATH's folder/<stem>.studio/.
Without any of them every tab still works; this card is where the studio says how it is weaker.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import assetpaths


@dataclass(frozen=True)
class ModelCard:
    title: str
    data: str  # one line: the source file
    status: str  # one line: what is missing
    card: str  # markdown


def _missing_text(path: Path) -> dict[str, tuple[str, str]]:
    """kind -> (what the studio does without it, how to make it)."""
    inv = f"`python -m studio.inversion --model {path}`"
    return {
        "inversion": ("Inspire starts from random latents (the closest of 16 random samples: a less reliable "
                      "first image) and Compose's image-based driver is unavailable", f"{inv} trains one (minutes to hours at 256 px on a CPU)"),
        "directions": ("Compose searches all latent coordinates instead of the few that change the image most",
                       f"{inv} writes them too (`--directions 16`)"),
        "metric": ("Compose's \"bayes\" driver is unavailable (the others work)",
                   f"`python -m studio assets --model {path} --make metric`"),
    }


NAMES = {"inversion": "inversion encoder", "directions": "search directions", "metric": "preference metric"}
KINDS = tuple(NAMES)  # the pixel prior of a user's model is computed by its first composite


def dependent_files(model_id: str) -> dict[str, Path | None]:
    """kind -> the file found for this model id (registered or shipped), or None."""
    return {kind: assetpaths.find(kind, model_id) for kind in KINDS}


def describe_model(model: Any, path: Path, model_id: str) -> ModelCard:
    """The generated card of a PGAN loaded from `path` and known to the studio as `model_id`."""
    c = model.config
    path = Path(path).resolve()
    kind = "pytorch_GAN_zoo checkpoint" if path.suffix.lower() != ".safetensors" else "studio .safetensors"
    colour = {1: "grayscale", 3: "RGB"}.get(model.channels, f"{model.channels} channels")
    params = sum(p.numel() for p in model.generator.parameters())
    found = dependent_files(model_id)
    missing = [k for k, v in found.items() if v is None]
    why = _missing_text(path)
    where = assetpaths.beside(path).root
    lines = [f"**Your model**, opened from `{path}` ({kind}).", "",
             f"- **architecture**: progressive GAN (PGAN), {len(c.depths)} scales from 4 to {c.resolution} px, "
             f"channels {'/'.join(map(str, c.depths))}",
             f"- **resolution**: {c.resolution} px, {colour}",
             f"- **latent size**: {c.latent_dim}",
             f"- **generator**: {params / 1e6:.1f}M parameters"
             + (f" ({model.info['generator']})" if model.info.get("generator") else ""),
             f"- **realism scores**: {'from its discriminator' if model.discriminator is not None else 'none (no discriminator in the file)'}",
             f"- **source file**: `{path}`", "",
             f"Dependent files are looked up in `{where}/`:"]
    for k, v in found.items():
        if v is not None:
            lines.append(f"- {NAMES[k]}: found (`{v.name}`)")
        else:
            effect, how = why[k]
            lines.append(f"- **no {NAMES[k]}**: {effect}; {how}")
    lines.append("- pixel prior (Compose's image-based driver): computed by the first composite, once per run")
    if c.resolution >= 256:
        lines += ["", f"At {c.resolution} px a full-size page takes seconds on a CPU (9 images of the "
                      f"celebAHQ-256 architecture: 3-5 s in float32 on 2 cores), so the studio measures this model "
                      f"on first use and draws its pages in bfloat16 or as previews when that is faster (the line "
                      f"under the model picker says which); on a machine with a GPU, `python app.py --device cuda`."]
    status = "all dependent files found" if not missing else \
        "no " + ", no ".join(NAMES[k] for k in missing) + " (see the card)"
    title = f"{model_id} — your {c.resolution} px {colour} model"
    return ModelCard(title=title, data=f"{kind} {path.name}", status=status, card="\n".join(lines) + "\n")

