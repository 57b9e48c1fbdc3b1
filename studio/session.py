"""A studio session as plain data: model id, settings, the tree of visited latent points, kept images.

Every image in a session is reproducible from its latent (`Node.z`) and the model id, so a session
saved to JSON reloads to the same images. Compose-by-preference rounds are recorded as a tree too:
each `Round` names the node it was proposed around, the candidate nodes shown and the choice made.

Loading is strict: a file that is not a session, or whose latents do not fit the model, is refused
with a one-line `SessionError`; nothing in it is executed or unpickled. A session file is something
a user brings, so it also has explicit `SessionLimits` (file size, nesting, string lengths, nodes,
rounds, kept images), checked before any work: the size before reading, the nesting before
parsing, the counts before validating a single latent.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.imageio import image_format

SCHEMA = "gan-studio-session/1"
IMAGE_SCHEMA = "gan-studio-image/1"
KINDS = ("seed", "variation", "interpolation", "inspire", "compose", "upload", "random")


@dataclass(frozen=True)
class SessionLimits:
    """The most a session file may hold. The defaults keep the largest allowed session (5,000 points
    of a 64-d model, 500 rounds, 200 kept images) loading in well under 2 s on 2 CPU cores; a
    512-d model meets the size limit first (about 800 points)."""

    bytes: int = 8_000_000  # the file
    depth: int = 32  # nesting of JSON objects and lists (a session needs 5; info dicts a few more)
    string: int = 2_000  # characters in any one string or key (labels, info values)
    nodes: int = 5_000  # visited latent points
    rounds: int = 500  # compose rounds, in the tree and in the search state
    kept: int = 200  # kept images: the gallery renders every one of them on load

    def __post_init__(self) -> None:
        if min(self.bytes, self.depth, self.string, self.nodes, self.rounds, self.kept) < 1:
            raise ValueError(f"session limits must be positive, got {self}")


LIMITS = SessionLimits()
MAX_NODES = LIMITS.nodes  # kept for callers that import it


def _binary_kind(raw: bytes) -> str:
    """What a non-text upload is, by its content ("this file is a PNG image ...")."""
    kind = image_format(raw)
    if kind is None:
        return "this file is binary data"
    return f"this file is a {kind} image" + (" (drop it on the PNG box to open its latent)" if kind == "PNG" else "")


class SessionError(ValueError):
    """A session or image metadata that cannot be used; the message says why in one line."""


@dataclass
class Node:
    """One visited latent point: z [latent_dim], how it was made, and where it came from."""

    id: int
    z: list[float]
    kind: str = "seed"
    parent: int | None = None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. {"seed": 3, "truncation": 0.7}

    def latent(self) -> torch.Tensor:
        return torch.tensor(self.z, dtype=torch.float32)


@dataclass
class Round:
    """One compose round: candidates proposed around `parent` and the user's choice."""

    id: int
    parent_round: int | None  # the round this one follows (None for the first)
    candidates: list[int]  # node ids, in display order
    choice: list[int] = field(default_factory=list)  # [picked] or a full ranking, best first


@dataclass
class Kept:
    """An image in the gallery; self-contained so it survives switching models."""

    model: str
    z: list[float]
    label: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def latent(self) -> torch.Tensor:
        return torch.tensor(self.z, dtype=torch.float32)


@dataclass
class Session:
    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    nodes: dict[int, Node] = field(default_factory=dict)
    rounds: dict[int, Round] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)
    current: int | None = None  # the selected node
    compose: dict[str, Any] | None = None  # the preference search's own JSON state
    _next: dict[str, int] = field(default_factory=lambda: {"node": 0, "round": 0}, repr=False, compare=False)

    # -- building the tree ---------------------------------------------------------------------

    def add(self, z: torch.Tensor | list[float], *, kind: str, parent: int | None = None,
            info: dict[str, Any] | None = None, select: bool = False) -> Node:
        """Record a latent point [latent_dim]; returns its node."""
        if kind not in KINDS:
            raise ValueError(f"unknown node kind {kind!r}; expected one of {KINDS}")
        if parent is not None and parent not in self.nodes:
            raise ValueError(f"parent node {parent} does not exist")
        values = z.detach().cpu().float().flatten().tolist() if isinstance(z, torch.Tensor) else [float(v) for v in z]
        node = Node(id=self._take("node", self.nodes), z=values, kind=kind, parent=parent,
                    info=dict(info or {}))
        self.nodes[node.id] = node
        if select:
            self.current = node.id
        return node

    def _take(self, what: str, items: dict[int, Any]) -> int:
        """The next free id: a counter, moved past the largest id when items came from elsewhere."""
        i = self._next[what]
        if i in items or (i == 0 and items):
            i = max(items) + 1
        self._next[what] = i + 1
        return i

    def node(self, node_id: int) -> Node:
        if node_id not in self.nodes:
            raise KeyError(f"no node {node_id} in this session")
        return self.nodes[node_id]

    def children(self, node_id: int) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == node_id]

    def path(self, node_id: int) -> list[Node]:
        """The nodes from the root down to `node_id`."""
        out: list[Node] = []
        cur: int | None = node_id
        while cur is not None:
            out.append(self.nodes[cur])
            cur = self.nodes[cur].parent
        return out[::-1]

    def add_round(self, candidates: list[int], *, parent_round: int | None) -> Round:
        rnd = Round(id=self._take("round", self.rounds), parent_round=parent_round,
                    candidates=list(candidates))
        self.rounds[rnd.id] = rnd
        return rnd

    def lineage(self, round_id: int | None) -> list[Round]:
        """Rounds from the first down to `round_id` (the current branch)."""
        out: list[Round] = []
        cur = round_id
        while cur is not None:
            out.append(self.rounds[cur])
            cur = self.rounds[cur].parent_round
        return out[::-1]

    def keep(self, node_id: int, *, label: str = "") -> Kept:
        n = self.node(node_id)
        item = Kept(model=self.model, z=list(n.z), label=label or f"{n.kind} #{n.id}",
                    info={"kind": n.kind, **n.info})
        self.kept.append(item)
        return item

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "settings": self.settings,
            "current": self.current,
            "nodes": [{"id": n.id, "parent": n.parent, "kind": n.kind, "z": n.z, "info": n.info}
                      for n in self.nodes.values()],
            "rounds": [{"id": r.id, "parent_round": r.parent_round, "candidates": r.candidates,
                        "choice": r.choice} for r in self.rounds.values()],
            "kept": [{"model": k.model, "z": k.z, "label": k.label, "info": k.info} for k in self.kept],
            "compose": self.compose,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, d: Any, *, latent_dims: dict[str, int] | None = None,
                  limits: SessionLimits = LIMITS) -> "Session":
        """Strict parse; `latent_dims` (model id -> latent size) checks every latent's length."""
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise SessionError(f"not a studio session file (expected schema {SCHEMA!r})")
        _check_counts(d, limits)
        _check_shape(d, limits)
        model = _expect(d, "model", str)
        dims = latent_dims or {}
        if dims and model not in dims:
            raise SessionError(f"the session uses model {model!r}, which this studio does not have")
        nodes_raw = _expect(d, "nodes", list)
        s = cls(model=model, settings=_expect(d, "settings", dict, {}))
        for raw in nodes_raw:
            if not isinstance(raw, dict):
                raise SessionError("a node in the session is not a JSON object")
            kind = _expect(raw, "kind", str)
            if kind not in KINDS:
                raise SessionError(f"a node has unknown kind {kind!r}")
            node = Node(id=_expect(raw, "id", int), z=check_latent(raw.get("z"), dims.get(model)),
                        kind=kind, parent=_expect(raw, "parent", int, None), info=_expect(raw, "info", dict, {}))
            if node.id in s.nodes:
                raise SessionError(f"node id {node.id} appears twice")
            s.nodes[node.id] = node
        for n in s.nodes.values():
            if n.parent is not None and n.parent not in s.nodes:
                raise SessionError(f"node {n.id} points at a missing parent {n.parent}")
        _check_tree(s.nodes)
        for raw in _expect(d, "rounds", list, []):
            if not isinstance(raw, dict):
                raise SessionError("a round in the session is not a JSON object")
            rnd = Round(id=_expect(raw, "id", int), parent_round=_expect(raw, "parent_round", int, None),
                        candidates=_int_list(raw, "candidates"), choice=_int_list(raw, "choice"))
            if any(c not in s.nodes for c in rnd.candidates + rnd.choice):
                raise SessionError(f"round {rnd.id} refers to nodes that are not in the session")
            s.rounds[rnd.id] = rnd
        for r in s.rounds.values():
            if r.parent_round is not None and (r.parent_round not in s.rounds or r.parent_round >= r.id):
                raise SessionError(f"round {r.id} follows a missing or later round {r.parent_round}")
        for raw in _expect(d, "kept", list, []):
            if not isinstance(raw, dict):
                raise SessionError("a kept image in the session is not a JSON object")
            kmodel = _expect(raw, "model", str)
            s.kept.append(Kept(model=kmodel, z=check_latent(raw.get("z"), dims.get(kmodel)),
                               label=_expect(raw, "label", str, ""), info=_expect(raw, "info", dict, {})))
        current = _expect(d, "current", int, None)
        if current is not None and current not in s.nodes:
            raise SessionError(f"the current node {current} is not in the session")
        s.current = current
        s.compose = _expect(d, "compose", dict, None)
        return s

    @classmethod
    def from_json(cls, text: str | bytes, *, latent_dims: dict[str, int] | None = None,
                  limits: SessionLimits = LIMITS) -> "Session":
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        if len(raw) > limits.bytes:
            raise SessionError(f"the session file is {_mb(len(raw))}, larger than the limit of {_mb(limits.bytes)}")
        depth = json_depth(raw)
        if depth > limits.depth:
            raise SessionError(f"the session file nests JSON {depth} levels deep (limit {limits.depth}); "
                               f"a studio session needs far fewer")
        try:
            d = json.loads(raw)
        except UnicodeDecodeError as e:  # the decoder's own text ("'utf-8' codec can't ...") means nothing to a user
            raise SessionError(f"{_binary_kind(raw)}, not a studio session (a session is the .json text file that "
                               f"Save session writes; byte {e.start} is not UTF-8 text)") from None
        except json.JSONDecodeError as e:
            raise SessionError(f"the session file is not valid JSON ({e.msg} at line {e.lineno}, "
                               f"column {e.colno})") from None
        except RecursionError:  # json_depth missed a nesting (it should not): still one line
            raise SessionError(f"the session file nests JSON deeper than {limits.depth} levels") from None
        return cls.from_dict(d, latent_dims=latent_dims, limits=limits)

    @classmethod
    def load(cls, path: str | Path, *, latent_dims: dict[str, int] | None = None,
             limits: SessionLimits = LIMITS) -> "Session":
        path = Path(path)
        size = path.stat().st_size
        if size > limits.bytes:  # refused before reading a byte
            raise SessionError(f"{path.name}: {_mb(size)}, larger than the limit of {_mb(limits.bytes)} "
                               f"for a session file")
        try:
            return cls.from_json(path.read_bytes(), latent_dims=latent_dims, limits=limits)
        except SessionError as e:
            raise SessionError(f"{path.name}: {e}") from None


def image_meta(model: str, node: Node, *, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata an exported PNG carries (keys shared with `python -m studio sample`)."""
    return {"schema": IMAGE_SCHEMA, "model": model, "latent": node.z, "kind": node.kind,
            "info": node.info, "settings": dict(settings or {})}


def parse_image_meta(meta: dict[str, Any] | None, *, latent_dims: dict[str, int]) -> tuple[str, list[float], dict]:
    """(model id, latent, rest) from a studio PNG's metadata, or a one-line SessionError."""
    if meta is None:
        raise SessionError("this PNG has no studio metadata (to find a similar generation, use it in Inspire)")
    model = meta.get("model")
    if not isinstance(model, str) or "latent" not in meta:
        raise SessionError("this PNG's metadata is not from the studio (no model id and latent)")
    if model not in latent_dims:
        raise SessionError(f"this PNG was made with model {model!r}, which this studio does not have")
    z = check_latent(meta["latent"], latent_dims[model])
    rest = {k: v for k, v in meta.items() if k not in ("latent", "model", "schema")}
    return model, z, rest


def check_latent(z: Any, dim: int | None) -> list[float]:
    """A JSON latent -> list of finite floats of length `dim` (when known)."""
    if not isinstance(z, list) or not z or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
        raise SessionError("a latent is not a list of numbers")
    if dim is not None and len(z) != dim:
        raise SessionError(f"a latent has {len(z)} numbers, the model needs {dim}")
    if not all(math.isfinite(v) for v in z):
        raise SessionError("a latent contains NaN or infinity")
    return [float(v) for v in z]


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)  # a JSON string, escapes included
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """How deeply the JSON text nests arrays and objects, without parsing it (brackets inside
    strings do not count). Linear in the size, in C: a hostile file costs milliseconds."""
    steps = _OPEN[np.frombuffer(_STRING.sub(b'""', raw), np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _check_counts(d: dict, limits: SessionLimits) -> None:
    """Nodes, rounds and kept images against the limits, before any of them is looked at."""
    compose = d.get("compose")
    counts = [("points (nodes)", d.get("nodes"), limits.nodes), ("compose rounds", d.get("rounds"), limits.rounds),
              ("kept images", d.get("kept"), limits.kept),
              ("composite rounds", compose.get("rounds") if isinstance(compose, dict) else None, limits.rounds)]
    for what, items, limit in counts:
        if isinstance(items, list) and len(items) > limit:
            raise SessionError(f"the session has {len(items)} {what}, more than the limit of {limit}")


def _check_shape(d: Any, limits: SessionLimits) -> None:
    """Nesting and string lengths of an already parsed value, walked without recursion."""
    stack: list[tuple[Any, int]] = [(d, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > limits.depth:
                raise SessionError(f"the session nests JSON deeper than {limits.depth} levels")
            for k, v in value.items():
                if isinstance(k, str) and len(k) > limits.string:
                    raise SessionError(f"the session has a key of {len(k)} characters (limit {limits.string})")
                if isinstance(v, (dict, list, str)):
                    stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth > limits.depth:
                raise SessionError(f"the session nests JSON deeper than {limits.depth} levels")
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list, str)))
        elif isinstance(value, str) and len(value) > limits.string:
            raise SessionError(f"the session has a text of {len(value)} characters (limit {limits.string})")


def _check_tree(nodes: dict[int, Node]) -> None:
    """The parent links form a forest: every walk up ends at a root. Linear time (each node is
    settled once), so a 5,000-node chain costs as little as 5,000 roots."""
    settled: set[int] = set()
    for start in nodes:
        walk: list[int] = []
        on_walk: set[int] = set()
        cur: int | None = start
        while cur is not None and cur not in settled:
            if cur in on_walk:
                raise SessionError(f"node {start}'s parents form a cycle")
            walk.append(cur)
            on_walk.add(cur)
            cur = nodes[cur].parent
        settled.update(walk)


def _expect(d: dict, key: str, typ: type, default: Any = ...) -> Any:
    if key not in d or (d[key] is None and default is None):
        if default is ...:
            raise SessionError(f"the session has no {key!r}")
        return default
    v = d[key]
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise SessionError(f"{key!r} should be a {typ.__name__}, got {type(v).__name__}")
    return v


def _int_list(d: dict, key: str) -> list[int]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise SessionError(f"{key!r} should be a list of node ids")
    return v
