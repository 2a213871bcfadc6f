"""Preprocessing steps applied before the model: scale, encode, image; fitting, loading, pickling."""

from __future__ import annotations

import io
import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydantic import ValidationError

from batch_scoring.udfs.models.preprocessing import (
    EncodeStep,
    ImageStep,
    PreprocessingError,
    Preprocessor,
    ScaleStep,
    fit_categories,
    fit_scaling,
    write_stats,
)

SQRT_2_3 = math.sqrt(2 / 3)


def _png(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _model_dir(tmp_path, scaling=None, categories=None):
    write_stats(tmp_path, scaling=scaling, categories=categories)
    return tmp_path


@pytest.fixture
def model_dir(tmp_path):
    """A model folder with scaling stats for x and y and categories for city and size."""
    return _model_dir(
        tmp_path,
        scaling={"x": {"mean": 2.0, "std": SQRT_2_3}, "y": {"mean": 10.0, "std": 0.0}},
        categories={"city": ["lyon", "paris"], "size": ["1", "2", "3"]},
    )


# ---------------------------------------------------------------- fitting


def test_fit_scaling_is_population_std_ignoring_nan():
    stats = fit_scaling(pd.DataFrame({"x": [1.0, 2.0, np.nan, 3.0]}), ["x"])
    assert stats["x"]["mean"] == pytest.approx(2.0)
    assert stats["x"]["std"] == pytest.approx(SQRT_2_3)


def test_fit_scaling_constant_column_has_exactly_zero_std():
    # 0.1 * 3 / 3 is not exactly 0.1, so a naive std would be ~1e-17 instead of 0
    stats = fit_scaling(pd.DataFrame({"x": [0.1, 0.1, 0.1]}), ["x"])
    assert stats["x"] == {"mean": 0.1, "std": 0.0}


def test_fit_scaling_rejects_missing_or_empty_columns():
    with pytest.raises(PreprocessingError, match="'z' is not in"):
        fit_scaling(pd.DataFrame({"x": [1.0]}), ["z"])
    with pytest.raises(PreprocessingError, match="'x' has no non-null"):
        fit_scaling(pd.DataFrame({"x": [np.nan, np.nan]}), ["x"])


def test_fit_categories_sorted_distinct_text_without_nulls():
    pdf = pd.DataFrame({"c": ["b", None, "a", "b"], "n": [3.0, 1.0, np.nan, 3.0]})
    assert fit_categories(pdf, "c") == ["a", "b"]
    assert fit_categories(pdf, "n") == ["1", "3"]  # whole floats written as integers


# ---------------------------------------------------------------- scale


def test_scale_matches_hand_computed_standard_scores(model_dir):
    pre = Preprocessor.load([ScaleStep(columns=["x"])], model_dir)
    out = pre.apply(pd.DataFrame({"x": [1, 2, 3], "id": ["a", "b", "c"]}))
    assert out["x"].dtype == "float64"
    np.testing.assert_allclose(out["x"], [-1.224744871, 0.0, 1.224744871], rtol=1e-9)
    assert out["id"].tolist() == ["a", "b", "c"]


def test_scale_zero_std_divides_by_one_and_keeps_nan(model_dir):
    pre = Preprocessor.load([ScaleStep(columns=["y"])], model_dir)
    out = pre.apply(pd.DataFrame({"y": [10.0, 12.5, np.nan]}))
    assert out["y"].iloc[:2].tolist() == [0.0, 2.5]
    assert np.isnan(out["y"].iloc[2])


def test_scale_fitted_then_applied_gives_mean_zero_std_one(tmp_path):
    train = pd.DataFrame({"a": [3.0, 7.0, 8.0, 14.0]})
    write_stats(tmp_path, scaling=fit_scaling(train, ["a"]))
    out = Preprocessor.load([ScaleStep(columns=["a"])], tmp_path).apply(train)
    assert out["a"].mean() == pytest.approx(0.0, abs=1e-12)
    assert out["a"].std(ddof=0) == pytest.approx(1.0)


def test_scale_rejects_text_values(model_dir):
    pre = Preprocessor.load([ScaleStep(columns=["x"])], model_dir)
    with pytest.raises(PreprocessingError, match=r"step 0 \(scale\), column 'x': values are not numeric"):
        pre.apply(pd.DataFrame({"x": ["one"]}))


# ---------------------------------------------------------------- encode


def test_one_hot_columns_values_unknown_and_null(model_dir):
    pre = Preprocessor.load([EncodeStep(column="city")], model_dir)
    out = pre.apply(pd.DataFrame({"id": [1, 2, 3, 4], "city": ["paris", "lyon", "rome", None]}))
    assert list(out.columns) == ["id", "city__lyon", "city__paris"]
    assert (out.dtypes[["city__lyon", "city__paris"]] == "float64").all()
    assert out["city__lyon"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert out["city__paris"].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_one_hot_can_keep_source(model_dir):
    pre = Preprocessor.load([EncodeStep(column="city", drop_source=False)], model_dir)
    out = pre.apply(pd.DataFrame({"city": ["lyon"]}))
    assert list(out.columns) == ["city", "city__lyon", "city__paris"]
    assert out["city"].tolist() == ["lyon"]


def test_ordinal_codes_with_unknown_and_null_as_minus_one(model_dir):
    pre = Preprocessor.load([EncodeStep(column="city", method="ordinal")], model_dir)
    out = pre.apply(pd.DataFrame({"city": ["paris", "lyon", "rome", None]}))
    assert out["city"].dtype == "int64"
    assert out["city"].tolist() == [1, 0, -1, -1]


def test_encode_compares_as_text_so_int_and_float_columns_match(model_dir):
    pre = Preprocessor.load([EncodeStep(column="size", method="ordinal")], model_dir)
    ints = pre.apply(pd.DataFrame({"size": [3, 1, 7]}))
    # an integer column with a null arrives from Spark as float64
    floats = pre.apply(pd.DataFrame({"size": [3.0, 1.0, np.nan]}))
    assert ints["size"].tolist() == [2, 0, -1]
    assert floats["size"].tolist() == [2, 0, -1]


def test_categories_file_with_int_values_loads_as_text(tmp_path):
    (tmp_path / "cats.json").write_text(json.dumps({"store": [10, 2]}))
    pre = Preprocessor.load([EncodeStep(column="store", categories_file="cats.json")], tmp_path)
    out = pre.apply(pd.DataFrame({"store": [2, 10]}))
    assert list(out.columns) == ["store__10", "store__2"]
    assert out.to_numpy().tolist() == [[0.0, 1.0], [1.0, 0.0]]


# ---------------------------------------------------------------- image


def test_image_bilinear_resize_matches_pillow_and_hand_values():
    grey = np.array([[0, 40, 80, 120], [200, 160, 120, 40]])
    blob = _png(grey, "L")
    out = Preprocessor.load([ImageStep(width=2, height=1)], "unused").apply(
        pd.DataFrame({"content": [blob]})
    )
    assert list(out.columns) == ["px_0", "px_1"]
    pillow = Image.open(io.BytesIO(blob)).resize((2, 1), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(out.iloc[0].to_numpy(), np.asarray(pillow).reshape(-1) / 255)
    # by hand: horizontal triangle weights .75/.75/.25 over 1.75, then the mean of the two rows
    np.testing.assert_allclose(out.iloc[0].to_numpy() * 255, [100, 91], atol=1.0)


def test_image_flattens_row_major_then_channel():
    rgb = np.arange(18).reshape(2, 3, 3) * 10  # 2 rows, 3 columns, RGB
    step = ImageStep(width=3, height=2, grey=False, prefix="p", value_scale=1.0)
    out = Preprocessor.load([step], "unused").apply(pd.DataFrame({"content": [_png(rgb, "RGB")]}))
    assert list(out.columns) == [f"p{i}" for i in range(18)]
    assert out.iloc[0].tolist() == [float(v) for v in range(0, 180, 10)]


def test_image_colour_to_grey_uses_itu_601_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 150, 200]]])
    step = ImageStep(width=4, height=1, value_scale=1.0)
    out = Preprocessor.load([step], "unused").apply(pd.DataFrame({"content": [_png(rgb, "RGB")]}))
    luma = [r * 299 / 1000 + g * 587 / 1000 + b * 114 / 1000 for r, g, b in rgb[0]]
    assert luma == pytest.approx([76.245, 149.685, 29.07, 140.75])
    assert out.iloc[0].tolist() == [round(v) for v in luma]  # Pillow rounds to 8 bits


def test_image_jpeg_decodes_and_several_rows_keep_their_index():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(buffer, format="JPEG")
    black = _png(np.zeros((4, 4)), "L")
    pdf = pd.DataFrame({"path": ["a.jpg", "b.png"], "content": [buffer.getvalue(), black]},
                       index=[7, 9])
    out = Preprocessor.load([ImageStep(width=2, height=2)], "unused").apply(pdf)
    assert list(out.columns) == ["path", "px_0", "px_1", "px_2", "px_3"]
    assert out.index.tolist() == [7, 9]
    np.testing.assert_allclose(out.loc[7, "px_0":].to_numpy(dtype=float), 128 / 255, atol=3 / 255)
    assert out.loc[9, "px_0":].tolist() == [0.0] * 4


def test_image_undecodable_bytes_name_the_row_position():
    pdf = pd.DataFrame({"content": [_png(np.zeros((2, 2)), "L"), b"not an image"]})
    pre = Preprocessor.load([ImageStep(width=1, height=1)], "unused")
    with pytest.raises(PreprocessingError, match=r"step 0 \(image\), column 'content': row position 1"):
        pre.apply(pdf)


def test_image_null_is_an_error():
    pre = Preprocessor.load([ImageStep(width=1, height=1)], "unused")
    with pytest.raises(PreprocessingError, match="row position 0: the image is null"):
        pre.apply(pd.DataFrame({"content": [None]}))


def test_image_step_validates_size():
    with pytest.raises(ValidationError):
        ImageStep(width=0, height=2)


# ---------------------------------------------------------------- chaining and columns


def test_steps_chain_in_order_and_later_steps_see_earlier_outputs(model_dir):
    steps = [
        EncodeStep(column="city", method="ordinal"),
        ScaleStep(columns=["x"]),
        EncodeStep(column="size"),
    ]
    pre = Preprocessor.load(steps, model_dir)
    out = pre.apply(pd.DataFrame({"x": [1.0, 3.0], "city": ["paris", "oslo"], "size": [2, 9]}))
    assert list(out.columns) == ["x", "city", "size__1", "size__2", "size__3"]
    assert out["city"].tolist() == [1, -1]
    np.testing.assert_allclose(out["x"], [-1.224744871, 1.224744871])
    assert out[["size__1", "size__2", "size__3"]].to_numpy().tolist() == [[0, 1, 0], [0, 0, 0]]
    assert pre.consumed_columns == ["city", "x", "size"]
    assert pre.produced_columns == ["city", "x", "size__1", "size__2", "size__3"]


def test_scaling_an_encoded_column_reads_the_codes(tmp_path):
    write_stats(tmp_path, scaling={"city": {"mean": 0.5, "std": 0.5}},
                categories={"city": ["lyon", "paris"]})
    steps = [EncodeStep(column="city", method="ordinal"), ScaleStep(columns=["city"])]
    pre = Preprocessor.load(steps, tmp_path)
    assert pre.apply(pd.DataFrame({"city": ["lyon", "paris"]}))["city"].tolist() == [-1.0, 1.0]
    assert pre.consumed_columns == ["city"]


def test_consumed_and_produced_columns_of_image_and_one_hot(model_dir):
    steps = [ImageStep(width=2, height=1, prefix="im"), EncodeStep(column="city"),
             ScaleStep(columns=["x", "y"])]
    pre = Preprocessor.load(steps, model_dir)
    assert pre.consumed_columns == ["content", "city", "x", "y"]
    assert pre.produced_columns == ["im0", "im1", "city__lyon", "city__paris", "x", "y"]


def test_empty_preprocessor_is_falsy_and_copies():
    pdf = pd.DataFrame({"a": [1]})
    pre = Preprocessor.load([], "nowhere")
    assert not pre and not Preprocessor()
    out = pre.apply(pdf)
    assert out is not pdf and out.equals(pdf)
    assert pre.consumed_columns == [] and pre.produced_columns == []


def test_missing_column_names_step_and_column(model_dir):
    pre = Preprocessor.load([ScaleStep(columns=["x"]), EncodeStep(column="city")], model_dir)
    with pytest.raises(PreprocessingError, match=r"step 1 \(encode\), column 'city': the column is not"):
        pre.apply(pd.DataFrame({"x": [1.0]}))


def test_reading_a_dropped_column_fails_at_load(model_dir):
    steps = [EncodeStep(column="city"), EncodeStep(column="city", method="ordinal")]
    with pytest.raises(PreprocessingError, match=r"step 1 \(encode\).*step 0 \(encode\) drops"):
        Preprocessor.load(steps, model_dir)


def test_created_column_that_already_exists_is_an_error(model_dir):
    pre = Preprocessor.load([EncodeStep(column="city")], model_dir)
    with pytest.raises(PreprocessingError, match="already exist: \\['city__lyon'\\]"):
        pre.apply(pd.DataFrame({"city": ["lyon"], "city__lyon": [5.0]}))


def test_apply_does_not_modify_its_input(model_dir):
    steps = [ScaleStep(columns=["x"]), EncodeStep(column="city", method="ordinal"),
             EncodeStep(column="size")]
    pdf = pd.DataFrame({"x": [1.0, 2.0], "city": ["lyon", "rome"], "size": [1, 3]})
    before = pdf.copy()
    out = Preprocessor.load(steps, model_dir).apply(pdf)
    out.loc[0, "x"] = 99.0
    pd.testing.assert_frame_equal(pdf, before)


# ---------------------------------------------------------------- loading and pickling


def test_load_from_written_stats_and_steps_as_dicts(model_dir):
    assert json.loads((model_dir / "preprocessing" / "categories.json").read_text()) == {
        "city": ["lyon", "paris"], "size": ["1", "2", "3"]
    }
    pre = Preprocessor.load([{"kind": "scale", "columns": ["x"]}], model_dir)
    assert pre.steps[0].means == (2.0,) and pre.steps[0].stds == (pytest.approx(SQRT_2_3),)


def test_load_errors_for_missing_file_bad_json_and_missing_column(tmp_path):
    with pytest.raises(PreprocessingError, match=r"step 0 \(scale\).*'preprocessing/scaling.json' is missing"):
        Preprocessor.load([ScaleStep(columns=["x"])], tmp_path)
    write_stats(tmp_path, scaling={"x": {"mean": 1.0, "std": 2.0}})
    with pytest.raises(PreprocessingError, match=r"step 1 \(scale\), column 'w': no statistics.*holds 'x'"):
        Preprocessor.load([ScaleStep(columns=["x"]), ScaleStep(columns=["w"])], tmp_path)
    (tmp_path / "preprocessing" / "categories.json").write_text("{not json")
    with pytest.raises(PreprocessingError, match="categories.json is not readable JSON"):
        Preprocessor.load([EncodeStep(column="c")], tmp_path)


def test_load_rejects_malformed_stats(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"x": {"mean": 1.0}, "y": {"mean": 1, "std": -1}}))
    with pytest.raises(PreprocessingError, match="column 'x'.*must be"):
        Preprocessor.load([ScaleStep(columns=["x"], stats_file="s.json")], tmp_path)
    with pytest.raises(PreprocessingError, match="column 'y'.*std >= 0"):
        Preprocessor.load([ScaleStep(columns=["y"], stats_file="s.json")], tmp_path)
    with pytest.raises(PreprocessingError, match="repeat as text: \\['1'\\]"):
        write_stats(tmp_path, categories={"c": [1, "1"]})


def test_stats_file_must_stay_inside_the_model_folder():
    with pytest.raises(ValidationError, match="relative path inside"):
        ScaleStep(columns=["x"], stats_file="../elsewhere.json")
    with pytest.raises(ValidationError):
        ScaleStep(columns=["x"], unknown=1)


def test_preprocessor_survives_pickle_without_the_files(model_dir, tmp_path_factory):
    steps = [ImageStep(width=2, height=2), EncodeStep(column="city"), ScaleStep(columns=["x"])]
    pre = Preprocessor.load(steps, model_dir)
    for path in (model_dir / "preprocessing").iterdir():
        path.unlink()  # executors read no files
    pdf = pd.DataFrame({"content": [_png(np.arange(16).reshape(4, 4) * 16, "L")],
                        "city": ["paris"], "x": [3.0]})
    copy = pickle.loads(pickle.dumps(pre))
    pd.testing.assert_frame_equal(copy.apply(pdf), pre.apply(pdf))
    assert copy == pre


def test_preprocessor_is_immutable(model_dir):
    pre = Preprocessor.load([ScaleStep(columns=["x"])], model_dir)
    with pytest.raises(AttributeError):
        pre.steps = ()
    with pytest.raises(ValidationError):
        pre.steps[0].step.columns = ["y"]
