"""`train encoder` and `embed` through the real command line (in-process)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from studio.cli import main


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def make_folder(root, n=12, size=20, mode="L"):
    g = np.random.default_rng(0)
    for i in range(n):
        sub = root / ("b" if i % 2 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        shape = (size, size) if mode == "L" else (size, size + 5, 3)
        Image.fromarray(g.integers(0, 256, shape, dtype=np.uint8), mode).save(sub / f"{i:02d}.png")
    return root


TINY_ARGS = ["--steps", "2", "--batch-size", "4", "--width", "8", "--dim", "16", "--resolution", "16"]


@pytest.fixture
def trained(tmp_path):
    data = make_folder(tmp_path / "data", n=24)
    out = tmp_path / "run"
    assert main(["train", "encoder", "--method", "vicreg", "--data", str(data), "--out", str(out),
                 "--export", str(tmp_path / "export" / "tiny-vicreg"), *TINY_ARGS]) == 0
    return tmp_path


def test_train_encoder_writes_weights_and_resumes(trained, capsys):
    meta = json.loads((trained / "run" / "encoder.json").read_text())
    assert meta["config"]["method"] == "vicreg" and meta["steps"] == 2 and meta["data"] == "data"
    assert (trained / "export" / "tiny-vicreg.safetensors").is_file()
    assert json.loads((trained / "export" / "tiny-vicreg.json").read_text())["id"] == "tiny-vicreg"
    capsys.readouterr()
    # the same command again resumes from the finished checkpoint: nothing left to do
    assert main(["train", "encoder", "--method", "vicreg", "--data", str(trained / "data"),
                 "--out", str(trained / "run"), *TINY_ARGS]) == 0
    assert "resuming" in capsys.readouterr().out


def test_train_encoder_skips_unreadable_and_refuses_empty(tmp_path, capsys):
    data = make_folder(tmp_path / "data", n=24)
    for i in range(3):
        (data / "a" / f"broken{i}.png").write_bytes(b"not a png at all")
    assert main(["train", "encoder", "--method", "irmae", "--data", str(data), "--out", str(tmp_path / "r"),
                 *TINY_ARGS]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "unreadable" in err
    (tmp_path / "empty").mkdir()
    assert main(["train", "encoder", "--method", "vicreg", "--data", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "r2"), *TINY_ARGS]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_embed_rows_follow_sorted_paths(trained, tmp_path, capsys):
    images = make_folder(tmp_path / "imgs", n=5, mode="RGB")
    (images / "a" / "notes.txt").write_text("not an image")
    (images / "a" / "zz-broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "feats" / "f.npy"
    capsys.readouterr()
    assert main(["embed", "--encoder", str(trained / "export" / "tiny-vicreg.safetensors"),
                 "--images", str(images), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unreadable" in captured.err
    feats = np.load(out)
    paths = (tmp_path / "feats" / "f.txt").read_text().splitlines()
    assert paths == ["a/00.png", "a/02.png", "a/04.png", "b/01.png", "b/03.png"]
    assert feats.shape == (5, 16) and feats.dtype == np.float32
    # row i is the features of paths[i]
    from encoders import load_encoder
    from studio.imageio import load_image
    enc = load_encoder(trained / "export" / "tiny-vicreg.safetensors")
    with torch.no_grad():
        one = enc(load_image(images / "b" / "03.png", channels=1, size=16))[0].numpy()
    assert np.allclose(feats[4], one, atol=1e-5)


def test_embed_errors(trained, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    enc = str(trained / "export" / "tiny-vicreg.safetensors")
    assert main(["embed", "--encoder", enc, "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "f.npy")]) == 2
    assert "no image files" in capsys.readouterr().err
    assert main(["embed", "--encoder", "faces64-nope", "--images", str(trained / "data"),
                 "--out", str(tmp_path / "f.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown encoder 'faces64-nope'") and err.count("\n") == 1


def test_train_encoder_pooled_head_sets_its_dim(tmp_path):
    data = make_folder(tmp_path / "data", n=24)
    args = ["--steps", "2", "--batch-size", "4", "--width", "8", "--resolution", "16", "--head", "pooled"]
    assert main(["train", "encoder", "--method", "dclw", "--data", str(data), "--out", str(tmp_path / "r"), *args]) == 0
    config = json.loads((tmp_path / "r" / "encoder.json").read_text())["config"]
    assert config["head"] == "pooled" and config["dim"] == 192  # 4 * (4 * 8 + 2 * 8)
