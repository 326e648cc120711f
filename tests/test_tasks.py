"""The tasks (how/tasks/): offline tasks with fixed seeded splits, and the paper's own prompts (Table
11) and vision datasets (Table 12), transcribed here from Appendix E, against what the tool uses."""

import string

import numpy as np
import pytest

from noisecli.how.tasks import TASKS, hub, load_task

TABLE11 = {  # dataset -> prompt, verbatim (line breaks of the PDF joined with one space)
    "sst2": "{text} this movie is",
    "sst-fine": "{text} this movie is",
    "20newsgroup": "{text} This article is about",
    "cr": "{text} the sentiment is",
    "bbc": "Please classify the topic of the following news: {text} Answer:",
    "balanced-copa": "Given the premise: {premise} Find the most plausible alternative for the {question}. "
                     "Option 1: {choice1} Option 2: {choice2} Which option is more plausible?",
    "mrpc": "Sentence 1: {text1} Sentence 2: {text2} Is this a paraphrase?",
    "wic": "Task: Determine if the word {phrase1} has the same meaning in the two sentences below. "
           "Sentence 1: {sentence1} Sentence 2: {sentence2} Your answer:",
}


TABLE12 = ["cars", "caltech101", "cifar10", "cifar100", "dtd", "eurosat", "aircraft", "flowers102", "food101",
           "pets", "pcam", "resisc45", "rendered-sst2", "svhn"]


def test_offline_tasks_have_fixed_seeded_splits():
    a, b, c = load_task("movie", seed=0), load_task("movie", seed=0), load_task("movie", seed=1)
    assert a.splits["val"].inputs == b.splits["val"].inputs != c.splits["val"].inputs
    n = {k: len(s.labels) for k, s in a.splits.items()}
    assert abs(n["val"] / (n["train"] + n["val"]) - 0.1) < 0.01          # 10 % of train
    assert set(np.unique(a.splits["train"].labels)) == {0, 1}
    fine = load_task("movie-fine")
    assert sorted(np.unique(fine.splits["train"].labels)) == [0, 1, 2, 3, 4]
    topics = load_task("wiki-topic")
    assert "Uncategorized" not in topics.labels and len(topics.labels) == 11
    assert topics.render(topics.splits["test"].inputs[0])[1] == " Answer:"
    digits = load_task("digits")
    assert digits.modality == "image" and digits.splits["train"].inputs[0].shape == (8, 8)


@pytest.mark.parametrize("name", TABLE11)
def test_prompts_are_table_11(name):
    assert hub.HUB_TEXT[name].prompt == TABLE11[name]
    spec = hub.HUB_TEXT[name]
    assert set(spec.fields) == {f for _, f, _, _ in string.Formatter().parse(spec.prompt) if f}


def test_offline_stand_ins_use_the_prompt_of_the_task_they_stand_for():
    assert TASKS["movie"].prompt == TABLE11["sst2"] and TASKS["movie-fine"].prompt == TABLE11["sst-fine"]
    assert TASKS["amazon"].prompt == TABLE11["cr"]   # Hu & Liu's product sentences: CR's source


def test_every_registered_task_is_listed_by_extract_and_finetune_help(cli):
    offline = [name for name, t in TASKS.items() if t.offline]
    assert offline[:2] == ["movie", "movie-fine"] and "digits" in offline and "sst2" not in offline
    extract = " ".join(cli("extract", "--help").stdout.split())
    assert all(name in extract for name in TASKS)
    finetune = " ".join(cli("finetune", "--help").stdout.split())   # it trains text encoders
    assert all(name in finetune for name in offline if TASKS[name].modality == "text") and "digits" not in finetune


def test_vision_datasets_are_table_12():
    assert list(hub.HUB_VISION) == TABLE12
    assert all("/" in spec.dataset for spec in hub.HUB_VISION.values())   # hub ids


def test_a_local_csv_of_text_pairs(cli, tmp_path):
    rows = ["first,second,label"] + [f"sentence {i},other {i % 3},{i % 2}" for i in range(30)]
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    task = load_task(str(tmp_path / "pairs.csv"), text_fields=["first", "second"], prompt="{text1} / {text2}")
    sample = task.splits["train"].inputs[0]
    assert set(sample) == {"text1", "text2"} and sample["text1"].startswith("sentence")
    r = cli("extract", "--backbone", "hf:x", "--task", tmp_path / "pairs.csv", "--text-field", "first,nope",
            "--out", tmp_path / "f")
    assert r.exit_code == 2 and "no column 'nope'" in r.stderr


def test_tables_from_excel_and_other_encodings(tmp_path):
    """A CSV with Excel's byte-order mark, or in UTF-16, reads as UTF-8 does; Latin-1 bytes, a header naming a
    column twice, and a JSON line that is no object are one line each."""
    from noisecli.core.errors import InputError
    rows = "text,label\n" + "".join(f"sentence number {i} about films,{i % 2}\n" for i in range(40))
    for name, raw in (("bom.csv", b"\xef\xbb\xbf" + rows.encode()), ("utf16.csv", rows.encode("utf-16"))):
        (tmp_path / name).write_bytes(raw)
        task = load_task(str(tmp_path / name))
        assert task.splits["train"].inputs[0]["text"].startswith("sentence number")
    for name, raw, needle in (("latin1.csv", (rows + "café,1\n").encode("latin-1"), "not UTF-8 text (byte"),
                              ("dup.csv", rows.replace("text,label", "text,text,label").encode(), "column twice"),
                              ("list.jsonl", b'{"text": "a", "label": 0}\n[1, 2]\n', "list.jsonl:2")):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(InputError, match=needle.replace("(", r"\(")):
            load_task(str(tmp_path / name))


def test_labels_and_prompts_that_would_mean_nothing_are_refused(tmp_path):
    from noisecli.core.errors import InputError
    for labels, needle in ((["nan", "1"], "is not a class"), (["0", "1000000"], "distinct values")):
        path = tmp_path / f"labels-{labels[1]}.csv"
        path.write_text("text,label\n" + "".join(f"sentence number {i} about films,{labels[i % 2]}\n" for i in range(40)))
        with pytest.raises(InputError, match=needle):
            load_task(str(path))
    with pytest.raises(InputError, match="no field"):
        load_task("movie", prompt="Is this movie good?")
