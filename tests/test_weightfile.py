"""weightfile: our safetensors + JSON sidecar pairs, and the errors users see for bad files."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from generators import PGAN, CheckpointError
from weightfile import WeightFileError, load_state, load_weights, save_weights

FMT = "studio-test/1"


def tensors():
    return {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "h": torch.ones(4, dtype=torch.float16),
            "n": torch.tensor([1, 2], dtype=torch.int64)}


def test_round_trip(tmp_path):
    path = save_weights(tmp_path / "sub" / "m", tensors(), format=FMT, config={"b": 2, "a": [1, 2]},
                        info={"title": "test", "metrics": {"x": 0.5}})
    assert path == tmp_path / "sub" / "m.safetensors" and path.is_file()
    assert json.loads(path.with_suffix(".json").read_text()) == {
        "format": FMT, "config": {"b": 2, "a": [1, 2]}, "title": "test", "metrics": {"x": 0.5}}
    wf = load_weights(path, format=FMT, kind="test")
    assert wf.path == path and wf.config == {"b": 2, "a": [1, 2]}
    assert wf.info == {"title": "test", "metrics": {"x": 0.5}}
    assert wf.metadata["format"] == FMT and json.loads(wf.metadata["config"]) == wf.config
    assert set(wf.tensors) == {"w", "h", "n"}
    for k, v in tensors().items():
        assert wf.tensors[k].dtype == v.dtype and torch.equal(wf.tensors[k], v)
    path.with_suffix(".json").unlink()  # the sidecar is optional: format and config are inside
    wf = load_weights(path, format=FMT, kind="test")
    assert wf.config == {"b": 2, "a": [1, 2]} and wf.info == {}


def test_save_takes_views_and_grads(tmp_path):
    w = torch.randn(3, 4, requires_grad=True)
    path = save_weights(tmp_path / "v.safetensors", {"t": w.t()}, format=FMT, config={})
    assert torch.equal(load_weights(path, format=FMT, kind="test").tensors["t"], w.detach().t())


def test_extra_metadata_without_config_or_sidecar(tmp_path):
    path = save_weights(tmp_path / "s", {"x": torch.zeros(2)}, format=FMT, metadata={"info": "{}"}, sidecar=False)
    assert not path.with_suffix(".json").exists()
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"format": FMT, "info": "{}"}
    wf = load_weights(path, format=FMT, kind="test", require_config=False)
    assert wf.config is None and wf.metadata["info"] == "{}"
    with pytest.raises(WeightFileError, match="studio test file without its config"):
        load_weights(path, format=FMT, kind="test")


def test_missing_file(tmp_path):
    with pytest.raises(WeightFileError, match="none.safetensors: no such file"):
        load_weights(tmp_path / "none.safetensors", format=FMT, kind="test")
    with pytest.raises(WeightFileError, match="no such file"):  # a folder is not a weight file
        load_weights(tmp_path, format=FMT, kind="test")


@pytest.mark.parametrize("content", [b"", b"junk", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"])
def test_unreadable_file(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightFileError, match="not a readable safetensors file"):
        load_weights(path, format=FMT, kind="test")


def test_truncated_file(tmp_path):
    path = save_weights(tmp_path / "m", tensors(), format=FMT, config={})
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(WeightFileError, match="not a readable safetensors file"):
        load_weights(path, format=FMT, kind="test")


def test_wrong_kind_of_file(tmp_path):
    path = save_weights(tmp_path / "other", tensors(), format="studio-other/1", config={})
    with pytest.raises(WeightFileError, match=r"not a studio test file \(format 'studio-other/1', "
                                              r"expected 'studio-test/1'\)"):
        load_weights(path, format=FMT, kind="test")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))  # someone else's safetensors
    with pytest.raises(WeightFileError, match="not a studio test file .no format in its metadata"):
        load_weights(tmp_path / "foreign.safetensors", format=FMT, kind="test")


def test_missing_or_broken_config(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": FMT})
    with pytest.raises(WeightFileError, match="studio test file without its config"):
        load_weights(path, format=FMT, kind="test")
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": FMT, "config": "{oops"})
    with pytest.raises(WeightFileError, match="test config in its metadata is not valid JSON"):
        load_weights(path, format=FMT, kind="test")
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": FMT, "config": "[1, 2]"})
    with pytest.raises(WeightFileError, match="is not a JSON object"):
        load_weights(path, format=FMT, kind="test")


def test_broken_sidecar(tmp_path):
    path = save_weights(tmp_path / "m", tensors(), format=FMT, config={})
    path.with_suffix(".json").write_text("{truncated")
    with pytest.raises(WeightFileError, match=r"m\.json: the sidecar is not valid JSON"):
        load_weights(path, format=FMT, kind="test")


def test_load_state_strict():
    lin = torch.nn.Linear(3, 2)
    state = {"weight": torch.ones(2, 3, dtype=torch.float16), "bias": torch.zeros(2, dtype=torch.float16)}
    load_state(lin, state, path="f.safetensors")
    assert lin.weight.dtype == torch.float32 and torch.equal(lin.weight, torch.ones(2, 3))  # cast to the module
    with pytest.raises(WeightFileError, match=r"f\.safetensors: head weights do not match its config "
                                              r"\(missing \['bias'\], unexpected \[\]\)"):
        load_state(lin, {"weight": torch.ones(2, 3)}, path="f.safetensors", what="head")
    with pytest.raises(WeightFileError, match=r"unexpected \['extra'\]"):
        load_state(lin, {**state, "extra": torch.ones(1)}, path="f.safetensors")
    with pytest.raises(WeightFileError, match=r"tensor weight has shape \[3, 2\], config expects \[2, 3\]"):
        load_state(lin, {**state, "weight": torch.ones(3, 2)}, path="f.safetensors")
    with pytest.raises(WeightFileError, match="entry bias is a list, not a tensor"):
        load_state(lin, {**state, "bias": [0, 0]}, path="f.safetensors")
    assert torch.equal(lin.weight, torch.ones(2, 3))  # a refused state leaves the module as it was


def test_callers_keep_their_error_types(tmp_path, tiny_model):
    # generators raise CheckpointError (a WeightFileError), the others WeightFileError (a ValueError)
    from encoders import load_encoder
    from optimizers.inversion import load_inversion
    from optimizers.subspace import load_subspace

    assert issubclass(CheckpointError, WeightFileError) and issubclass(WeightFileError, ValueError)
    gen = tiny_model.save(tmp_path / "g")
    with pytest.raises(CheckpointError, match="no such file"):
        PGAN.load(tmp_path / "none.safetensors")
    for load, kind in [(load_encoder, "encoder"), (load_inversion, "inversion encoder"), (load_subspace, "subspace")]:
        with pytest.raises(WeightFileError, match=f"not a studio {kind} file .format 'studio-pgan/1'"):
            load(gen)
    with pytest.raises(CheckpointError, match="not a studio PGAN generator file"):
        PGAN.load(save_weights(tmp_path / "x", {"x": torch.zeros(1)}, format="studio-subspace/1"))
