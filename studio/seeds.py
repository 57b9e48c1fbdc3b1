"""Parsing of seed lists such as `0-15` or `1,5,9-11`."""
from __future__ import annotations


def parse_seeds(text: str, *, limit: int = 4096) -> list[int]:
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"bad seed list {text!r}: use forms like 0-15 or 1,5,9-11") from None
        if len(seeds) > limit:
            raise ValueError(f"too many seeds (limit {limit})")
    if not seeds:
        raise ValueError(f"bad seed list {text!r}: no seeds")
    return seeds
