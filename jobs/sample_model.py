"""A sample MLflow model for the model-scoring job: bundle demand from segment, product, price.

    batch-score sample-model --data data/sample/bundle_sales --out data/sample/models/bundle_demand

Trains a scikit-learn pipeline on the sample bundle sales: one-hot segment and product, log
price, and a Poisson regression (a generalised linear model with log link, the usual choice for
count targets: scikit-learn user guide, "Generalized Linear Models"), so
``log E[volume] = a + b_segment + b_product + e log(price)``, a constant-elasticity demand
curve. Saved with ``mlflow.sklearn.save_model`` and an inferred signature: inputs ``segment``
(string), ``product`` (string), ``price`` (double); output one ``double`` column, the expected
bundles sold per day. scikit-learn comes with the ``[dev]`` extra.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["segment", "product", "price"]
TARGET = "volume"


def train_demand_model(sales: pd.DataFrame, seed: int = 0, max_rows: int = 50_000):
    """Fit the demand pipeline on bundle-sales rows (columns FEATURES + ``volume``).

    Returns:
        ``(pipeline, features)``: the fitted scikit-learn Pipeline and the feature frame it was
        fitted on (a sample of at most ``max_rows`` rows, for the signature).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import PoissonRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    rows = sales.sample(n=min(max_rows, len(sales)), random_state=seed)
    encode = ColumnTransformer([
        ("keys", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["segment", "product"]),
        ("log_price", FunctionTransformer(np.log), ["price"]),
    ])
    model = make_pipeline(encode, PoissonRegressor(alpha=1e-6, max_iter=300))
    features = rows[FEATURES].reset_index(drop=True)
    model.fit(features, rows[TARGET].to_numpy())
    return model, features


def save_sample_model(data: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Train on the Parquet dataset at ``data`` and save an MLflow model folder at ``out``.

    Raises:
        FileExistsError: when ``out`` exists and ``overwrite`` is False.
        ImportError: when scikit-learn is not installed (install the ``[dev]`` extra).
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    sales = pd.read_parquet(data, columns=[*FEATURES, TARGET])
    model, features = train_demand_model(sales)
    signature = infer_signature(features, model.predict(features.head(100)))
    if out.exists():
        shutil.rmtree(out)
    mlflow.sklearn.save_model(model, str(out), signature=signature)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``batch-score sample-model``: train and save the sample demand model."""
    parser = argparse.ArgumentParser(
        prog="batch-score sample-model", description=__doc__.splitlines()[0],
        epilog="example: batch-score sample-model --data data/sample/bundle_sales "
               "--out data/sample/models/bundle_demand")
    parser.add_argument("--data", required=True, help="bundle-sales Parquet dataset")
    parser.add_argument("--out", required=True, help="MLflow model folder to write")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true")
    group.add_argument("--if-missing", action="store_true", help="keep an existing model")
    args = parser.parse_args(argv)
    if args.if_missing and Path(args.out).exists():
        print(f"sample model kept: {args.out}")
        return 0
    started = time.monotonic()
    try:
        path = save_sample_model(args.data, args.out, args.overwrite)
    except (FileExistsError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"sample model -> {path} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
