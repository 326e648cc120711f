"""noisecli.hf.LGMTrainer: the same objective as `finetune --lgm` on MiniLM, Trainer.train() with its
logging, evaluation and checkpoints on the embedded amazon task, an exact resume, RoBERTa-style and
DistilBERT heads, and one clear error for a model without a pooled-feature classifier."""

import tempfile

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DataCollatorWithPadding,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    TrainerCallback,
)
from transformers.utils import logging as hf_logging

from noisecli.core.hub import hf_location
from noisecli.hf import LGMTrainer, LGMTrainingArguments
from noisecli.how.finetune.model import FineTuneModel, Objective
from noisecli.how.finetune.regularisers import make_finetune_regulariser
from noisecli.how.tasks import load_task

MINILM = hf_location("sentence-transformers/all-MiniLM-L6-v2")[0]
hf_logging.set_verbosity_error()


def _args(tmp, **kw):
    return LGMTrainingArguments(output_dir=str(tmp), report_to="none", use_cpu=True, disable_tqdm=True, **kw)


class FirstToken(torch.nn.Module):
    """A pooler that hands the classifier the [CLS] vector itself, as `finetune --pool cls` reads it."""
    def forward(self, hidden):
        return hidden[:, 0]


@pytest.mark.parametrize("outputs", [2, 1])
def test_loss_and_gradients_equal_finetunes_lgm_objective(tmp_path, outputs):
    tok = AutoTokenizer.from_pretrained(MINILM)
    batch = dict(tok(["a great film", "dull and far too long, sadly", "fine", "awful acting, awful plot"],
                     padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0, 1, 0]) if outputs == 2 else torch.tensor([0.9, 0.1, 0.6, 0.0])
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    ours = FineTuneModel(AutoModel.from_pretrained(MINILM, **no_dropout), outputs, "cls").train()
    ours.objective = Objective(make_finetune_regulariser("none"), lgm=True, gamma=0.01, lam=0.15)
    theirs = BertForSequenceClassification.from_pretrained(MINILM, num_labels=outputs, **no_dropout).train()
    theirs.bert.pooler = FirstToken()
    theirs.classifier.load_state_dict(ours.head.state_dict())
    trainer = LGMTrainer(model=theirs, args=_args(tmp_path))       # γ, λ: the paper's defaults
    assert (trainer.lgm_gamma, trainer.lgm_lambda) == (0.01, 0.15)
    torch.manual_seed(5)
    a = ours(batch)
    torch.manual_seed(5)
    b = trainer.compute_loss(theirs, dict(batch))
    assert b.item() == pytest.approx(a.item(), rel=1e-6)
    plain = theirs(**batch).loss
    assert b.item() - plain.item() > 1e-4                         # λ·L_gm is there
    a.backward()
    b.backward()
    mine, hf = dict(ours.encoder.named_parameters()), dict(theirs.bert.named_parameters())
    scale = max(p.grad.abs().max().item() for p in mine.values())
    for name, p in mine.items():
        assert torch.allclose(p.grad, hf[name].grad, atol=1e-6 * scale), name
    assert torch.allclose(ours.head.weight.grad, theirs.classifier.weight.grad, atol=1e-7)


def _amazon(tok, limit=48):
    from datasets import Dataset
    task = load_task("amazon", seed=0, limit=limit)

    def split(name):
        s = task.splits[name]
        d = Dataset.from_dict({"text": [x["text"] for x in s.inputs], "label": s.labels.tolist()})
        return d.map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])
    return split("train"), split("val")


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_trainer_trains_logs_evaluates_checkpoints_and_resumes_exactly(tmp_path):
    tok = AutoTokenizer.from_pretrained(MINILM)
    train, val = _amazon(tok)

    def trainer(name):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(MINILM, num_labels=2)
        args = _args(tmp_path / name, max_steps=4, per_device_train_batch_size=8, learning_rate=1e-4,
                     logging_steps=1, eval_strategy="steps", eval_steps=2, save_steps=2, seed=0, lgm_lambda=0.3)
        return LGMTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                          data_collator=DataCollatorWithPadding(tok))
    full = trainer("full")
    full.train()
    logs = full.state.log_history
    steps = [entry for entry in logs if "loss" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3, 4]
    assert all(0 < entry["lgm"] < 10 for entry in steps)          # the mean L_gm of each logged step
    assert [entry["step"] for entry in logs if "eval_loss" in entry] == [2, 4]
    assert {p.name for p in (tmp_path / "full").iterdir()} >= {"checkpoint-2", "checkpoint-4"}
    assert full.lgm_lambda == 0.3

    cut = trainer("cut")
    cut.add_callback(StopAt(2))
    cut.train()
    assert cut.state.global_step == 2
    resumed = trainer("cut")
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-2"))
    a, b = dict(full.model.named_parameters()), dict(resumed.model.named_parameters())
    for name in a:
        assert torch.equal(a[name], b[name]), name                 # δ and the batches replay bit for bit


def _batch(classes=3):
    g = torch.Generator().manual_seed(0)
    return {"input_ids": torch.randint(3, 100, (5, 7), generator=g), "attention_mask": torch.ones(5, 7, dtype=torch.long),
            "labels": torch.tensor([0, 1, 2, 0, 1]) % classes}


def test_roberta_style_head_replays_its_dropout_and_distilbert_runs():
    torch.manual_seed(0)
    roberta = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=3, hidden_dropout_prob=0.3)).train()
    batch = _batch()
    trainer = LGMTrainer(model=roberta, args=_args(tempfile.mkdtemp(), lgm_gamma=0.0, lgm_lambda=1.0))
    torch.manual_seed(1)
    at_zero = trainer.compute_loss(roberta, dict(batch))
    torch.manual_seed(1)
    plain = roberta(**batch).loss
    # γ = 0: t̂ = t, and with the head's dropout masks replayed the two gradients are identical
    assert at_zero.item() == plain.item() and float(trainer._lgm_sum) == 0.0
    trainer.lgm_gamma = 0.05
    torch.manual_seed(1)
    assert trainer.compute_loss(roberta, dict(batch)).item() > plain.item()
    distil = DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32, num_labels=3)).train()
    loss = LGMTrainer(model=distil, args=_args(tempfile.mkdtemp())).compute_loss(distil, dict(batch))
    loss.backward()
    assert distil.distilbert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_a_model_without_a_pooled_feature_classifier_is_one_clear_error():
    gpt2 = GPT2ForSequenceClassification(GPT2Config(vocab_size=100, n_embd=16, n_layer=1, n_head=2,
                                                    bos_token_id=0, eos_token_id=0, pad_token_id=0))
    with pytest.raises(ValueError, match="needs a sequence classifier whose head is `model.classifier`"):
        LGMTrainer(model=gpt2, args=_args(tempfile.mkdtemp()))
    bert = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32, num_labels=3))
    bert.classifier = torch.nn.Sequential(torch.nn.Unflatten(1, (4, 4)), torch.nn.Flatten(), torch.nn.Linear(16, 3))
    trainer = LGMTrainer(model=bert.train(), args=_args(tempfile.mkdtemp()))
    assert trainer.compute_loss(bert, dict(_batch())).item() > 0  # any module reading [batch, hidden] is a head
    with pytest.raises(ValueError, match="lgm_gamma must be finite"):
        LGMTrainer(model=bert, args=_args(tempfile.mkdtemp()), lgm_gamma=float("nan"))


def test_a_classifier_over_the_whole_sequence_is_refused_by_name():
    from noisecli.hf import feature_and_head
    bert = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32))
    with pytest.raises(ValueError, match=r"BertForSequenceClassification's Linear reads a tensor of shape \[2, 5, 16\]"):
        feature_and_head(bert, torch.nn.Linear(16, 2), torch.zeros(2, 5, 16))
