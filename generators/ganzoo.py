"""pytorch_GAN_zoo PGAN checkpoints: import without running pickled code, and export.

A zoo checkpoint (`ProgressiveGAN.getStateDict()`, the format of its published celebAHQ-256/512,
DTD and celeba models) is a torch zip-pickle of
`{'config': models.utils.config.BaseConfig, 'netG': ..., 'netD': ..., 'avgG': ...}`.
We read it with `torch.load(weights_only=True)`, whose restricted unpickler only builds tensors and
plain containers, plus one allow-listed name: `models.utils.config.BaseConfig`, mapped onto
`ZooConfig`, an attribute bag with no behaviour. Any other global (os.system, builtins.eval, ...)
is refused before anything runs.

A checkpoint is a file a user brings, so it is checked before memory is spent on it: its size,
the number of tensors and the size of the pickle in the zip (`weightfile.FileLimits`), then, with
the storages memory-mapped rather than read, the config (`model.check_config`) and every tensor's
shape against the networks that config describes, before any network is built.
"""
from __future__ import annotations

import contextlib
import pickle
import re
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import torch

from weightfile import LIMITS, FileLimits, WeightFileError, check_shapes, check_size, load_state

from .errors import CheckpointError
from .model import PGAN, expected_shapes
from .pgan import Discriminator, Generator, PGANConfig

ZOO_CONFIG_GLOBAL = "models.utils.config.BaseConfig"
GENERATORS = ("avgG", "netG")
# Losses whose generator ends with tanh in the zoo (base_loss_criterions.py).
TANH_LOSSES = {"MSE", "DCGAN"}
KNOWN_LOSSES = {"MSE", "DCGAN", "WGANGP", "Logistic"}


class ZooConfig:
    """Stand-in for the zoo's `BaseConfig`: attributes only, nothing executes on load."""

    def __init__(self, **fields: Any):
        self.__dict__.update(fields)


# -- reading --------------------------------------------------------------------------------------

def read_checkpoint(path: str | Path, *, limits: FileLimits = LIMITS, mmap: bool = False) -> dict[str, Any]:
    """The raw zoo dict, read with the restricted unpickler. Raises CheckpointError.

    With `mmap`, a torch zip's storages are memory-mapped, not read: its tensors cost memory only
    when used (they must be copied before the file changes: `load_zoo` copies them into networks)."""
    path = Path(path)
    try:
        size = check_size(path, limits=limits)
    except WeightFileError as e:
        raise CheckpointError(str(e)) from None
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        _check_zip(path, limits)
    try:
        with torch.serialization.safe_globals([(ZooConfig, ZOO_CONFIG_GLOBAL)]):
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unpickling_message(path, str(e))) from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "zip" in first.lower() or "central directory" in first.lower() or isinstance(e, EOFError):
            raise CheckpointError(f"{path}: truncated or not a torch checkpoint ({first})") from None
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({first})") from None
    except Exception as e:  # the unpickler meets arbitrary bytes: any failure means "not ours"
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a pytorch_GAN_zoo checkpoint dict")
    return state


def _check_zip(path: Path, limits: FileLimits) -> None:
    """A torch zip (one entry per tensor storage, plus data.pkl): its entry count and pickle size
    against the limits, and its CRCs, before the unpickler sees it."""
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
            storages = [e for e in entries if "/data/" in e.filename]
            if len(storages) > limits.tensors:
                raise CheckpointError(f"{path}: holds {len(storages)} tensors, more than the limit of {limits.tensors}")
            pickle_size = max((e.file_size for e in entries if e.filename.endswith(".pkl")), default=0)
            if pickle_size > limits.header:
                raise CheckpointError(f"{path}: its pickle is {pickle_size / 1e6:.0f} MB, more than the limit of "
                                      f"{limits.header / 1e6:.0f} MB (a checkpoint's pickle holds names, not numbers)")
            z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({e})") from None


def _unpickling_message(path: Path, err: str) -> str:
    m = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", err)
    if m:
        return (f"{path}: refused: the file asks to load `{m.group(1).strip()}`, which is not allowed "
                f"in a weights file (it may try to run code); nothing from it was executed")
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "weights_only" not in ln]
    line = lines[0] if lines else "unpickling failed"
    return f"{path}: not a readable torch checkpoint ({line[:200]})"


def config_from_zoo(cfg: Any, state: dict[str, Any], path: Path | str = "checkpoint") -> PGANConfig:
    """Every zoo config field that changes the PGAN networks, mapped onto PGANConfig."""
    c = vars(cfg) if isinstance(cfg, ZooConfig) else cfg if isinstance(cfg, dict) else None
    if c is None:
        raise CheckpointError(f"{path}: its 'config' is a {type(cfg).__name__}, not a zoo config")
    net_g = state.get("netG") or {}
    if "depthScale0" not in c or "formatLayer.module.weight" not in net_g:
        raise CheckpointError(f"{path}: a pytorch_GAN_zoo checkpoint of another architecture "
                              f"({_guess_architecture(c, net_g)}), not a progressive GAN (PGAN)")
    others = c.get("depthOtherScales", [])
    if not isinstance(others, (list, tuple)) or len(others) > 64:
        raise CheckpointError(f"{path}: zoo config's depthOtherScales is not a short list of channel counts")
    loss = c.get("lossCriterion", "WGANGP")
    if loss not in KNOWN_LOSSES:
        raise CheckpointError(f"{path}: unknown zoo loss criterion {loss!r}")
    category = int(c.get("categoryVectorDim", 0) or 0)
    latent = c.get("latentVectorDim", int(c.get("noiseVectorDim", 0)) + category)
    try:
        return PGANConfig(
            latent_dim=int(latent),
            depths=(int(c["depthScale0"]), *[int(d) for d in c.get("depthOtherScales", [])]),
            channels=int(c.get("dimOutput", 3)),
            leaky_relu=float(c.get("leakyReluLeak", 0.2)),
            pixel_norm=bool(c.get("perChannelNormalization", True)),
            minibatch_stddev=bool(c.get("miniBatchStdDev", False)),
            equalized_lr=bool(c.get("equalizedlR", True)),
            output_activation="tanh" if loss in TANH_LOSSES else None,
            decision_size=1 + category,
            alpha=float(c.get("alpha", 0.0)),
        )
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: zoo config does not describe a valid PGAN ({e})") from None


def _guess_architecture(c: dict[str, Any], net_g: dict[str, Any]) -> str:
    if "nMappings" in c or any(k.startswith("mapping.") for k in net_g):
        return "StyleGAN"
    if "dimG" in c or any(k.startswith("main.") for k in net_g):
        return "DCGAN"
    return "unknown"


# Key prefixes, zoo <-> ours; {i} and {j} stand for layer indices.
_G_KEYS = [("formatLayer.module.", "format_layer."), ("groupScale0.0.module.", "scale0."),
           ("scaleLayers.{i}.{j}.module.", "scales.{i}.{j}."), ("toRGBLayers.{i}.module.", "to_rgb.{i}.")]
_D_KEYS = [("fromRGBLayers.{i}.module.", "from_rgb.{i}."), ("scaleLayers.{i}.{j}.module.", "scales.{i}.{j}."),
           ("groupScaleZero.0.module.", "scale0_conv."), ("groupScaleZero.1.module.", "scale0_linear."),
           ("decisionLayer.module.", "decision.")]


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile("^" + pattern)


def _rename(state: dict[str, Any], table: list[tuple[str, str]], *, to_zoo: bool = False) -> dict[str, Any]:
    """Rename state-dict keys from the zoo's names to ours (or back with to_zoo=True)."""
    pairs = [(b, a) if to_zoo else (a, b) for a, b in table]
    out = {}
    for key, value in state.items():
        for src, dst in pairs:
            m = _template_regex(src).match(key)
            if m:
                key = dst.format(**m.groupdict()) + key[m.end():]
                break
        out[key] = value
    return out


def _tensors(state: Any, expected: dict[str, tuple[int, ...]], path: Path | str, what: str) -> dict[str, Any]:
    """One network's entries (minus torch's `_metadata`), their shapes checked against the config's."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: {what} is a {type(state).__name__}, not a state dict")
    state = {k: v for k, v in state.items() if not str(k).endswith("_metadata")}
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: {what} entry {bad} is a {type(state[bad]).__name__}, not a tensor")
    try:
        check_shapes(path, {k: tuple(v.shape) for k, v in state.items()}, expected, what=what)
    except WeightFileError as e:
        raise CheckpointError(str(e)) from None
    return state


def _load_into(module: torch.nn.Module, state: dict[str, Any], path: Path | str, what: str) -> None:
    """Strict load (shared with our own format), minus the `_metadata` entries torch adds."""
    try:
        load_state(module, {k: v for k, v in state.items() if not k.endswith("_metadata")}, path=path, what=what)
    except WeightFileError as e:
        raise CheckpointError(str(e)) from None


def load_zoo(path: str | Path, *, generator: str = "avgG", device: str | None = None,
             with_discriminator: bool = True) -> PGAN:
    """A zoo PGAN checkpoint as our PGAN. `generator` is 'avgG' (moving average, default) or 'netG'."""
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
    path = Path(path)
    state = read_checkpoint(path, mmap=True)
    if "config" not in state or "netG" not in state:
        raise CheckpointError(f"{path}: not a pytorch_GAN_zoo checkpoint (keys: {sorted(map(str, state))[:6]})")
    config = config_from_zoo(state["config"], state, path)
    expected = expected_shapes(config, path)  # the config's size checked before anything is built
    key = generator if generator in state else "netG"
    g_state = _tensors(_rename(state[key], _G_KEYS), expected["G"], path, f"generator '{key}'")
    d_state = _tensors(_rename(state["netD"], _D_KEYS), expected["D"], path, "discriminator 'netD'") \
        if with_discriminator and "netD" in state else None
    g = Generator(config)
    _load_into(g, g_state, path, f"generator '{key}'")
    d = None
    if d_state is not None:
        d = Discriminator(config)
        _load_into(d, d_state, path, "discriminator 'netD'")
    info = {"source": f"pytorch_GAN_zoo checkpoint {path.name}", "generator": key}
    return PGAN(config, g, d, device=device, info=info)


def is_zoo_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in (".pth", ".pt", ".ckpt")


# -- writing --------------------------------------------------------------------------------------

def zoo_state(model: PGAN, *, net_g: Generator | None = None) -> dict[str, Any]:
    """Our PGAN as the zoo's state dict (config object + netG, netD, avgG)."""
    c = model.config
    if c.decision_size != 1:
        raise ValueError("export of AC-GAN (decision_size > 1) models is not supported")
    if model.discriminator is None:
        raise ValueError("the zoo format needs a discriminator; this model has none")
    cfg = ZooConfig(
        depthScale0=c.depths[0], initBiasToZero=True, leakyReluLeak=c.leaky_relu,
        depthOtherScales=list(c.depths[1:]), perChannelNormalization=c.pixel_norm, alpha=c.alpha,
        miniBatchStdDev=c.minibatch_stddev, equalizedlR=c.equalized_lr, noiseVectorDim=c.latent_dim,
        dimOutput=c.channels, learningRate=0.001, attribKeysOrder=None, categoryVectorDim=0,
        weightConditionG=0.0, weightConditionD=0.0, GDPP=False, latentVectorDim=c.latent_dim,
        lossCriterion="DCGAN" if c.output_activation == "tanh" else "WGANGP", lambdaGP=10.0,
        epsilonD=0.001, logisticGradReal=0.0)
    avg = _rename(model.generator.state_dict(), _G_KEYS, to_zoo=True)
    raw = _rename((net_g or model.generator).state_dict(), _G_KEYS, to_zoo=True)
    disc = _rename(model.discriminator.state_dict(), _D_KEYS, to_zoo=True)
    clone = lambda s: {k: v.detach().cpu().clone() for k, v in s.items()}  # noqa: E731
    return {"config": cfg, "netG": clone(raw), "netD": clone(disc), "avgG": clone(avg)}


@contextlib.contextmanager
def _zoo_config_module():
    """Make `ZooConfig` pickle under the zoo's name, `models.utils.config.BaseConfig`."""
    names = ["models", "models.utils", "models.utils.config"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}
    mods["models"].utils = mods["models.utils"]
    mods["models.utils"].config = mods["models.utils.config"]
    mods["models.utils.config"].BaseConfig = ZooConfig
    old = (ZooConfig.__module__, ZooConfig.__qualname__, ZooConfig.__name__)
    ZooConfig.__module__, ZooConfig.__qualname__, ZooConfig.__name__ = "models.utils.config", "BaseConfig", "BaseConfig"
    sys.modules.update(mods)
    try:
        yield
    finally:
        ZooConfig.__module__, ZooConfig.__qualname__, ZooConfig.__name__ = old
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


def save_zoo_state(state: dict[str, Any], path: str | Path) -> Path:
    """torch.save a zoo-style dict whose `config` is a ZooConfig, pickled as the zoo's BaseConfig."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _zoo_config_module():
        torch.save(state, path)
    return path


def export_zoo(model: PGAN, path: str | Path, *, net_g: Generator | None = None) -> Path:
    """Write a checkpoint that pytorch_GAN_zoo's `ProgressiveGAN.load()` reads.

    `avgG` is our (moving-average) generator; `netG` is `net_g` when given (the raw trained
    generator), else the same weights.
    """
    return save_zoo_state(zoo_state(model, net_g=net_g), path)
