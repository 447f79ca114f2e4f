"""The train and evaluate stages' results: the line a person reads (`describe`, printed by the CLI and logged by
the flow), and the stage's dict given back whole (`to_dict`, what `--json` and the flow's summary carry)."""

from textops.modeling.results import EvalResult, TrainResult

TRAINED = {
    "val_accuracy": 0.91234,
    "val_macro_f1": 0.9,
    "val_loss": 0.3,
    "global_step": 300,
    "train_samples_per_second": 41.25,
    "device": "cpu",
    "resumed_from_step": 0,
    "run_id": "abc",
    "base_model": "tiny",
}


def test_train_result_describes_the_kept_checkpoint_and_how_it_trained():
    result = TrainResult.from_dict(TRAINED)
    assert result.describe() == (
        "val accuracy 0.9123, macro-F1 0.9000 (tiny model, 300 steps, 41.2 samples/s on cpu); MLflow run abc"
    )
    assert result.to_dict() == TRAINED  # every key the stage returned, `val_loss` included
    resumed = TrainResult(val_accuracy=0.5, val_macro_f1=0.25, run_id="r", global_step=8, resumed_from_step=4)
    assert "(8 steps on cpu, resumed from step 4); MLflow run r" in resumed.describe()
    # The tfidf family has no Trainer: no steps, no throughput.
    fitted = TrainResult(val_accuracy=0.8, val_macro_f1=0.7, run_id="t", base_model="tfidf")
    assert fitted.describe() == "val accuracy 0.8000, macro-F1 0.7000 (tfidf model on cpu); MLflow run t"
    assert fitted.to_dict()["base_model"] == "tfidf"


def test_eval_result_describes_the_test_figures_and_the_baseline_beside_them():
    baseline = {"model": "TF-IDF + logistic regression", "accuracy": 0.75, "macro_f1": 0.7}
    result = EvalResult(accuracy=0.8, macro_f1=0.79, rows=120, texts_per_second=250.4, run_id="abc", baseline=baseline)
    assert result.describe() == (
        "test accuracy 0.8000, macro-F1 0.7900 on 120 rows (250 texts/s) (TF-IDF + logistic regression baseline: "
        "accuracy 0.7500, macro_f1 0.7000); MLflow run abc"
    )
    plain = EvalResult.from_dict({"accuracy": 0.5, "macro_f1": 0.4, "rows": 10, "run_id": "x", "slices": []})
    assert plain.describe() == "test accuracy 0.5000, macro-F1 0.4000 on 10 rows; MLflow run x"
    assert plain.to_dict()["slices"] == []
