"""`noisecli export --format hf`: transformers loads the folder as its own model and tokenizer, with
noisecli's logits and tiktoken's ids; `eval-ntp` scores `hf:` models the same way, and refuses a model
whose tokenizer is not GPT-2's."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from noisecli.training import checkpoint
from noisecli.what.architectures import load_model
from noisecli.what.tokenizer import encode
from tests.conftest import MINILM, assert_one_line_error, wiki_docs


@pytest.fixture(scope="module")
def exported(cli, runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    for name in ("clean", "bert-clean"):
        r = cli("export", runs[0] / name, out / name)
        assert r.exit_code == 0, r
    return out


def test_gpt_export_has_noisecli_logits_and_gpt2_ids(exported, runs):
    hf = AutoModelForCausalLM.from_pretrained(exported / "clean").eval()
    tok = AutoTokenizer.from_pretrained(exported / "clean")
    assert type(hf).__name__ == "GPT2LMHeadModel" and hf.config.vocab_size == 50257
    ours, _ = load_model(runs[0] / "clean")
    docs = wiki_docs("en", 40) + ["  it's  naïve — 東京 🙂\n\n", "a<|endoftext|>b"]
    for text in docs[:-1]:
        assert tok(text)["input_ids"] == encode(text).tolist()
    ids = torch.tensor([encode(docs[0])[:32].tolist()])
    with torch.no_grad():
        a = hf(ids).logits
        b = ours.forward_head(ours.forward_features(ids))[..., :50257]
    assert (a - b).abs().max().item() < 1e-4
    assert json.loads((exported / "clean" / "noisecli_export.json").read_text())["class"] == "GPT2LMHeadModel"
    assert not (checkpoint.list_checkpoints(runs[0] / "clean")[-1][1] / "config.json").exists()   # ours: noisecli.json


def test_bert_export_is_a_masked_lm(exported, runs):
    hf = AutoModelForMaskedLM.from_pretrained(exported / "bert-clean").eval()
    tok = AutoTokenizer.from_pretrained(exported / "bert-clean")
    assert tok.mask_token_id == 50257
    ours, _ = load_model(runs[0] / "bert-clean")
    ids = torch.tensor([[464, 2068, 50257, 21831, 18045]])
    with torch.no_grad():
        assert torch.allclose(hf(input_ids=ids).logits, ours.mlm(input_ids=ids).logits, atol=1e-5)


def test_eval_ntp_scores_hf_models_and_checks_their_tokenizer(cli, exported, runs, tmp_path):
    r = cli("eval-ntp", f"hf:{exported / 'clean'}", runs[0] / "clean", "--data", runs[1], "--max-tokens", "3000",
            "--out", tmp_path / "e")
    assert r.exit_code == 0, r
    rows = json.loads((tmp_path / "e" / "results.json").read_text())["rows"]
    hf_row = next(r for r in rows if r["run"].startswith("hf:"))
    ours = max((r for r in rows if r["run"] == "clean"), key=lambda r: r["iter"])
    assert hf_row["tokens"] == ours["tokens"]
    # the same model, its softmax over GPT-2's 50257 ids instead of the padded 50304: never higher
    assert hf_row["loss"] <= ours["loss"] + 1e-4 and ours["loss"] - hf_row["loss"] < 0.05
    assert_one_line_error(cli("eval-ntp", MINILM, "--data", runs[1], "--out", tmp_path / "m"), "not GPT-2's")


def test_export_refuses_a_non_empty_folder(cli, runs, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    assert_one_line_error(cli("export", runs[0] / "clean", tmp_path / "x"), "not empty")
