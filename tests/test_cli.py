"""`python -m studio` models / sample / export, in-process and as a real subprocess."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generators import PGAN
from generators.ganzoo import load_zoo
from studio.catalog import CATALOG_ENV
from studio.cli import main
from studio.imageio import read_png_meta

ROOT = Path(__file__).resolve().parent.parent


def test_models_json(catalog_env, capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["tiny", "tinyrgb"]
    assert rows[0]["default"] and rows[0]["latent_dim"] == 8


def test_models_table(catalog_env, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "16x16x1" in out


def test_sample_png_grid_from_seeds(catalog_env, tmp_path):
    out = tmp_path / "grid.png"
    assert main(["sample", "--model", "tinyrgb", "--seeds", "0-8", "--out", str(out)]) == 0
    img = Image.open(out)
    assert img.mode == "RGB" and img.width > 3 * 8
    meta = read_png_meta(out)
    assert meta["model"] == "tinyrgb" and meta["seeds"] == list(range(9))


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_sample_raw_arrays_match_library(catalog_env, tmp_path, suffix):
    out = tmp_path / f"x{suffix}"
    assert main(["sample", "--seeds", "3,5", "--out", str(out)]) == 0  # default model
    arr = torch.from_numpy(np.load(out)) if suffix == ".npy" else torch.load(out, weights_only=True)
    model = PGAN.load(catalog_env.parent / "tiny.safetensors")
    assert arr.shape == (2, 1, 16, 16)
    assert torch.allclose(arr, model.generate(model.latents_for_seeds([3, 5])), atol=1e-6)


def test_sample_from_latents_file(catalog_env, tmp_path):
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    assert main(["sample", "--model", "tiny", "--latents", str(tmp_path / "z.npy"), "--out", str(tmp_path / "o.npy")]) == 0
    model = PGAN.load(catalog_env.parent / "tiny.safetensors")
    assert np.allclose(np.load(tmp_path / "o.npy"), model.generate(torch.from_numpy(z)).numpy(), atol=1e-6)


def test_sample_by_safetensors_path(catalog_env, tmp_path):
    path = catalog_env.parent / "tiny.safetensors"
    assert main(["sample", "--model", str(path), "--seeds", "0", "--out", str(tmp_path / "a.png")]) == 0
    assert len(read_png_meta(tmp_path / "a.png")["latent"]) == 8  # one image: its latent travels along


@pytest.mark.parametrize("args,message", [
    (["--model", "nope", "--seeds", "0"], "neither a catalog id"),
    (["--seeds", "5-1"], "bad seed list"),
    (["--seeds", "0", "--truncation", "-1"], "truncation must be > 0"),
    (["--latents", "missing.npy"], "no such latents file"),
])
def test_sample_errors_are_one_line(catalog_env, tmp_path, capsys, args, message):
    assert main(["sample", *args, "--out", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("error:")


def test_sample_wrong_latent_shape_and_suffix(catalog_env, tmp_path, capsys):
    np.save(tmp_path / "z.npy", np.zeros((2, 5), np.float32))
    assert main(["sample", "--latents", str(tmp_path / "z.npy"), "--out", str(tmp_path / "o.png")]) == 2
    assert "needs N x 8" in capsys.readouterr().err
    assert main(["sample", "--seeds", "0", "--out", str(tmp_path / "o.jpg")]) == 2
    assert "--out must end in" in capsys.readouterr().err


def test_pickled_latents_are_refused(catalog_env, tmp_path, capsys):
    np.save(tmp_path / "z.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["sample", "--latents", str(tmp_path / "z.npy"), "--out", str(tmp_path / "o.png")]) == 2
    assert "not a readable latents file" in capsys.readouterr().err


def test_export_ganzoo_round_trip(catalog_env, tmp_path):
    out = tmp_path / "tiny_zoo.pth"
    assert main(["export", "--model", "tiny", "--format", "ganzoo", "--out", str(out)]) == 0
    ours = PGAN.load(catalog_env.parent / "tiny.safetensors")
    z = ours.sample_latents(4, seed=2)
    zoo = load_zoo(out)
    assert torch.allclose(zoo.generate(z), ours.generate(z), atol=1e-6)
    assert torch.allclose(zoo.realism(ours.generate(z)), ours.realism(ours.generate(z)), atol=1e-5)


def test_subprocess_entry_point(catalog_env, tmp_path):
    env = {"PATH": "/usr/bin:/bin", CATALOG_ENV: str(catalog_env)}
    ok = subprocess.run([sys.executable, "-m", "studio", "sample", "--seeds", "0-3", "--out", str(tmp_path / "g.png")],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "studio", "sample", "--model", str(tmp_path / "g.png"), "--seeds", "0",
                          "--out", str(tmp_path / "h.png")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.startswith("error:")
