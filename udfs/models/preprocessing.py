"""Transforms applied to the rows before the model: scaling, category encoding, image pixels.

A model job names an ordered list of steps in its config (``model.preprocessing``); every path
(one record, a local file, Spark executors) runs them with :meth:`Preprocessor.apply` inside the
same pandas function, just before the model, so all paths feed the model the same numbers.

* ``scale``  -- the standard score ``z = (x - mean) / std`` per column (scikit-learn,
  ``StandardScaler``: "z = (x - u) / s"), with the training mean and population standard
  deviation; a constant column (``std == 0``) is divided by 1, so it becomes ``x - mean``.
* ``encode`` -- ``one_hot``: one 0/1 column per training category, all zero for an unknown or
  null value; ``ordinal``: the category's position in the stored list, -1 when unknown or null.
* ``image``  -- decode an encoded image (PNG, JPEG, ... as Spark's ``binaryFile`` source gives
  them in ``content``) with Pillow, convert to grey (``L``, ITU-R 601-2 luma) or ``RGB``, resize
  with bilinear filtering, flatten row-major then channel, and scale to ``[0, 1]``.

Statistics are fitted when the model is trained (:func:`fit_scaling`, :func:`fit_categories`)
and stored as JSON inside the MLflow model folder (:func:`write_stats`, by default
``preprocessing/scaling.json`` and ``preprocessing/categories.json``). The driver reads them once
with :meth:`Preprocessor.load`; the resulting object carries them inline, so it is pickled to
the executors and they read no files.

Categories are compared as text: a value is written with ``str``, except that a whole float is
written as an integer (``3.0`` -> ``"3"``). Spark hands an integer column holding nulls to pandas
as float64, so ``3`` and ``3.0`` must meet as the same category.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, field_validator

SCALING_FILE = "preprocessing/scaling.json"
CATEGORIES_FILE = "preprocessing/categories.json"
_MAX_LISTED_COLUMNS = 20


class PreprocessingError(ValueError):
    """A step cannot be loaded or applied.

    The message names the step (index in the configured list and kind), the column and, for a
    statistics problem, the file inside the model folder.
    """


def _relative_inside(path: str) -> str:
    parts = PurePosixPath(path.replace("\\", "/"))
    if not path or parts.is_absolute() or ".." in parts.parts or Path(path).is_absolute():
        raise ValueError(f"{path!r} must be a relative path inside the model folder")
    return path


class ScaleStep(BaseModel):
    """Standard-score numeric columns with the training mean and standard deviation.

    In: each of ``columns``, any dtype castable to float64 (NaN stays NaN). Out: the same
    column names, float64, ``(x - mean) / std`` (``std == 0`` divides by 1). The statistics are
    read from ``stats_file`` (relative to the model folder), shaped
    ``{"column": {"mean": m, "std": s}}`` as :func:`fit_scaling` returns them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["scale"] = "scale"
    columns: list[str] = Field(min_length=1, description="numeric columns to standardise")
    stats_file: str = Field(SCALING_FILE, description="scaling JSON, relative to the model folder")

    @field_validator("columns")
    @classmethod
    def _distinct(cls, columns: list[str]) -> list[str]:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"columns repeated: {repeated}")
        return columns

    @field_validator("stats_file")
    @classmethod
    def _stats_file_inside(cls, path: str) -> str:
        return _relative_inside(path)


class EncodeStep(BaseModel):
    """Encode one categorical column with the training categories.

    In: ``column``, any dtype; values are compared as text (see the module docstring).
    Out, ``one_hot``: one float64 column per stored category, named ``f"{column}__{category}"``,
    1.0 where the value is that category, all 0.0 for an unknown or null value; appended after
    the existing columns, the source column dropped when ``drop_source``.
    Out, ``ordinal``: ``column`` replaced by int64 codes, the position in the stored list, -1 for
    an unknown or null value (``drop_source`` does not apply). The categories are
    ``categories_file[column]``, a list as :func:`fit_categories` returns it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["encode"] = "encode"
    column: str = Field(description="categorical column to encode")
    method: Literal["one_hot", "ordinal"] = Field("one_hot", description="one_hot or ordinal")
    categories_file: str = Field(
        CATEGORIES_FILE, description="categories JSON {column: [..]}, relative to the model folder"
    )
    drop_source: bool = Field(True, description="one_hot: drop the source column")

    @field_validator("categories_file")
    @classmethod
    def _categories_file_inside(cls, path: str) -> str:
        return _relative_inside(path)


class ImageStep(BaseModel):
    """Decode an encoded image per row into pixel columns.

    In: ``column`` holding the bytes of an encoded image (any format Pillow reads; Spark's
    ``binaryFile`` source gives them in ``content``). Out: ``width * height * (1 if grey else 3)``
    float64 columns ``f"{prefix}{i}"``, appended after the existing columns: the image converted
    to ``L`` (grey, ITU-R 601-2 luma ``L = R*299/1000 + G*587/1000 + B*114/1000`` as Pillow's
    ``Image.convert`` documents; alpha ignored) or ``RGB``, resized to ``(width, height)`` with
    ``Image.Resampling.BILINEAR``, flattened row-major then channel, times ``value_scale``
    (default 1/255, so 8-bit values land in [0, 1]). The source column is dropped when
    ``drop_source``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["image"] = "image"
    column: str = Field("content", description="column with the encoded image bytes")
    width: PositiveInt = Field(description="width after resizing, pixels")
    height: PositiveInt = Field(description="height after resizing, pixels")
    grey: bool = Field(True, description="convert to grey (L); else RGB")
    prefix: str = Field("px_", min_length=1, description="name prefix of the pixel columns")
    value_scale: float = Field(1 / 255, description="factor applied to the 0-255 pixel values")
    drop_source: bool = Field(True, description="drop the image bytes column")

    @property
    def pixel_count(self) -> int:
        """Number of output columns: ``width * height * channels``."""
        return self.width * self.height * (1 if self.grey else 3)


PreprocessStep = Annotated[ScaleStep | EncodeStep | ImageStep, Field(discriminator="kind")]
_STEP = TypeAdapter(PreprocessStep)


@dataclass(frozen=True)
class FittedStep:
    """One configured step with its statistics inline (no file access when applied).

    Attributes:
        index: position of the step in the configured list (for messages).
        step: the step's configuration.
        means, stds: scale only, one per ``step.columns``, in that order.
        categories: encode only, the stored categories as text, in stored order.
    """

    index: int
    step: ScaleStep | EncodeStep | ImageStep
    means: tuple[float, ...] = ()
    stds: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``"preprocessing step <index> (<kind>)"``, the start of every message."""
        return f"preprocessing step {self.index} ({self.step.kind})"

    def reads(self) -> tuple[str, ...]:
        """Columns the step reads."""
        return tuple(self.step.columns) if isinstance(self.step, ScaleStep) else (self.step.column,)

    def creates(self) -> tuple[str, ...]:
        """Columns the step writes: new ones, or replaced in place (scale, ordinal)."""
        step = self.step
        if isinstance(step, ScaleStep):
            return tuple(step.columns)
        if isinstance(step, ImageStep):
            return tuple(f"{step.prefix}{i}" for i in range(step.pixel_count))
        if step.method == "ordinal":
            return (step.column,)
        return tuple(f"{step.column}__{category}" for category in self.categories)

    def drops(self) -> tuple[str, ...]:
        """Columns the step removes from the frame."""
        step = self.step
        dropping = isinstance(step, ImageStep) or (
            isinstance(step, EncodeStep) and step.method == "one_hot"
        )
        return (step.column,) if dropping and step.drop_source else ()

    def error(self, column: str, message: str) -> PreprocessingError:
        """A :class:`PreprocessingError` naming this step and ``column``."""
        return PreprocessingError(f"{self.label}, column {column!r}: {message}")


@dataclass(frozen=True)
class Preprocessor:
    """The fitted, ordered steps of a model job; picklable and immutable.

    Build it on the driver with :meth:`load`; ``Preprocessor()`` is the empty one (falsy, and
    :meth:`apply` returns a copy of its input).
    """

    steps: tuple[FittedStep, ...] = ()

    @classmethod
    def load(cls, steps: Sequence[PreprocessStep], model_dir: str | os.PathLike) -> Preprocessor:
        """Read the statistics the steps need from ``model_dir`` (each file once) and fit them.

        Args:
            steps: the configured steps, in order (models or plain dicts with a ``kind``).
            model_dir: the local MLflow model folder holding the statistics files.

        Raises:
            PreprocessingError: naming the step, column and file when a statistics file is
                missing or not JSON, lacks the column, or holds malformed statistics; or when a
                step reads a column an earlier step dropped.
            pydantic.ValidationError: when a step given as a dict is not a valid step.
        """
        configs = [_STEP.validate_python(step) for step in steps]
        files = _StatsFiles(Path(model_dir))
        fitted = tuple(_fit_step(i, step, files) for i, step in enumerate(configs))
        _check_reads_after_drops(fitted)
        return cls(fitted)

    @property
    def consumed_columns(self) -> list[str]:
        """Raw input columns the steps read, in order, without duplicates.

        A column an earlier step created is not raw and not listed.
        """
        consumed: list[str] = []
        created: set[str] = set()
        for fitted in self.steps:
            consumed += [c for c in fitted.reads() if c not in created and c not in consumed]
            created.update(fitted.creates())
        return consumed

    @property
    def produced_columns(self) -> list[str]:
        """Columns the steps create and that remain in the output, in order, no duplicates.

        Scale and ordinal encoding list the columns they replace; one-hot the category
        columns; images the pixel columns.
        """
        produced: list[str] = []
        for fitted in self.steps:
            dropped = set(fitted.drops())
            produced = [c for c in produced if c not in dropped]
            produced += [c for c in fitted.creates() if c not in produced]
        return produced

    def __bool__(self) -> bool:
        """False when there are no steps."""
        return bool(self.steps)

    def apply(self, pdf: pd.DataFrame) -> pd.DataFrame:
        """Return a new DataFrame: ``pdf`` with every step applied in order.

        Later steps see earlier steps' outputs. The index is kept; ``pdf`` is not modified.
        Columns in/out per step: see :class:`ScaleStep`, :class:`EncodeStep`, :class:`ImageStep`.

        Raises:
            PreprocessingError: naming the step and column when a column is missing or
                repeated, a scaled column is not numeric, a created column already exists, or
                an image is null or cannot be decoded (with its row position).
        """
        out = pdf.copy()
        for fitted in self.steps:
            _require_columns(fitted, out)
            out = _APPLY[fitted.step.kind](fitted, out)
        return out


# ---------------------------------------------------------------- fitting (training time)


def fit_scaling(pdf: pd.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """Fit the scale statistics: ``{"column": {"mean": m, "std": s}}`` (plain floats).

    ``std`` is the population standard deviation (``ddof=0``, as ``StandardScaler`` uses);
    NaN/null values are ignored. A column whose values are all equal gets exactly ``std = 0``
    (rather than the rounding residue of the mean, which would blow values up when divided).

    Raises:
        PreprocessingError: when a column is missing, not numeric, or has no non-null value.
    """
    stats: dict[str, dict[str, float]] = {}
    for column in columns:
        values = _training_numbers(pdf, column)
        if values.min() == values.max():
            stats[column] = {"mean": float(values.iloc[0]), "std": 0.0}
        else:
            stats[column] = {"mean": float(values.mean()), "std": float(values.std(ddof=0))}
    return stats


def _training_numbers(pdf: pd.DataFrame, column: str) -> pd.Series:
    if column not in pdf.columns:
        raise PreprocessingError(f"fit_scaling: column {column!r} is not in the training data")
    try:
        values = pdf[column].astype("float64").dropna()
    except (TypeError, ValueError) as error:
        raise PreprocessingError(
            f"fit_scaling: column {column!r} is not numeric ({error})"
        ) from None
    if values.empty:
        raise PreprocessingError(f"fit_scaling: column {column!r} has no non-null value")
    return values


def fit_categories(pdf: pd.DataFrame, column: str) -> list[str]:
    """Return the sorted distinct non-null values of ``column`` as text (the stored categories).

    Text as compared when encoding (``3.0`` -> ``"3"``); sorted as strings (``"10" < "2"``).

    Raises:
        PreprocessingError: when the column is missing or holds no non-null value.
    """
    if column not in pdf.columns:
        raise PreprocessingError(f"fit_categories: column {column!r} is not in the training data")
    categories = sorted(set(_as_text(pdf[column]).dropna()))
    if not categories:
        raise PreprocessingError(f"fit_categories: column {column!r} has no non-null value")
    return categories


def write_stats(
    model_dir: str | os.PathLike,
    *,
    scaling: dict | None = None,
    categories: dict[str, list[str]] | None = None,
    scaling_file: str = SCALING_FILE,
    categories_file: str = CATEGORIES_FILE,
) -> None:
    """Write the statistics as JSON files inside the model folder, creating folders as needed.

    ``scaling`` is ``{"column": {"mean": m, "std": s}}`` (:func:`fit_scaling`), written to
    ``scaling_file``; ``categories`` is ``{"column": [..]}`` (:func:`fit_categories` per
    column), written to ``categories_file``. Either may be None (that file is not written);
    an existing file is replaced.

    Raises:
        PreprocessingError: naming the column and file when an entry would not load back (mean
            or std not a finite number, std < 0, categories empty, null or repeated).
        ValueError: when a file name is absolute or leaves the model folder.
    """
    root = Path(model_dir)
    if scaling is not None:
        path = root / _relative_inside(scaling_file)
        content = {}
        for column, entry in scaling.items():
            mean, std = _scaling_entry(entry, f"write_stats, column {column!r}, in {path}")
            content[column] = {"mean": mean, "std": std}
        _write_json(path, content)
    if categories is not None:
        path = root / _relative_inside(categories_file)
        where = "write_stats, column {!r}, in " + str(path)
        content = {c: list(_category_list(v, where.format(c))) for c, v in categories.items()}
        _write_json(path, content)


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- loading (driver)


class _StatsFiles:
    """Parsed statistics files of one model folder, each read at most once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.parsed: dict[str, tuple[Path, dict]] = {}

    def read(self, relative: str, owner: str) -> tuple[Path, dict]:
        if relative not in self.parsed:
            self.parsed[relative] = self._parse(relative, owner)
        return self.parsed[relative]

    def _parse(self, relative: str, owner: str) -> tuple[Path, dict]:
        path = self.root / relative
        if not path.is_file():
            raise PreprocessingError(
                f"{owner}: statistics file {relative!r} is missing from the model folder "
                f"{self.root} (write it with write_stats when training the model)"
            )
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PreprocessingError(
                f"{owner}: statistics file {path} is not readable JSON ({error})"
            ) from None
        if not isinstance(content, dict):
            raise PreprocessingError(
                f"{owner}: statistics file {path} must hold a JSON object keyed by column"
            )
        return path, content


def _fit_step(index: int, step: Any, files: _StatsFiles) -> FittedStep:
    owner = FittedStep(index, step).label
    if isinstance(step, ImageStep):
        return FittedStep(index, step)
    if isinstance(step, ScaleStep):
        path, content = files.read(step.stats_file, owner)
        where = owner + ", column {!r}, in " + str(path)
        pairs = [
            _scaling_entry(_column_stats(content, c, path, owner), where.format(c))
            for c in step.columns
        ]
        means, stds = zip(*pairs)
        return FittedStep(index, step, means=tuple(means), stds=tuple(stds))
    path, content = files.read(step.categories_file, owner)
    raw = _column_stats(content, step.column, path, owner)
    categories = _category_list(raw, f"{owner}, column {step.column!r}, in {path}")
    return FittedStep(index, step, categories=categories)


def _column_stats(content: dict, column: str, path: Path, owner: str) -> Any:
    if column not in content:
        held = ", ".join(map(repr, list(content)[:_MAX_LISTED_COLUMNS])) or "nothing"
        raise PreprocessingError(
            f"{owner}, column {column!r}: no statistics for this column in {path} (it holds {held})"
        )
    return content[column]


def _scaling_entry(entry: Any, where: str) -> tuple[float, float]:
    if not isinstance(entry, Mapping) or not {"mean", "std"} <= set(entry):
        raise PreprocessingError(
            f"{where}: scaling statistics must be {{'mean': m, 'std': s}}, got {entry!r}"
        )
    mean, std = entry["mean"], entry["std"]
    if not (_is_finite_number(mean) and _is_finite_number(std)) or std < 0:
        raise PreprocessingError(
            f"{where}: mean and std must be finite numbers with std >= 0, got {entry!r}"
        )
    return float(mean), float(std)


def _is_finite_number(value: Any) -> bool:
    numeric = isinstance(value, (int, float, np.integer, np.floating))
    return numeric and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _category_list(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise PreprocessingError(f"{where}: categories must be a non-empty list, got {raw!r}")
    if not all(_is_category(value) for value in raw):
        raise PreprocessingError(f"{where}: categories must be non-null scalars, got {raw!r}")
    texts = tuple(_scalar_text(value) for value in raw)
    repeated = sorted(text for text, count in Counter(texts).items() if count > 1)
    if repeated:
        raise PreprocessingError(f"{where}: categories repeat as text: {repeated}")
    return texts


def _is_category(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, np.integer, np.floating))


def _check_reads_after_drops(fitted: Sequence[FittedStep]) -> None:
    dropped_by: dict[str, FittedStep] = {}
    for current in fitted:
        for column in current.reads():
            if column in dropped_by:
                raise current.error(
                    column, f"reads a column that {dropped_by[column].label} drops "
                    "(set drop_source: false on that step, or reorder the steps)"
                )
        dropped_by.update({c: current for c in current.drops()})
        for column in current.creates():
            dropped_by.pop(column, None)


# ---------------------------------------------------------------- applying (every path)


def _require_columns(fitted: FittedStep, pdf: pd.DataFrame) -> None:
    for column in fitted.reads():
        count = int((pdf.columns == column).sum())
        if count == 0:
            present = list(map(str, pdf.columns[:_MAX_LISTED_COLUMNS]))
            more = " ..." if len(pdf.columns) > _MAX_LISTED_COLUMNS else ""
            raise fitted.error(column, f"the column is not in the rows (columns: {present}{more})")
        if count > 1:
            raise fitted.error(column, f"the column appears {count} times in the rows")


def _apply_scale(fitted: FittedStep, pdf: pd.DataFrame) -> pd.DataFrame:
    for column, mean, std in zip(fitted.step.columns, fitted.means, fitted.stds):
        try:
            values = pdf[column].astype("float64")
        except (TypeError, ValueError) as error:
            raise fitted.error(column, f"values are not numeric ({error})") from None
        pdf[column] = (values - mean) / (std if std != 0 else 1.0)
    return pdf


def _apply_encode(fitted: FittedStep, pdf: pd.DataFrame) -> pd.DataFrame:
    step = fitted.step
    codes = pd.Index(fitted.categories, dtype=object).get_indexer(_as_text(pdf[step.column]))
    if step.method == "ordinal":
        pdf[step.column] = codes.astype("int64")
        return pdf
    one_hot = (codes[:, None] == np.arange(len(fitted.categories))).astype("float64")
    return _append_block(fitted, pdf, one_hot)


def _apply_image(fitted: FittedStep, pdf: pd.DataFrame) -> pd.DataFrame:
    step = fitted.step
    pixels = np.empty((len(pdf), step.pixel_count), dtype="float64")
    for position, blob in enumerate(pdf[step.column].to_numpy()):
        pixels[position] = _decode_image(fitted, position, blob)
    pixels *= step.value_scale
    return _append_block(fitted, pdf, pixels)


def _decode_image(fitted: FittedStep, position: int, blob: Any) -> np.ndarray:
    from PIL import Image

    step = fitted.step
    if blob is None or (isinstance(blob, float) and math.isnan(blob)):
        raise fitted.error(step.column, f"row position {position}: the image is null")
    try:
        with Image.open(io.BytesIO(blob)) as image:
            converted = image.convert("L" if step.grey else "RGB")
            resized = converted.resize((step.width, step.height), Image.Resampling.BILINEAR)
            return np.asarray(resized, dtype="float64").reshape(-1)
    except Exception as error:  # Pillow's decoders raise OSError, SyntaxError, struct.error ...
        raise fitted.error(
            step.column, f"row position {position}: the image cannot be decoded "
            f"({type(error).__name__}: {error})"
        ) from error


def _append_block(fitted: FittedStep, pdf: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    names = list(fitted.creates())
    base = pdf.drop(columns=list(fitted.drops()))
    clashing = [name for name in names if name in base.columns]
    if clashing:
        listed = clashing[:_MAX_LISTED_COLUMNS]
        raise fitted.error(fitted.step.column, f"would create columns that already exist: {listed}")
    block = pd.DataFrame(values, columns=names, index=base.index)
    return pd.concat([base, block], axis=1)


_APPLY: dict[str, Callable[[FittedStep, pd.DataFrame], pd.DataFrame]] = {
    "scale": _apply_scale,
    "encode": _apply_encode,
    "image": _apply_image,
}


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text for category matching (object dtype, NaN where null), vectorised.

    ``str(value)``, except that in a float column whole values below 2**53 are written as
    integers (``3.0`` -> ``"3"``).
    """
    missing = values.isna().to_numpy()
    text = values.astype(str).astype(object)
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.astype("float64").to_numpy()
        with np.errstate(invalid="ignore"):
            whole = ~missing & (np.mod(numbers, 1) == 0) & (np.abs(numbers) < 2**53)
        text[whole] = numbers[whole].astype("int64").astype(str)
    return text.mask(missing)


def _scalar_text(value: Any) -> str:
    """One stored category as text, the way :func:`_as_text` writes it in a column."""
    if isinstance(value, (float, np.floating)) and value % 1 == 0 and abs(value) < 2**53:
        return str(int(value))
    return str(value)
