"""Pack the training data into .gpudata/ (git-ignored) for a training run on a machine without it.

    .venv/bin/python scripts/pack_for_gpu.py [--zoo /tmp/zoo]

A GPU machine gets a copy of the working tree only (64 MiB at most), no ../shared and no apt
packages, so this writes what `scripts/train_gpu.sh` reads there:
- smiles-faces.zip: the train split of the face crops, JPGs as they are, in one file (11k small
  files would cost 4 KB each of the size limit); train_gpu.sh unpacks it (the split hashes the path);
- fashion/: Fashion-MNIST's official train files, xz-compressed (the test file is the held-out set);
- textures.pk3: only the train-split textures, already shrunk by `TEXTURE_DOWNSCALE` and stored as
  JPEG quality 95 under their original names (so the hashed split and the labels stay the same);
  train_gpu.sh sets STUDIO_TEXTURES_DOWNSCALE=1 so they are not shrunk twice;
- site/: the pure-Python packages the GPU image lacks (nevergrad, cma, bayes_opt, pytest);
- zoo/: a pytorch_GAN_zoo checkout for the speed benchmark, when --zoo is given (never committed).
"""
from __future__ import annotations

import argparse
import gzip
import io
import lzma
import shutil
import site
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from studio.data import FACES_DIR, FASHION_DIR, TEXTURES_PK3, in_split, load_texture_sources  # noqa: E402


def pack_textures(src: Path, dest: Path) -> tuple[int, int]:
    """The train-split sources exactly as `load_texture_sources` gives them to training (shrunk,
    too-small ones left out), as JPEG quality 95 under their names inside the .pk3."""
    sources = load_texture_sources(src, split="train")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
        for image, name in zip(sources.images, sources.labels):
            buf = io.BytesIO()
            Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").save(buf, "JPEG", quality=95)
            zout.writestr(name, buf.getvalue())
    return len(sources.images), dest.stat().st_size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / ".gpudata"))
    p.add_argument("--zoo", help="pytorch_GAN_zoo checkout to include for benchmarks/train_speed.py")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    with zipfile.ZipFile(out / "smiles-faces.zip", "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(FACES_DIR.rglob("*.jpg")):
            rel = f.relative_to(FACES_DIR).as_posix()
            if in_split(rel, "train"):
                zf.write(f, rel)
    (out / "fashion").mkdir(exist_ok=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        with gzip.open(FASHION_DIR / f"{stem}.gz") as fin, lzma.open(out / "fashion" / f"{stem}.xz", "w", preset=9) as fout:
            shutil.copyfileobj(fin, fout)
    n, size = pack_textures(TEXTURES_PK3, out / "textures.pk3")
    print(f"textures: {n} train files, {size / 1e6:.1f} MB")
    packages = Path(site.getsitepackages()[0])
    for name in ("nevergrad", "cma", "bayes_opt"):
        shutil.copytree(packages / name, out / "site" / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "test*"))
    for name in ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "py.py"):  # scripts/gpu_checks.sh: tests
        src = packages / name
        if src.is_dir():
            shutil.copytree(src, out / "site" / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            shutil.copy2(src, out / "site" / name)
    if args.zoo:
        shutil.copytree(args.zoo, out / "zoo", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git"))
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
