"""Data as people write it (issue 20, item 3): dates in common forms, stray values in schemas, time-ordered splits
that leave classes out. Library-level: each test takes well under a second or two."""
import warnings
import numpy as np, pandas as pd, pytest

from mlops_nb.data import DataError, DataWarning, as_datetime
from mlops_nb.checks import infer_schema, check_data


def dates(n=40, fmt="%Y/%m/%d"):
    return pd.Series(pd.date_range("2012-01-01", periods=n, freq="7D").strftime(fmt), name="day")


@pytest.mark.parametrize("fmt", ["%Y/%m/%d", "%Y.%m.%d", "%Y/%m/%d %H:%M", "%Y-%m-%d"])
def test_year_first_dates_are_date_times(fmt):
    s = dates(fmt=fmt)
    df = pd.DataFrame({"day": s, "x": np.arange(len(s))})
    spec = infer_schema(df)["columns"]["day"]
    assert spec["type"] == "datetime" and spec["min"].startswith("2012-01-01")
    t = as_datetime(s)   # what checks, the model's date-part step and the service read
    assert not t.isna().any() and t.iloc[0] == pd.Timestamp("2012-01-01") and t.iloc[1] == pd.Timestamp("2012-01-08")
    assert as_datetime(pd.Series(["2012/1/5"])).iloc[0] == pd.Timestamp("2012-01-05")   # single digits too


def test_date_parts_and_service_read_the_same_text():
    from mlops_nb.features import date_parts
    parts = date_parts(pd.DataFrame({"day": ["2012/03/04", "2012.03.04 10:00", None]}))
    assert parts[0].tolist()[:3] == [2012, 3, 4] and parts[1].tolist()[4] == 10 and np.isnan(parts[2]).all()


def test_day_month_order_is_not_guessed():
    s = pd.Series(["01/02/2012", "13/02/2012"] * 20, name="day")
    with pytest.warns(DataWarning, match=r"'day'.*day/month.*YYYY-MM-DD"):
        spec = infer_schema(pd.DataFrame({"day": s}))["columns"]["day"]
    assert spec["type"] == "str"                        # not read: the order would have to travel with the model
    assert as_datetime(s).isna().all()                  # and nowhere read one way at training, another at serving


def test_infinite_values_never_become_bounds():
    df = pd.DataFrame({"x": [1.0, 2.0, -np.inf, 4.0, np.inf] * 5})
    with pytest.warns(DataWarning, match=r"'x' has infinite values \(-inf, inf\) in 10 rows"):
        spec = infer_schema(df)["columns"]["x"]
    assert (spec["min"], spec["max"]) == (1, 4)
    with pytest.raises(DataError, match="'x'.*outside the allowed range"):   # and the check names them
        check_data(df, infer_schema(df.replace([np.inf, -np.inf], 3.0)), quiet=True)


def test_mostly_numeric_text_column_is_named_with_its_stray_values():
    x = pd.Series([str(v) for v in np.linspace(0, 50, 97)] + ["?", "unknown", "?"], name="x", dtype=object)
    with pytest.warns(DataWarning, match=r"'x'.*97%.*numbers.*'\?'.*'unknown'"):
        spec = infer_schema(pd.DataFrame({"x": x}))["columns"]["x"]
    assert spec["type"] == "str"
    with warnings.catch_warnings():   # a real text column: no warning
        warnings.simplefilter("error")
        infer_schema(pd.DataFrame({"c": ["a", "b", "1"] * 10}))


# --- a time-ordered split whose held-out rows lack a class
def classes_frame(n=300):
    rng = np.random.default_rng(0)
    a = np.sort(rng.normal(size=n))
    df = pd.DataFrame({"a": a, "b": rng.normal(size=n), "when": pd.date_range("2020-01-01", periods=n).strftime("%Y-%m-%d")})
    df["y"] = np.where(df.a < -0.5, "lo", np.where(df.a > 0.5, "hi", "mid"))   # the latest rows are all "hi"
    return df


class S:   # the settings `held_out` reads
    target, test_size, seed, time_column = "y", 0.2, 0, "when"


def test_metrics_over_the_classes_present():
    from mlops_nb.train import held_out, build_model, make_estimator, compute_metrics
    from mlops_nb.evaluate import feature_importance
    df = classes_frame()
    df.loc[df.index[-30:], "y"] = "mid"
    with pytest.warns(DataWarning, match=r"held-out rows.*no rows of class 'lo'.*over 'hi', 'mid'"):
        X_train, y_train, X_test, y_test = held_out(df, S, "classification")
    X_train, X_test = X_train.drop(columns="when"), X_test.drop(columns="when")
    m = build_model(X_train, make_estimator("logistic_regression", "classification", 0)).fit(X_train, y_train)
    got = compute_metrics(m, X_test, y_test, "classification")
    assert 0 <= got["roc_auc"] <= 1 and np.isfinite(got["log_loss"])
    for metric in ("roc_auc", "log_loss", "f1", "accuracy"):
        imp = feature_importance(m, X_test, y_test, metric)
        assert list(imp.index) and np.isfinite(imp).all()
    from mlops_nb.config import Settings
    from mlops_nb.evaluate import judge   # the validate pipeline's gate: was a scikit-learn ValueError
    j = judge(m, m, X_train, y_train, X_test, y_test, "classification", Settings())
    assert j.metric == "roc_auc" and np.isfinite(list(j.metrics().values())).all()
    full = compute_metrics(m, X_train, y_train, "classification")   # all classes present: scikit-learn's macro one-vs-rest
    from sklearn.metrics import roc_auc_score
    assert full["roc_auc"] == pytest.approx(roc_auc_score(y_train, m.predict_proba(X_train), multi_class="ovr"))


def test_held_out_classes_the_training_rows_lack_are_refused():
    from mlops_nb.train import held_out
    df = classes_frame()
    df.loc[df.index[-10:], "y"] = "new"
    with pytest.raises(DataError, match=r"latest 20% of rows by 'when'.*training rows lack: 'new' \(10 rows\).*test_size.*time_column"):
        held_out(df, S, "classification")


def test_model_trained_on_slashed_dates_reads_the_same_text_when_served():
    "Checks, the model's date-part step and the service read `2012/01/01` alike: served text scores as the checked frame."
    from mlops_nb.train import features_target, build_model, make_estimator, client_types
    from mlops_nb.serve import InputSchema, Column, categories_from_model, to_frame
    df = pd.DataFrame({"day": dates(60, "%Y/%m/%d %H:%M"), "y": [0, 0, 1] * 20})
    checked = check_data(df, infer_schema(df, "y", "classification"), quiet=True).data
    X, y = features_target(checked, "y")
    assert pd.api.types.is_datetime64_any_dtype(X["day"]) and client_types(df, X) == {"day": "string"}   # the signature: text
    m = build_model(X, make_estimator("logistic_regression", "classification", 0)).fit(X, y)
    served = categories_from_model(m, InputSchema([Column("day", "string")]))
    assert served.columns[0].type == "datetime"
    frame, warns, _, _ = to_frame({"dataframe_records": df[["day"]].to_dict(orient="records")}, served, max_rows=len(df))
    assert warns == [] and m.predict_proba(frame).tolist() == m.predict_proba(X).tolist()


def test_time_split_on_dates_as_text_is_in_time_order():
    "validate splits the data as read (dates still text): the held-out rows must be the latest, as training's are."
    from mlops_nb.data import split_data
    df = pd.DataFrame({"when": dates(40, "%Y/%-m/%-d"), "y": [0, 1] * 20}).sample(frac=1, random_state=0)
    _, test = split_data(df, "y", 0.25, time_column="when")
    assert sorted(as_datetime(test["when"])) == sorted(as_datetime(df["when"]))[-10:]
