"""Catalog rows and the README section for the shipped encoders, from their sidecars and the
benchmark outputs (probe.json, slow.json, mix.json in assets/encoders/).

    python benchmarks/encoders_report.py

Writes assets/catalog.rows.encoders.json (merged into assets/catalog.json by hand) and
assets/encoders/README_SECTION.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENC = ROOT / "assets" / "encoders"
DATA = {"faces64": ("faces", "smiles-faces: LFW crops via hromi/SMILEsmileD, 64x64 grayscale",
                    "research use only (LFW; the source states no license)"),
        "fashion32": ("fashion", "Fashion-MNIST train set (28x28 padded to 32x32)", "MIT (Fashion-MNIST)"),
        "textures64": ("textures", "OpenArena 0.8.1 textures, 64x64 RGB crops", "GPL-2 (OpenArena textures)")}
TITLES = {"irmae": "IRMAE autoencoder", "ae": "plain autoencoder (IRMAE l=0, diagnostic)", "vicreg": "VICReg",
          "barlow": "Barlow Twins", "simclr": "SimCLR (InfoNCE)", "dcl": "DCL", "dclw": "DCLW",
          "directclr": "DirectCLR"}


def load(name: str) -> dict:
    p = ENC / name
    return json.loads(p.read_text()) if p.is_file() else {}


def rows() -> list[dict]:
    probe = load("probe.json")
    out = []
    for sidecar in sorted(ENC.glob("*.json")):
        meta = json.loads(sidecar.read_text())
        if meta.get("format") != "studio-encoder/1":
            continue
        enc_id = sidecar.stem
        prefix, method = enc_id.split("-", 1)
        data, data_text, license_text = DATA[prefix]
        p = probe.get(data, {}).get(enc_id, {})
        metrics = {k: round(v, 4) for k, v in (("linear_probe", p.get("probe")), ("knn", p.get("knn")),
                                               ("effective_rank", p.get("effective_rank"))) if v is not None}
        metrics.update({"dim": meta["config"]["dim"], "train_minutes": round(meta.get("train_seconds", 0) / 60, 1),
                        "train_cpu_minutes": round(meta.get("train_cpu_seconds", 0) / 60, 1),
                        "steps": meta.get("steps")})
        if "reconstruction_mse" in meta:
            metrics["reconstruction_mse"] = round(meta["reconstruction_mse"], 5)
        out.append({"id": enc_id, "kind": "encoder", "title": f"{TITLES.get(method, method)} encoder, {prefix}",
                    "files": [f"encoders/{enc_id}.safetensors", f"encoders/{enc_id}.json"],
                    "data": data_text, "license": license_text, "metrics": metrics,
                    "method": meta["config"]["method"], "resolution": meta["config"]["resolution"],
                    "channels": meta["config"]["channels"]})
    return out


def section(catalog: list[dict]) -> str:
    probe, slow, mix = load("probe.json"), load("slow.json"), load("mix.json")
    lines = ["## Encoders and perceptual distances", "",
             "Encoders trained by the project itself on the generators' data (no ImageNet weights): IRMAE "
             "(Jing, Zbontar & LeCun 2020) and the self-supervised VICReg, Barlow Twins, SimCLR, DCL/DCLW and "
             "DirectCLR. Each is a small CNN (about 0.5 M parameters, float16 safetensors + JSON config) that "
             "resizes and converts any image itself, trained on one CPU thread. "
             "Reproduce: `scripts/train_encoders.sh`, then `python benchmarks/encoders_probe.py`.", "",
             "### Linear probe and k-NN on held-out data", "",
             (ENC / "probe_table.md").read_text() if (ENC / "probe_table.md").is_file() else "(not measured yet)", "",
             "Effective rank = exp(entropy of the normalised singular values) of the embeddings (Roy & Vetterli); "
             "spectra per data set (dimensional collapse, Jing et al. 2022):", "",
             "![faces spectra](assets/encoders/spectrum_faces.png) "
             "![fashion spectra](assets/encoders/spectrum_fashion.png)",
             ""]
    if mix:
        lines += ["### Choosing the distance: does the inversion keep the class / the smile?", "",
                  "| data | distance | label kept | pixel MSE |", "|---|---|---|---|"]
        for data, r in mix.items():
            for name, row in r["rows"].items():
                lines.append(f"| {data} | {name} | {100 * row['agreement']:.0f}% | {row['pixel_mse']:.3f} |")
            lines.append("")
            lines.append(f"({data}: {r['targets']} held-out targets, {r['steps']} gradient steps x {r['restarts']} "
                         f"restarts; independent classifier val accuracy {100 * r['classifier_val_accuracy']:.1f}%)")
            lines.append("")
    if slow:
        lines += ["### Slow features (Sobal et al. 2022): a dot among noise distractors", "",
                  "| features | R2 dot position, changing noise | R2, fixed noise | distractor / 4-px move distance |",
                  "|---|---|---|---|"]
        for name, row in slow["rows"].items():
            lines.append(f"| {name} | {row['r2_changing_noise']:.3f} | {row['r2_fixed_noise']:.3f} | "
                         f"{row['distractor_ratio']:.3f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    catalog = rows()
    (ROOT / "assets" / "catalog.rows.encoders.json").write_text(json.dumps(catalog, indent=1) + "\n")
    (ENC / "README_SECTION.md").write_text(section(catalog))
    print(f"{len(catalog)} catalog rows; README section written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
