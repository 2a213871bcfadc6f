"""Seeded, realistic telecom sample data for the quick start and for tests.

Two datasets are modelled, both deterministic for a given seed and sized by arguments:

``bundle_sales``
    Daily sales of mobile-data bundles. A unit of work is one (segment, location,
    product). Each unit has its own true constant own-price elasticity drawn around its
    segment's mean (consumer -2.2, business -1.5, youth -3.0, prepaid -2.6,
    enterprise -1.3), its own demand scale, a weekly (weekend) pattern, a slow trend and
    a price path with list-price changes every few weeks, 10-30 % promotions lasting a
    few days and small realised-price noise. About 15 % of units never change price and
    about 10 % were launched in the last one to three weeks, so a pricing algorithm has
    to cope with no price signal and short histories. Daily volume is Poisson around
    ``scale * (price / base_price) ** elasticity * weekly * trend``, so small units have
    zero-volume days.

``voice_traffic``
    Hourly offered voice load per radio cell. A unit of work is one (cell_id, hour).
    Each cell has a type (urban, suburban, rural, business_district, transport_hub)
    with its own weekday and weekend diurnal profile, an engineered capacity (the
    Erlang-B load its channel count carries at 2 % blocking), a busy-hour utilisation
    target, a slow trend and multiplicative noise.

Command line (writes a Hive-partitioned, zstd-compressed Parquet dataset)::

    python -m batch_scoring.jobs.sample_data --kind bundle_sales --out data/bundle_sales \\
        [--rows N] [--units N] [--seed N] [--overwrite | --if-missing]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

KINDS = ("bundle_sales", "voice_traffic")
BUNDLE_UNITS, BUNDLE_DAYS, BUNDLE_SEED = 2000, 180, 7
VOICE_CELLS, VOICE_DAYS, VOICE_SEED = 300, 56, 11

SEGMENTS = ("consumer", "business", "youth", "prepaid", "enterprise")
SEGMENT_ELASTICITY = np.array([-2.2, -1.5, -3.0, -2.6, -1.3])
SEGMENT_PRICE_FACTOR = np.array([1.00, 1.10, 0.85, 0.95, 1.05])
SEGMENT_SIZE = np.array([1.00, 0.35, 0.60, 0.80, 0.15])
SEGMENT_WEEKLY = np.array(
    [  # Monday .. Sunday
        [0.96, 0.95, 0.97, 1.00, 1.07, 1.10, 0.95],
        [1.10, 1.12, 1.12, 1.10, 1.02, 0.45, 0.35],
        [0.92, 0.92, 0.95, 1.00, 1.12, 1.20, 1.05],
        [0.97, 0.96, 0.98, 1.00, 1.08, 1.06, 0.95],
        [1.15, 1.18, 1.18, 1.15, 1.05, 0.30, 0.20],
    ]
)
ELASTICITY_SD = 0.35

PRODUCTS = ("data_1gb", "data_5gb", "data_20gb", "data_50gb", "unlimited")
PRODUCT_BASE_PRICE = np.array([5.0, 12.0, 20.0, 30.0, 45.0])
PRODUCT_COST_SHARE = np.array([0.45, 0.40, 0.36, 0.33, 0.30])
PRODUCT_POPULARITY = np.array([1.00, 1.30, 0.90, 0.45, 0.35])
PRODUCT_TREND = np.array([-0.20, -0.05, 0.05, 0.15, 0.30])

LIST_LEVELS = np.array([0.85, 0.90, 0.95, 1.00, 1.05, 1.10, 1.15])
LIST_LEVEL_P = np.array([0.06, 0.12, 0.17, 0.30, 0.17, 0.12, 0.06])
PROMO_DEPTHS = np.array([0.10, 0.15, 0.20, 0.25, 0.30])

CITIES = (
    "Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Stuttgart", "Dusseldorf",
    "Leipzig", "Dortmund", "Essen", "Bremen", "Dresden", "Hanover", "Nuremberg",
    "Duisburg", "Bochum", "Wuppertal", "Bielefeld", "Bonn", "Munster", "Mannheim",
    "Karlsruhe", "Augsburg", "Wiesbaden", "Monchengladbach", "Gelsenkirchen", "Aachen",
    "Braunschweig", "Kiel", "Chemnitz", "Halle", "Magdeburg", "Freiburg", "Krefeld",
    "Mainz", "Lubeck", "Erfurt", "Oberhausen", "Rostock", "Kassel", "Hagen", "Potsdam",
    "Saarbrucken", "Hamm", "Ludwigshafen", "Oldenburg", "Mulheim", "Osnabruck",
    "Leverkusen", "Darmstadt", "Heidelberg", "Solingen", "Herne", "Regensburg", "Neuss",
    "Paderborn", "Ingolstadt", "Offenbach", "Furth", "Wurzburg", "Ulm", "Heilbronn",
    "Pforzheim", "Wolfsburg", "Gottingen", "Bottrop", "Reutlingen", "Koblenz",
    "Bremerhaven", "Recklinghausen", "Bergisch Gladbach", "Erlangen", "Jena", "Remscheid",
    "Trier", "Salzgitter", "Moers", "Siegen", "Hildesheim", "Cottbus", "Kaiserslautern",
    "Gutersloh", "Schwerin", "Witten", "Gera", "Iserlohn", "Ludwigsburg", "Hanau",
    "Esslingen", "Zwickau", "Duren", "Ratingen", "Tubingen", "Flensburg", "Villingen",
    "Konstanz", "Marl", "Worms", "Velbert", "Minden",
)
DISTRICTS = ("North", "South", "East", "West", "Centre")

CELL_TYPES = ("urban", "suburban", "rural", "business_district", "transport_hub")
CELL_TYPE_SHARE = np.array([0.35, 0.30, 0.20, 0.08, 0.07])
CELL_TYPE_PRICE_PER_MIN = np.array([0.08, 0.07, 0.05, 0.12, 0.10])
CELL_TYPE_CAPACITY = np.array(
    [  # Erlang-B load at 2 % blocking for the type's usual channel counts
        [63.90, 78.31, 92.82, 107.42],  # 75, 90, 105, 120 channels
        [35.61, 43.06, 49.64, 63.90],  # 45, 53, 60, 75
        [21.93, 29.17, 35.61, 35.61],  # 30, 38, 45, 45
        [78.31, 92.82, 107.42, 122.08],  # 90, 105, 120, 135
        [92.82, 107.42, 122.08, 122.08],  # 105, 120, 135, 135
    ]
)
# cell type -> (weekday, weekend), each (floor, ((peak hour, width in hours, height), ...))
DIURNAL_BUMPS = {
    "urban": (
        (0.04, ((9.0, 2.0, 0.55), (13.0, 3.0, 0.70), (19.0, 2.5, 0.90))),
        (0.04, ((12.5, 3.5, 0.70), (19.0, 3.0, 0.85))),
    ),
    "suburban": (
        (0.04, ((8.0, 1.5, 0.45), (13.0, 3.0, 0.45), (20.0, 2.5, 0.90))),
        (0.04, ((11.0, 3.0, 0.60), (19.5, 3.0, 0.85))),
    ),
    "rural": (
        (0.05, ((9.0, 2.5, 0.50), (14.0, 3.0, 0.50), (19.0, 2.5, 0.70))),
        (0.05, ((11.5, 3.0, 0.50), (18.5, 3.0, 0.60))),
    ),
    "business_district": (
        (0.02, ((10.0, 1.8, 1.00), (15.0, 2.0, 0.95), (20.0, 2.0, 0.15))),
        (0.02, ((13.0, 3.0, 0.22),)),
    ),
    "transport_hub": (
        (0.03, ((8.0, 1.2, 1.00), (13.0, 2.5, 0.50), (18.0, 1.4, 0.95))),
        (0.03, ((12.0, 3.5, 0.55), (18.0, 2.5, 0.45))),
    ),
}


@dataclasses.dataclass(frozen=True)
class SampleSummary:
    """What :func:`write_sample` wrote.

    Attributes:
        kind: "bundle_sales" or "voice_traffic".
        path: absolute path of the Parquet dataset directory.
        rows: number of rows written.
        units: number of distinct units of work written ((segment, location, product)
            for bundle_sales, (cell_id, hour) for voice_traffic).
        seconds: wall-clock seconds spent generating and writing.
    """

    kind: str
    path: str
    rows: int
    units: int
    seconds: float


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _generator(seed: object) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(seed)


def _as_date(name: str, value: object) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if not isinstance(value, datetime.date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
    return value


def _calendar(start: datetime.date, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dates as datetime64[D], weekday 0=Monday, 'YYYY-MM' strings as object)."""
    dates = np.datetime64(start, "D") + np.arange(days)
    weekday = (dates.astype(np.int64) + 3) % 7
    months = np.datetime_as_string(dates.astype("datetime64[M]")).astype(object)
    return dates, weekday, months


def _location_names(count: int) -> np.ndarray:
    if count <= len(CITIES):
        return np.array(CITIES[:count], dtype=object)
    per_city = math.ceil(count / len(CITIES))
    districts = list(DISTRICTS) + [f"Area {i}" for i in range(len(DISTRICTS) + 1, per_city + 1)]
    names = [f"{city} {d}" for d in districts[:per_city] for city in CITIES]
    return np.array(names[:count], dtype=object)


def _psychological(price: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(price * 2.0) / 2.0 - 0.01, 0.49)


def _last_event(events: np.ndarray) -> np.ndarray:
    """Index of the most recent True at or before each column, -1 where none yet."""
    cols = np.arange(events.shape[1])
    return np.maximum.accumulate(np.where(events, cols, -1), axis=1)


def _bundle_units(units: int, rng: np.random.Generator) -> pd.DataFrame:
    combos = len(SEGMENTS) * len(PRODUCTS)
    n_locations = math.ceil(units / combos)
    names = _location_names(n_locations)
    pick = rng.choice(n_locations * combos, size=units, replace=False)
    loc, seg, prod = pick // combos, (pick % combos) // len(PRODUCTS), pick % len(PRODUCTS)
    table = pd.DataFrame(
        {
            "segment": np.array(SEGMENTS, dtype=object)[seg],
            "location": names[loc],
            "product": np.array(PRODUCTS, dtype=object)[prod],
            "seg": seg,
            "prod": prod,
            "city_rank": loc % len(CITIES),
        }
    )
    return table.sort_values(["segment", "location", "product"], ignore_index=True)


def _price_paths(base: np.ndarray, days: int, rng: np.random.Generator) -> np.ndarray:
    n = base.size
    changes = rng.random((n, days)) < 1 / 21
    changes[:, 0] = True
    levels = rng.choice(LIST_LEVELS, size=(n, days), p=LIST_LEVEL_P)
    list_price = _psychological(base[:, None] * np.take_along_axis(levels, _last_event(changes), 1))
    starts = rng.random((n, days)) < 1 / 30
    length = rng.integers(3, 8, size=(n, days))
    depth = rng.choice(PROMO_DEPTHS, size=(n, days))
    last = _last_event(starts)
    safe = np.maximum(last, 0)
    active = (last >= 0) & (np.arange(days) - last < np.take_along_axis(length, safe, 1))
    discount = np.where(active, np.take_along_axis(depth, safe, 1), 0.0)
    noise = 1.0 + rng.normal(0.0, 0.004, size=(n, days))
    return np.round(list_price * (1.0 - discount) * noise, 2)


def make_bundle_sales(
    units: int = BUNDLE_UNITS,
    days: int = BUNDLE_DAYS,
    seed: int = BUNDLE_SEED,
    start: datetime.date = datetime.date(2026, 5, 1),
) -> pd.DataFrame:
    """Daily mobile-data bundle sales, one row per (segment, location, product, day).

    Args:
        units: exact number of distinct (segment, location, product) units of work.
        days: length of the calendar in days, starting at ``start``; late-launched units
            (about 10 %) only have their last 7-21 days (fewer if ``days`` is smaller).
        seed: seed of the numpy random generator; the same arguments give an identical frame.
        start: first sale date.

    Returns:
        A DataFrame sorted by (segment, location, product, sale_date) with
        ``units * days`` rows minus the late-launched units' missing days, and columns:

        - ``segment`` (object str): consumer, business, youth, prepaid or enterprise.
        - ``location`` (object str): city (or city district) name.
        - ``product`` (object str): data_1gb, data_5gb, data_20gb, data_50gb or unlimited.
        - ``sale_date`` (datetime64[ns]): the day, at midnight.
        - ``price`` (float64): realised EUR price per bundle that day, > 0.
        - ``volume`` (int64): bundles sold that day, >= 0.
        - ``unit_cost`` (float64): marginal EUR cost per bundle, constant per unit, < price.
        - ``sale_month`` (object str): "YYYY-MM" of ``sale_date``.

    Raises:
        TypeError: ``units``, ``days`` or ``seed`` is not an int, or ``start`` is not a date.
        ValueError: ``units`` or ``days`` is below 1, or ``seed`` is negative.
    """
    units, days = _positive_int("units", units), _positive_int("days", days)
    start = _as_date("start", start)
    rng = _generator(seed)
    table = _bundle_units(units, rng)
    seg, prod = table["seg"].to_numpy(), table["prod"].to_numpy()

    base = _psychological(
        PRODUCT_BASE_PRICE[prod] * SEGMENT_PRICE_FACTOR[seg] * rng.lognormal(0.0, 0.04, units)
    )
    cost_share = np.minimum(PRODUCT_COST_SHARE[prod] * rng.lognormal(0.0, 0.05, units), 0.5)
    unit_cost = np.round(base * cost_share, 4)
    elasticity = np.minimum(SEGMENT_ELASTICITY[seg] + rng.normal(0.0, ELASTICITY_SD, units), -0.3)
    city_size = (1.0 + table["city_rank"].to_numpy() / 10.0) ** -0.6
    popularity = SEGMENT_SIZE[seg] * PRODUCT_POPULARITY[prod]
    scale = 30.0 * city_size * popularity * rng.lognormal(0.0, 0.8, units)
    growth = PRODUCT_TREND[prod] + rng.normal(0.0, 0.10, units)
    weekly = SEGMENT_WEEKLY[seg] ** rng.uniform(0.7, 1.3, (units, 1))

    path_draw = rng.random(units)
    constant, late = path_draw < 0.15, (path_draw >= 0.15) & (path_draw < 0.25)
    price = np.where(constant[:, None], base[:, None], _price_paths(base, days, rng))
    history = np.where(late, np.minimum(days, rng.integers(7, 22, units)), days)

    dates, weekday, months = _calendar(start, days)
    t = np.arange(days)
    lam = (
        scale[:, None]
        * (price / base[:, None]) ** elasticity[:, None]
        * weekly[:, weekday]
        * np.exp(growth[:, None] * t / 365.0)
        * rng.lognormal(0.0, 0.12, (units, days))
    )
    volume = rng.poisson(lam)
    keep = t[None, :] >= (days - history)[:, None]
    counts = keep.sum(axis=1)
    day_index = np.broadcast_to(t, keep.shape)[keep]
    return pd.DataFrame(
        {
            "segment": np.repeat(table["segment"].to_numpy(), counts),
            "location": np.repeat(table["location"].to_numpy(), counts),
            "product": np.repeat(table["product"].to_numpy(), counts),
            "sale_date": dates[day_index].astype("datetime64[ns]"),
            "price": price[keep],
            "volume": volume[keep].astype(np.int64),
            "unit_cost": np.repeat(unit_cost, counts),
            "sale_month": months[day_index],
        }
    )


def _diurnal_profiles() -> np.ndarray:
    """Array [cell type, weekend (0/1), hour] normalised to a weekday peak of 1."""
    hours = np.arange(24.0)
    out = np.zeros((len(CELL_TYPES), 2, 24))
    for i, name in enumerate(CELL_TYPES):
        for weekend, (floor, bumps) in enumerate(DIURNAL_BUMPS[name]):
            out[i, weekend] = floor
            for peak, width, height in bumps:
                gap = np.minimum(np.abs(hours - peak), 24.0 - np.abs(hours - peak))
                out[i, weekend] += height * np.exp(-0.5 * (gap / width) ** 2)
        out[i] /= out[i, 0].max()
    return out


def make_voice_traffic(
    cells: int = VOICE_CELLS,
    days: int = VOICE_DAYS,
    seed: int = VOICE_SEED,
    start: datetime.date = datetime.date(2026, 9, 1),
) -> pd.DataFrame:
    """Hourly offered voice load per radio cell, one row per (cell_id, hour, day).

    Args:
        cells: number of radio cells; the number of (cell_id, hour) units is ``cells * 24``.
        days: number of days, starting at ``start``.
        seed: seed of the numpy random generator; the same arguments give an identical frame.
        start: first traffic date.

    Returns:
        A DataFrame of ``cells * 24 * days`` rows sorted by (cell_id, hour, traffic_date)
        with columns:

        - ``cell_id`` (object str): "CELL-00001", "CELL-00002", ...
        - ``cell_type`` (object str): urban, suburban, rural, business_district or
          transport_hub.
        - ``hour`` (int32): hour of day, 0..23.
        - ``traffic_date`` (datetime64[ns]): the day, at midnight.
        - ``load_erlangs`` (float64): offered voice load in that hour, Erlangs, >= 0.
        - ``capacity_erlangs`` (float64): engineered capacity of the cell in Erlangs
          (Erlang-B load at 2 % blocking for its channel count), > 0, constant per cell.
        - ``base_price_per_min`` (float64): EUR per minute for the cell type.
        - ``traffic_month`` (object str): "YYYY-MM" of ``traffic_date``.

    Raises:
        TypeError: ``cells``, ``days`` or ``seed`` is not an int, or ``start`` is not a date.
        ValueError: ``cells`` or ``days`` is below 1, or ``seed`` is negative.
    """
    cells, days = _positive_int("cells", cells), _positive_int("days", days)
    start = _as_date("start", start)
    rng = _generator(seed)
    ctype = rng.choice(len(CELL_TYPES), size=cells, p=CELL_TYPE_SHARE)
    capacity = CELL_TYPE_CAPACITY[ctype, rng.integers(0, 4, cells)]
    busy_util = np.clip(rng.beta(6.0, 3.0, cells) * 1.05, 0.15, 1.0)
    growth = rng.normal(-0.05, 0.08, cells)

    dates, weekday, months = _calendar(start, days)
    weekend = (weekday >= 5).astype(int)
    profile = _diurnal_profiles()[ctype][:, weekend, :].transpose(0, 2, 1)
    load = (
        (capacity * busy_util)[:, None, None]
        * profile
        * rng.lognormal(0.0, 0.08, (cells, 24, 1))
        * rng.lognormal(0.0, 0.06, (cells, 1, days))
        * np.exp(growth[:, None, None] * np.arange(days) / 365.0)
        * rng.lognormal(0.0, 0.10, (cells, 24, days))
    )
    width = max(5, len(str(cells)))
    cell_ids = np.array([f"CELL-{i:0{width}d}" for i in range(1, cells + 1)], dtype=object)
    per_cell = 24 * days
    return pd.DataFrame(
        {
            "cell_id": np.repeat(cell_ids, per_cell),
            "cell_type": np.repeat(np.array(CELL_TYPES, dtype=object)[ctype], per_cell),
            "hour": np.tile(np.repeat(np.arange(24, dtype=np.int32), days), cells),
            "traffic_date": np.tile(dates, cells * 24).astype("datetime64[ns]"),
            "load_erlangs": np.round(load, 3).reshape(-1),
            "capacity_erlangs": np.repeat(capacity, per_cell),
            "base_price_per_min": np.repeat(CELL_TYPE_PRICE_PER_MIN[ctype], per_cell),
            "traffic_month": np.tile(months, cells * 24),
        }
    )


def _is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _write_parquet(frame: pd.DataFrame, date_col: str, part_col: str, root: Path) -> None:
    table = pa.Table.from_pandas(frame.drop(columns=[part_col]), preserve_index=False)
    index = table.schema.get_field_index(date_col)
    table = table.set_column(index, date_col, table[date_col].cast(pa.date32()))
    table = table.replace_schema_metadata(None)
    months = frame[part_col].to_numpy()
    for month in sorted(set(months)):
        folder = root / f"{part_col}={month}"
        folder.mkdir()
        part = table.filter(pa.array(months == month))
        pq.write_table(part, folder / "part-00000.parquet", compression="zstd")


def _publish(staging: Path, target: Path) -> None:
    retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        if retired.exists():
            retired.rename(target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _sized_frame(
    kind: str, rows: int | None, units: int | None, seed: int | None
) -> tuple[pd.DataFrame, int]:
    if kind == "bundle_sales":
        n_units = BUNDLE_UNITS if units is None else _positive_int("units", units)
        days = BUNDLE_DAYS if rows is None else max(1, round(_positive_int("rows", rows) / n_units))
        seed = BUNDLE_SEED if seed is None else seed
        return make_bundle_sales(n_units, days, seed), n_units
    cells = VOICE_CELLS if units is None else max(1, _positive_int("units", units) // 24)
    days = VOICE_DAYS if rows is None else max(1, round(_positive_int("rows", rows) / (cells * 24)))
    seed = VOICE_SEED if seed is None else seed
    return make_voice_traffic(cells, days, seed), cells * 24


def write_sample(
    kind: str,
    path: str | os.PathLike,
    *,
    rows: int | None = None,
    units: int | None = None,
    seed: int | None = None,
    overwrite: bool = False,
) -> SampleSummary:
    """Generate a sample dataset and write it as a Hive-partitioned Parquet dataset.

    bundle_sales is partitioned by ``sale_month`` and voice_traffic by ``traffic_month``
    (``<path>/sale_month=2026-05/part-00000.parquet``, ...), zstd-compressed, with the
    date column stored as Arrow ``date32`` and the partition column only in the folder
    names. The dataset is written into a hidden sibling temporary folder and renamed
    into place, so readers never see a half-written dataset.

    Args:
        kind: "bundle_sales" or "voice_traffic".
        path: target dataset directory; its parent folders are created.
        rows: approximate number of rows; sets the number of days
            (bundle_sales: ``max(1, round(rows / units))``; voice_traffic:
            ``max(1, round(rows / (cells * 24)))``). None keeps the default days
            (180 for bundle_sales, 56 for voice_traffic).
        units: number of units of work. bundle_sales: exact number of
            (segment, location, product) units (default 2000). voice_traffic:
            ``cells = max(1, units // 24)`` cells of 24 hour units each (default 300 cells).
        seed: random seed; None uses the generator's default (7 or 11).
        overwrite: replace an existing non-empty directory at ``path``.

    Returns:
        A :class:`SampleSummary` with the rows and units actually written.

    Raises:
        ValueError: ``kind`` is not one of the allowed kinds, ``rows``/``units`` < 1 or
            ``seed`` < 0.
        TypeError: ``rows``, ``units`` or ``seed`` is not an int.
        FileExistsError: ``path`` is a non-empty directory and ``overwrite`` is False.
        NotADirectoryError: ``path`` exists and is not a directory (never deleted).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; allowed kinds: {', '.join(KINDS)}")
    began = time.perf_counter()
    target = Path(os.path.abspath(os.fspath(path)))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a directory")
    if _is_nonempty_dir(target) and not overwrite:
        raise FileExistsError(
            f"{target} already exists and is not empty; pass overwrite=True (--overwrite) "
            "or delete it"
        )
    frame, n_units = _sized_frame(kind, rows, units, seed)
    date_col, part_col = ("sale_date", "sale_month") if kind == "bundle_sales" else (
        "traffic_date", "traffic_month"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    staging.mkdir()
    try:
        _write_parquet(frame, date_col, part_col, staging)
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SampleSummary(kind, str(target), len(frame), n_units, time.perf_counter() - began)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="batch-score sample-data",
        description="Write a seeded telecom sample dataset as Hive-partitioned Parquet.",
        epilog="example: batch-score sample-data --kind bundle_sales --out data/my_sales --rows 2000 --units 50",
    )
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--out", required=True, metavar="PATH", help="dataset directory")
    parser.add_argument("--rows", type=int, metavar="N", help="approximate row count")
    parser.add_argument("--units", type=int, metavar="N", help="units of work")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    mode.add_argument(
        "--if-missing", action="store_true", help="keep an existing non-empty dataset and exit 0"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code.

    Writes the dataset and prints one summary line (kind, rows, units, path, seconds).
    With ``--if-missing`` an existing non-empty ``--out`` directory is kept and reported.
    Returns 0 on success, 1 when :func:`write_sample` refuses (existing dataset without
    ``--overwrite``, path is a file, invalid sizes); argparse exits with 2 on bad arguments.
    """
    args = _parse_args(argv)
    if args.if_missing and _is_nonempty_dir(Path(args.out)):
        print(f"{args.kind}: kept existing dataset at {os.path.abspath(args.out)}")
        return 0
    try:
        summary = write_sample(
            args.kind, args.out, rows=args.rows, units=args.units, seed=args.seed,
            overwrite=args.overwrite,
        )
    except (FileExistsError, NotADirectoryError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{summary.kind}: {summary.rows} rows, {summary.units} units -> {summary.path} "
        f"({summary.seconds:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
