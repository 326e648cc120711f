"""`finetune` (the paper's Table 4): each regulariser's formula against a hand computation in float64 on
a tiny BERT, LGM on trainable features against an explicit gradient formula, the GLUE scores against
scikit-learn/scipy, and the stage itself on the offline MiniLM: every regulariser ± LGM, regression,
exact resume, DDP, and its errors."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef
from transformers import BertConfig, BertModel

from noisecli.how.tasks import scores as task_scores
from noisecli.how.finetune.command import FinetuneConfig, finetune
from noisecli.how.finetune.model import Clean, FineTuneModel, Objective, RandomState, lgm_term
from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS, make_finetune_regulariser
from noisecli.how.finetune.regularisers.smart import GUARD, ascent_step


def _tiny(outputs=3, seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    return FineTuneModel(BertModel(cfg), outputs).double()


def _batch(b=4, n=7, outputs=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, n, dtype=torch.long)
    mask[0, 5:] = 0
    y = torch.randn(b, generator=g, dtype=torch.float64) if outputs == 1 else torch.randint(0, outputs, (b,), generator=g)
    return {"input_ids": torch.randint(1, 50, (b, n), generator=g), "attention_mask": mask, "labels": y}


def _clean(model, batch, embeds=False, hidden=False):
    rng = RandomState(torch.device("cpu"))
    e = model.embed(batch) if embeds else None
    t, h = model.features(batch, e, hidden_states=hidden)
    return Clean(t, model.head(t), h, e, rng)


def _penalty_at_seed(name, options, model, batch, seed, **clean_kw):
    """(regulariser, clean pass, its penalty drawn at `seed`); the global RNG is reset to `seed` after, so
    the test can draw the same noise by hand."""
    reg = make_finetune_regulariser(name, options)
    reg.setup(model)
    clean = _clean(model, batch, **clean_kw)
    torch.manual_seed(seed)
    got = reg.penalty(model, batch, clean)
    torch.manual_seed(seed)
    return reg, clean, got


# ---------------------------------------------------------------- the scores

def test_scores_match_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert task_scores.accuracy(pred, y) == pytest.approx(100 * np.mean(pred == y))
    assert task_scores.f1(pred, y) == pytest.approx(100 * f1_score(y, pred))
    assert task_scores.matthews(pred, y) == pytest.approx(100 * matthews_corrcoef(y, pred))
    assert task_scores.matthews(np.zeros(10, int), y[:10]) == 0.0     # a constant prediction
    a, b = rng.normal(size=50), rng.integers(0, 5, 50).astype(float)   # ties in b
    assert task_scores.pearson(a, b) == pytest.approx(100 * pearsonr(a, b)[0])
    assert task_scores.spearman(a, b) == pytest.approx(100 * spearmanr(a, b)[0])


# ---------------------------------------------------------------- LGM on trainable features

@pytest.mark.parametrize("outputs", [3, 1])
def test_lgm_term_equals_explicit_gradient_formula(outputs):
    """L_gm = ‖(1/B)Σ r_i [t_i 1] − (1/B)Σ r̂_i [t̂_i 1]‖ with r = softmax − onehot (CE) or 2(z − y) (MSE),
    written out; value and gradient (head and features) equal in float64."""
    model = _tiny(outputs)
    g = torch.Generator().manual_seed(3)
    t = torch.randn(6, 16, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, generator=g, dtype=torch.float64) if outputs == 1 else torch.randint(0, outputs, (6,), generator=g)
    t_hat = t + 0.01 * torch.randn(6, 16, generator=g, dtype=torch.float64)
    w, b = model.head.weight, model.head.bias

    def grad(x):
        z = x @ w.T + b
        r = (torch.softmax(z, -1) - F.one_hot(y, outputs)) if outputs > 1 else 2 * (z - y[:, None])
        return torch.cat([(r.T @ x).flatten(), r.sum(0)]) / len(x)
    want = (grad(t) - grad(t_hat)).norm()
    ours = lgm_term(model.head, t, y, t_hat, model.task_loss)
    assert ours.item() == pytest.approx(want.item(), rel=1e-10)
    for a, c in zip(torch.autograd.grad(ours, [w, b, t]), torch.autograd.grad(want, [w, b, t])):
        assert torch.allclose(a, c, rtol=1e-8, atol=1e-14)


def test_lgm_gradient_reaches_the_encoder():
    model, batch = _tiny().eval(), _batch()
    model.objective = Objective(make_finetune_regulariser("none"), lgm=True, gamma=0.01, lam=1.0)
    torch.manual_seed(0)
    with_lgm = torch.autograd.grad(model(batch), list(model.encoder.parameters()), allow_unused=True)
    plain = torch.autograd.grad(model.task_loss(model.predict(batch), batch["labels"]),
                                list(model.encoder.parameters()), allow_unused=True)
    diffs = [(a - c).abs().max().item() for a, c in zip(with_lgm, plain) if a is not None and c is not None]
    assert max(diffs) > 1e-9     # L_gm changes the encoder's gradient


# ---------------------------------------------------------------- each regulariser's formula

def test_l2sp_equals_its_formula():
    model, batch = _tiny(), _batch()
    reg = make_finetune_regulariser("l2sp", {"alpha": 0.3, "beta": 0.05})
    reg.setup(model)
    start = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    want = 0.3 / 2 * sum(((p - start[n]) ** 2).sum() for n, p in model.encoder.named_parameters()) \
        + 0.05 / 2 * (model.head.weight.pow(2).sum() + model.head.bias.pow(2).sum())
    got = reg.penalty(model, batch, _clean(model, batch))
    assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert reg.replaces_weight_decay


def test_smart_divergence_ascent_and_teacher():
    model = _tiny()
    a = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    b = torch.tensor([[0.3, 0.1, 1.5]], dtype=torch.float64)
    p, q = torch.softmax(a, -1), torch.softmax(b, -1)
    assert model.divergence(a, b).item() == pytest.approx(((p * (p / q).log()).sum() + (q * (q / p).log()).sum()).item())
    batch = _batch()
    model.train()
    clean = _clean(model, batch, embeds=True)
    torch.manual_seed(5)
    nu0 = (1e-5 * torch.randn_like(clean.embeds)).requires_grad_(True)
    clean.same_dropout()
    adv = model.head(model.features(batch, clean.embeds.detach() + nu0)[0])
    g, = torch.autograd.grad(model.divergence(adv, clean.outputs.detach()), nu0)
    torch.manual_seed(5)
    nu = ascent_step(model, batch, clean, 1e-5, 1e-3)
    want = nu0 + 1e-3 * g / (g.abs().amax(dim=(1, 2), keepdim=True) + GUARD)   # g/‖g‖_∞ per sample
    assert torch.allclose(nu, want, rtol=1e-9, atol=1e-15) and not torch.allclose(nu, nu0)
    # at θ = θ̃ the Bregman term is exactly 0 (the teacher pass replays the dropout masks)
    reg = make_finetune_regulariser("smart", {"lambda_s": 0.0})
    reg.setup(model)
    assert reg.penalty(model, batch, _clean(model, batch, embeds=True)).item() == 0.0
    # with μ = 0 it is λ_s·ℓ_s(f(x + ν), f(x)) with the ν of the ascent step
    reg, clean, got = _penalty_at_seed("smart", {"mu": 0.0, "lambda_s": 2.0}, model, batch, 9, embeds=True)
    nu = ascent_step(model, batch, clean, 1e-5, 1e-3)
    clean.same_dropout()
    adv = model.head(model.features(batch, clean.embeds + nu)[0])
    assert got.item() == pytest.approx(2.0 * model.divergence(adv, clean.outputs).item(), rel=1e-10)
    assert got.item() > 0
    # the momentum teacher: θ̃ ← (1 − β)θ + βθ̃
    before = {n: t.clone() for n, t in reg.teacher.items()}
    with torch.no_grad():
        for p_ in model.parameters():
            p_.add_(0.1)
    reg.after_step(model)
    for n, p_ in model.named_parameters():
        assert torch.allclose(reg.teacher[n], 0.01 * p_ + 0.99 * before[n], rtol=1e-12)


def test_lnsr_equals_a_manual_noisy_pass():
    """Noise ε at the embedding output, propagated by calling the layers by hand: Σ_j mean ‖Δh_j‖²."""
    model, batch = _tiny().eval(), _batch()
    reg, clean, got = _penalty_at_seed("lnsr", {"sigma": 0.1, "lam": 0.5}, model, batch, 4, hidden=True)
    eps = (0.1 * torch.randn_like(clean.hidden[0], dtype=torch.float32)).double()   # drawn as LNSR draws it
    mask = batch["attention_mask"]
    ext = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min   # additive, as BERT's
    h, want = clean.hidden[0] + eps, 0.0
    for j, layer in enumerate(model.encoder.encoder.layer, start=1):
        out = layer(h, attention_mask=ext)
        h = out[0] if isinstance(out, tuple) else out
        want += (((h - clean.hidden[j]) ** 2).sum(-1) * mask).sum() / mask.sum()
    assert got.item() == pytest.approx(0.5 * want.item(), rel=1e-9)
    # σ = 0 in training mode: exactly 0, since the noisy pass replays the clean pass's dropout
    model.train()
    reg0 = make_finetune_regulariser("lnsr", {"sigma": 0.0})
    reg0.setup(model)
    assert reg0.penalty(model, batch, _clean(model, batch, hidden=True)).item() == 0.0


def test_registry_and_options():
    assert set(FINETUNE_REGULARISERS.names()) >= {"none", "l2sp", "smart", "lnsr"}
    for name, cls in FINETUNE_REGULARISERS.all().items():
        assert cls.summary and make_finetune_regulariser(name).options() == cls.defaults
    from noisecli.core.errors import InputError
    with pytest.raises(InputError, match="no option"):
        make_finetune_regulariser("smart", {"sigmaa": 1.0})


# ---------------------------------------------------------------- the stage, offline on MiniLM

def _cfg(out, **kw):
    base = dict(task=["amazon"], out=out, limit=24, epochs=1, batch_size=8, seeds=1, max_length=32, lr=5e-5,
                device="cpu", threads=2)
    return FinetuneConfig(**{**base, **kw})


def test_every_regulariser_with_and_without_lgm_runs(tmp_path):
    summary = finetune(_cfg(tmp_path / "ft", reg=FINETUNE_REGULARISERS.names(), lgm=True))
    names = FINETUNE_REGULARISERS.names()
    assert summary["methods"] == [m for r in names for m in (r, r + "+lgm")]
    assert {r["method"] for r in summary["rows"]} == set(summary["methods"])
    for r in summary["rows"]:
        assert 0 <= r["test_accuracy_mean"] <= 100
    assert len(summary["lgm_gains"]) == len(names)
    table = (tmp_path / "ft" / "table.md").read_text()
    assert "smart + L_gm" in table and "amazon (accuracy)" in table
    assert (tmp_path / "ft" / "results.csv").read_text().count("\n") == 2 * len(names) + 1
    result = json.loads((tmp_path / "ft" / "runs/amazon/lnsr+lgm/seed0/result.json").read_text())
    assert result["best_epoch"] == 1 and not (tmp_path / "ft/runs/amazon/lnsr+lgm/seed0/checkpoints").exists()


def test_regression_task_and_seeds(tmp_path):
    summary = finetune(_cfg(tmp_path / "ft", task=["movie-rating"], reg=["none"], lgm=True, seeds=2, epochs=2))
    row = summary["rows"][0]
    assert row["headline"] == "spearman" and row["seeds"] == 2 and row["test_spearman_std"] is not None
    assert summary["lgm_gains"][0]["n"] == 2


def test_resume_is_exact(tmp_path):
    kw = dict(reg=["smart"], lgm=True, epochs=2, keep_checkpoints=True)
    finetune(_cfg(tmp_path / "full", **kw))
    finetune(_cfg(tmp_path / "cut", stop_after=3, **kw))
    assert not (tmp_path / "cut/runs/amazon/smart+lgm/seed0/result.json").exists()
    finetune(_cfg(tmp_path / "cut", resume=True, **kw))
    run = "runs/amazon/smart+lgm/seed0"
    a = [json.loads(x) for x in (tmp_path / "full" / run / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "cut" / run / "metrics.jsonl").read_text().splitlines()]
    keep = ("iter", "val_loss", "test_loss", "val_accuracy", "train_loss")
    assert [{k: r.get(k) for k in keep} for r in a if "val_loss" in r] == \
        [{k: r.get(k) for k in keep} for r in b if "val_loss" in r]


def test_ddp_two_processes(tmp_path):
    summary = finetune(_cfg(tmp_path / "ft", reg=["lnsr"], lgm=True, procs=2, threads=1))
    assert summary["status"] == "finished" and len(summary["rows"]) == 2
    assert json.loads((tmp_path / "ft/finetune.json").read_text())["world_size"] == 2


def test_errors_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from noisecli.cli import app
    runner = CliRunner()
    for args, message in (
            (["--reg-option", "smart.sigma=nan"], "must be finite"),
            (["--reg-option", "smart-sigma"], "NAME.KEY=VALUE"),
            (["--model", "gpt:x"], "hf:PATH_OR_ID"),
            (["--batch-size", "3", "--procs", "2"], "split evenly")):
        r = runner.invoke(app, ["finetune", "--out", str(tmp_path / "x"), *args])
        assert r.exit_code == 2 and message in r.output, r.output
    r = runner.invoke(app, ["extract", "--backbone", "hf:sentence-transformers/all-MiniLM-L6-v2",
                            "--task", "movie-rating", "--out", str(tmp_path / "e")])
    assert r.exit_code == 2 and "regression" in r.output


def test_a_method_no_better_than_chance_is_flagged_not_reported_as_a_result(capsys):
    from types import SimpleNamespace

    from noisecli.how.finetune.results import print_table, summarise, table_markdown

    def run(method, seed, acc):
        return {"task": "amazon", "method": method, "seed": seed, "scores": ["accuracy"], "val": {"accuracy": acc},
                "test": {"accuracy": acc}, "best_epoch": 1, "chance": {"accuracy": 55.0}}
    cfg = SimpleNamespace(model="hf:x", epochs=1, lr=1e-5, batch_size=8, gamma=0.01, lam=0.15, seeds=2, limit=None)
    summary = summarise([run("l2sp", 0, 54.0), run("l2sp", 1, 55.0), run("smart", 0, 70.0), run("smart", 1, 72.0)],
                        cfg, "finished")
    flags = {r["method"]: r["at_chance"] for r in summary["rows"]}
    assert flags == {"l2sp": True, "smart": False}
    assert "54.50 ± 0.71 (≤ chance)" in table_markdown(summary) and "71.00 ± 1.41 |" in table_markdown(summary)
    print_table(summary)
    assert "noisecli: warning: no better than predicting the majority class" in capsys.readouterr().err
