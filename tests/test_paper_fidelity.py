"""The paper's own prompts (Table 11), vision datasets (Table 12) and backbones (Table 13), transcribed
here from Appendix E of the paper, against what the tool uses."""

import pytest

from noisecli.how import backbones, tasks
from tests.conftest import assert_one_line_error

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


@pytest.mark.parametrize("name", TABLE11)
def test_prompts_are_table_11(name):
    assert tasks.HUB_TEXT[name].prompt == TABLE11[name]
    spec = tasks.HUB_TEXT[name]
    assert set(spec.fields) == {f for _, f, _, _ in __import__("string").Formatter().parse(spec.prompt) if f}


def test_offline_stand_ins_use_the_prompt_of_the_task_they_stand_for():
    assert tasks.OFFLINE["movie"][1] == TABLE11["sst2"] and tasks.OFFLINE["movie-fine"][1] == TABLE11["sst-fine"]
    assert tasks.OFFLINE["amazon"][1] == TABLE11["cr"]   # Hu & Liu's product sentences: CR's source


def test_vision_datasets_are_table_12():
    assert list(tasks.HUB_VISION) == TABLE12
    assert all("/" in spec.dataset for spec in tasks.HUB_VISION.values())   # hub ids


def test_table_13_backbones_are_named_with_their_timm_tags():
    import timm
    assert len(backbones.TABLE13) == 5
    for name in backbones.TABLE13.values():
        assert "." in name and name in timm.list_models(pretrained=True), name


def test_a_tagged_timm_name_is_accepted(cli, tmp_path):
    r = cli("extract", "--backbone", "timm:test_vit.r160_in1k", "--weights", "random", "--task", "digits",
            "--limit", "20", "--out", tmp_path / "vit")
    assert r.exit_code == 0, r
    assert_one_line_error(cli("extract", "--backbone", "timm:test_vit.no_such_tag", "--weights", "random",
                              "--task", "digits", "--out", tmp_path / "x"), "no pretrained weights tagged")
