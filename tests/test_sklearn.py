"""noisecli.sklearn.LGMClassifier: scikit-learn's own estimator checks, model selection on real features,
and the same accuracy as `noisecli probe` for the same features, seed and settings."""

import json

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from noisecli.how.extract import read_split
from noisecli.how.probe.heads import HEADS
from noisecli.sklearn import LGMClassifier


# The checks fit 2-D standardised blobs of 300 samples and ask for training accuracy > 0.83. The defaults
# are probe's recipe for LLM features (lr 6e-4, 10 epochs: ~100 steps, too few to move a head that far on
# 2-D data), so the checks run at lr 1e-2 for 30 epochs, as scikit-learn runs its own iterative estimators
# with check-specific parameters. No check is expected to fail; scikit-learn itself skips one,
# check_array_api_input, unless SCIPY_ARRAY_API is set (the estimator takes numpy input, not the array API).
@parametrize_with_checks([LGMClassifier(head=h, lr=1e-2, epochs=30) for h in HEADS.names()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _split(folder, name):
    x, y, _ = read_split(folder / f"{name}.safetensors")
    return x.numpy(), y.numpy()


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_same_test_accuracy_as_probe(cli, minilm_features, tmp_path, head):
    """probe with one seed and one grid point trains the same head on the same batches and δ."""
    out = tmp_path / "probe"
    r = cli("probe", minilm_features, "--head", head, "--lgm", "--seeds", "1", "--seed", "3", "--lr", "1e-3",
            "--batch-size", "16", "--epochs", "4", "--out", out)
    assert r.exit_code == 0, r
    rows = {row["method"]: row for row in json.loads((out / "results.json").read_text())["rows"]}
    (xtr, ytr), (xte, yte) = _split(minilm_features, "train"), _split(minilm_features, "test")
    for method, lam in (("baseline", 0.0), ("lgm", 0.15)):
        clf = LGMClassifier(head=head, lam=lam, gamma=0.01, lr=1e-3, batch_size=16, epochs=4, random_state=3)
        acc = clf.fit(xtr, ytr).score(xte, yte) * 100
        # probe's accuracy is a float32 ratio; one sample's difference would be 100/len(yte) ≥ 1 point
        assert acc == pytest.approx(rows[method]["test_acc_per_seed"][0], abs=1e-4), method
    # and λ > 0 trains a different head than λ = 0
    a = LGMClassifier(head=head, lam=0.0, lr=1e-3, batch_size=16, epochs=4, random_state=3).fit(xtr, ytr)
    b = LGMClassifier(head=head, lam=5.0, lr=1e-3, batch_size=16, epochs=4, random_state=3).fit(xtr, ytr)
    assert not np.allclose(a.predict_proba(xte), b.predict_proba(xte))


def test_grid_search_and_cross_validation_on_real_features(minilm_features):
    (xtr, ytr), (xte, yte) = _split(minilm_features, "train"), _split(minilm_features, "test")
    names = np.array(["negative", "positive"])
    search = GridSearchCV(LGMClassifier(batch_size=16, random_state=0),
                          {"gamma": [0.01, 0.1], "lam": [0.0, 0.15], "lr": [1e-3, 3e-3]}, cv=3)
    search.fit(xtr, names[ytr])                       # string labels
    assert len(search.cv_results_["params"]) == 8
    assert set(search.best_params_) == {"gamma", "lam", "lr"}
    assert list(search.classes_) == ["negative", "positive"]
    assert search.score(xte, names[yte]) > 0.65       # real sentiment signal in frozen MiniLM features (chance: 0.5)
    scores = cross_val_score(LGMClassifier(lr=3e-3, batch_size=16, random_state=0), xtr, ytr, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.62


def test_random_state_repeats_a_fit_and_seeds_differ(minilm_features):
    x, y = _split(minilm_features, "train")
    fit = lambda seed: LGMClassifier(head="mlp", epochs=2, random_state=seed).fit(x, y).predict_proba(x)  # noqa: E731
    assert np.array_equal(fit(7), fit(7))
    assert not np.allclose(fit(7), fit(8))


def test_bad_parameters_are_scikit_learn_errors():
    x, y = np.random.default_rng(0).normal(size=(20, 4)), np.arange(20) % 2
    for bad in (dict(head="cnn"), dict(lam=-1.0), dict(lr=0.0), dict(batch_size=0)):
        with pytest.raises(ValueError, match="parameter of LGMClassifier"):
            LGMClassifier(**bad).fit(x, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LGMClassifier().fit(x, np.zeros(20))
