"""Deterministic, seeded generator of benchmark `.evt` files.

A third each of SensorReading {sensor_id, temperature, value, zone}, TempReading {sensor_id,
temperature} and PressureReading {sensor_id, pressure}; sensors S0-S99, zones zone0-zone9,
temperature uniform 0-120, value -10-200, pressure 950-1100; events 1 ms apart.

    python bench/gen.py N OUT.evt [--seed S] [--only TYPE]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from pathlib import Path

TYPES = ("SensorReading", "TempReading", "PressureReading")


def lines(n: int, seed: int = 42, only: str | None = None) -> Iterator[str]:
    rng = random.Random(seed)
    for i in range(n):
        kind = only or TYPES[i % 3]
        sensor = f"S{rng.randrange(100)}"
        if kind == "SensorReading":
            yield (
                f'@{i} SensorReading {{ sensor_id: "{sensor}", temperature: {rng.uniform(0, 120):.2f}, '
                f'value: {rng.uniform(-10, 200):.2f}, zone: "zone{rng.randrange(10)}" }}\n'
            )
        elif kind == "TempReading":
            yield f'@{i} TempReading {{ sensor_id: "{sensor}", temperature: {rng.uniform(0, 120):.2f} }}\n'
        else:
            yield f'@{i} PressureReading {{ sensor_id: "{sensor}", pressure: {rng.uniform(950, 1100):.2f} }}\n'


def events(n: int, seed: int = 42, only: str | None = None) -> Iterator[tuple[str, int, dict[str, object]]]:
    """The same events as `lines`, as (type, ts, fields) tuples for the Python API."""
    rng = random.Random(seed)
    for i in range(n):
        kind = only or TYPES[i % 3]
        sensor = f"S{rng.randrange(100)}"
        if kind == "SensorReading":
            temperature = round(rng.uniform(0, 120), 2)
            value = round(rng.uniform(-10, 200), 2)
            yield kind, i, {"sensor_id": sensor, "temperature": temperature, "value": value,
                            "zone": f"zone{rng.randrange(10)}"}
        elif kind == "TempReading":
            yield kind, i, {"sensor_id": sensor, "temperature": round(rng.uniform(0, 120), 2)}
        else:
            yield kind, i, {"sensor_id": sensor, "pressure": round(rng.uniform(950, 1100), 2)}


def ensure(n: int, path: Path, seed: int = 42, only: str | None = None) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as out:
            out.writelines(lines(n, seed, only))
        tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", choices=TYPES)
    args = parser.parse_args()
    ensure(args.n, args.out, args.seed, args.only)


if __name__ == "__main__":
    main()
