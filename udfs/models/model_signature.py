"""Pre-flight check of a model's input signature against the source schema, before any work.

A model logged with MLflow carries a signature: named input columns with MLflow types
(``double``, ``long``, ``string``...) and which are required (MLflow docs, "Model Signatures
and Input Examples"). Before the job reads data in full, :func:`check_signature` compares it
with the Spark schema of the source and reports every problem at once: missing required
columns and incompatible types. The same signature also gives the row rules
(:func:`input_rules`): a row with a null or NaN in a required input cannot be scored, so it is
quarantined with a reason instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from pyspark.sql import types as T

from batch_scoring.udfs.contract import ColumnRule, did_you_mean

_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FLOATING = (T.FloatType, T.DoubleType)
ACCEPTED_SPARK_TYPES: dict[str, tuple[type[T.DataType], ...]] = {
    "double": (*_FLOATING, *_INTEGRAL),
    "float": (T.FloatType, T.ByteType, T.ShortType, T.IntegerType),
    "long": _INTEGRAL,
    "integer": (T.ByteType, T.ShortType, T.IntegerType),
    "boolean": (T.BooleanType,),
    "string": (T.StringType,),
    "datetime": (T.DateType, T.TimestampType, T.TimestampNTZType),
    "binary": (T.BinaryType,),
}
MLFLOW_TO_DDL = {
    "double": "double", "float": "float", "long": "bigint", "integer": "int",
    "boolean": "boolean", "string": "string", "datetime": "timestamp", "binary": "binary",
}

NUMPY_TO_DDL = {
    "float64": "double", "float32": "float", "int64": "bigint", "int32": "int",
    "bool": "boolean", "object": "string", "str": "string",
}


class SignatureMismatchError(ValueError):
    """The source cannot satisfy the model's input signature; the message lists every problem."""


@dataclass(frozen=True)
class ModelInput:
    """One model input column: name, MLflow type name (None = unknown) and whether required."""

    name: str
    mlflow_type: str | None = None
    required: bool = True


@dataclass(frozen=True)
class SignatureReport:
    """Outcome of :func:`check_signature`: failures and notes (warnings) as text lines."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def model_inputs(signature, input_columns: Sequence[str] | None, model_uri: str) -> list[ModelInput]:
    """The model's input columns from its signature, or from ``model.input_columns``.

    Args:
        signature: an ``mlflow.models.ModelSignature`` or None.
        input_columns: ``model.input_columns`` from the job config, or None.
        model_uri: for messages.

    Raises:
        SignatureMismatchError: when the model has no column signature and no input columns
            were configured, or the configured columns are not in the signature.
    """
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        if not input_columns:
            raise SignatureMismatchError(
                f"model {model_uri} has no column signature: list its input columns in "
                "model.input_columns (in the order the model expects them)"
            )
        return [ModelInput(name) for name in input_columns]
    specs = [ModelInput(s.name, _type_name(s.type), s.required) for s in signature.inputs.inputs]
    if input_columns:
        known = {s.name: s for s in specs}
        unknown = [c for c in input_columns if c not in known]
        if unknown:
            raise SignatureMismatchError(
                f"model.input_columns names {unknown}, which model {model_uri}'s signature does "
                f"not have; its inputs are {list(known)}"
            )
        return [known[c] for c in input_columns]
    return specs


def _type_name(mlflow_type) -> str | None:
    name = getattr(mlflow_type, "name", None)
    return name if name in ACCEPTED_SPARK_TYPES else None


def check_signature(schema: T.StructType, inputs: Sequence[ModelInput]) -> SignatureReport:
    """Compare a Spark schema with the model inputs; collect every problem and note.

    Problems: a required input column missing from the source; a column whose Spark type the
    model's type cannot take safely (e.g. a string for ``double``, ``double`` for ``long``).
    Notes: a nullable integral column feeding an integer input (its null rows will be
    quarantined, so pandas never turns the column into floats).
    """
    types = {f.name: f for f in schema.fields}
    report = SignatureReport()
    for spec in inputs:
        source = types.get(spec.name)
        if source is None:
            if spec.required:
                report.problems.append(
                    f"required input column {spec.name!r} is missing{did_you_mean(spec.name, list(types))}"
                )
            continue
        accepted = ACCEPTED_SPARK_TYPES.get(spec.mlflow_type or "", ())
        if accepted and not isinstance(source.dataType, accepted):
            report.problems.append(
                f"column {spec.name!r} is {source.dataType.simpleString()}, the model expects "
                f"{spec.mlflow_type}"
            )
        elif spec.mlflow_type in ("long", "integer") and source.nullable:
            report.notes.append(
                f"column {spec.name!r} is a nullable integer; rows where it is null are "
                "quarantined (reason null_value), never passed to the model as floats"
            )
    return report


NUMERIC_MLFLOW_TYPES = frozenset({"double", "float", "long", "integer"})


def input_rules(
    inputs: Sequence[ModelInput], numeric_columns: Collection[str] = ()
) -> list[ColumnRule]:
    """Row rules from the model inputs: required inputs must not be null (nor NaN if numeric).

    An input is numeric when its signature type is, or when it is in ``numeric_columns`` (the
    source's numeric columns, for inputs of a model without a signature).
    """
    return [
        ColumnRule(
            spec.name,
            "numeric" if spec.mlflow_type in NUMERIC_MLFLOW_TYPES or spec.name in numeric_columns else "any",
            nullable=not spec.required,
        )
        for spec in inputs
    ]


def numeric_columns(schema: T.StructType) -> set[str]:
    """Names of the numeric columns of a Spark schema."""
    return {f.name for f in schema.fields if isinstance(f.dataType, T.NumericType)}


def output_columns_from_signature(signature) -> dict[str, str] | None:
    """Output column name -> Spark DDL type from the signature's outputs, when it names them.

    A single unnamed output, or a one-dimensional tensor (what ``infer_signature`` records for
    a numpy array of predictions), becomes ``prediction``; a two-dimensional tensor of known
    width k (``predict_proba``: ``(-1, 2)``) becomes ``prediction_0`` .. ``prediction_{k-1}``.
    Returns None when the signature has no outputs, several unnamed ones, or types without a
    Spark equivalent.
    """
    outputs = getattr(signature, "outputs", None)
    if outputs is None:
        return None
    if outputs.is_tensor_spec():
        return _tensor_output(outputs.inputs)
    specs = outputs.inputs
    names = [s.name for s in specs]
    types = [MLFLOW_TO_DDL.get(getattr(s.type, "name", "")) for s in specs]
    if None in types:
        return None
    if len(specs) == 1 and names[0] is None:
        return {"prediction": types[0]}
    if None in names:
        return None
    return dict(zip(names, types))


def _tensor_output(specs) -> dict[str, str] | None:
    if len(specs) != 1 or len(specs[0].shape) not in (1, 2):
        return None
    ddl = NUMPY_TO_DDL.get(str(specs[0].type))
    if not ddl:
        return None
    if len(specs[0].shape) == 1:
        return {"prediction": ddl}
    width = specs[0].shape[1]
    if width is None or width < 1:
        return None
    return {"prediction": ddl} if width == 1 else {f"prediction_{i}": ddl for i in range(width)}
