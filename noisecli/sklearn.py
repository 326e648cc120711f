"""Local Gradient Matching as a scikit-learn classifier: a probe head on frozen features that drops into
`Pipeline`, `GridSearchCV` and `cross_val_score`.

    from noisecli.sklearn import LGMClassifier
    clf = LGMClassifier(head="linear", gamma=0.01, lam=0.15).fit(X_train, y_train)
    clf.score(X_test, y_test)

It trains exactly what `noisecli probe` trains for one grid point and one seed (how/probe/train_heads.py: the
paper's Eq. 4 through the heads' closed forms, AdamW with a cosine schedule to 0, batches drawn by
(seed, epoch)), so with the same features, `random_state` = probe's seed and the same lr, batch size,
epochs and weight decay, its test accuracy is probe's (tests/test_integrations.py). `lam=0` is the plain
cross-entropy head, probe's baseline. The defaults are probe's NLU recipe at one grid point (the paper's
§4 / Appendix E.1.3: lr 6e-4, batch 32, 10 epochs, weight decay 0.01; γ = 0.01, λ = 0.15).

Predictions are made in float64 from the trained float32 weights, so a sample's probabilities do not
depend on which other rows share its batch (scikit-learn's invariance checks ask for 1e-7).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from noisecli.how.probe.heads import HEADS


class LGMClassifier(ClassifierMixin, BaseEstimator):
    """A linear or MLP head trained with cross-entropy + λ·L_gm (Local Gradient Matching, the paper's Eq. 4).

    Parameters
    ----------
    head : {"linear", "mlp"}
        The probe head (noisecli/how/probe/heads/): one linear layer, or two with hidden width = the feature
        dimension and ReLU (the paper's §4).
    gamma : float ≥ 0
        γ: the perturbation scale, t̂ = t + γδ with δ ~ N(0, I).
    lam : float ≥ 0
        λ: the weight of L_gm; 0 trains the plain cross-entropy head.
    lr : float > 0
        AdamW's peak learning rate (cosine schedule to 0 over all steps).
    batch_size, epochs : int ≥ 1
    weight_decay : float ≥ 0
        AdamW's decoupled weight decay.
    random_state : int, RandomState or None
        Seeds the head's initialisation, the batch order and δ. An int is used as `noisecli probe --seed`.

    Attributes
    ----------
    classes_ : ndarray of the labels seen in `fit`, sorted.
    n_features_in_ : int
    head_ : the trained torch head (float64 copy of the float32 weights), logits = head_(X)[0].
    """

    _parameter_constraints: dict = {
        "head": [StrOptions(set(HEADS.names()))],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, head: str = "linear", gamma: float = 0.01, lam: float = 0.15, lr: float = 6e-4,
                 batch_size: int = 32, epochs: int = 10, weight_decay: float = 0.01, random_state=None):
        self.head = head
        self.gamma = gamma
        self.lam = lam
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _seed(self) -> int:
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def fit(self, X, y):
        """Train one head on X [n_samples, n_features] and labels y (any hashable labels)."""
        import torch

        from noisecli.how.probe.train_heads import train_heads
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"LGMClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})")
        method = "lgm" if self.lam > 0 else "none"
        head = train_heads(torch.tensor(X), torch.tensor(codes, dtype=torch.long), self.head, len(self.classes_),
                           [float(self.lr)], [self._seed()], int(self.batch_size), int(self.epochs),
                           float(self.weight_decay), method, float(self.gamma), float(self.lam))
        self.head_ = head.double().requires_grad_(False)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The head's logits, [n_samples, n_classes] (for two classes, the second class's logit minus the
        first's, as scikit-learn expects)."""
        import torch
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with torch.no_grad():
            z = self.head_(torch.from_numpy(X))[0].numpy()
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits, columns in the order of `classes_`."""
        z = self.decision_function(X)
        if z.ndim == 1:
            z = np.stack([np.zeros_like(z), z], 1)
        z = z - z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        p = self.predict_proba(X)
        return self.classes_[p.argmax(1)]
