"""The paper's experiment as one list of steps, whatever its scale.

    What  prepare French (Pⁿ of the multilingual case) and every dataset; the other corpora of Figure 4;
          pretrain every run; eval-ntp (clean validation and each run's own noise at every checkpoint,
          the other corpora at the last); Table 9: BERT clean, with 5 % noise, and clean with another seed
    Why   theory: k and the predicted rise for every noisy run, Lemma 1 on the α = 0.2 run
    How   extract every run's features for the tasks; probe Table 1 (baseline vs LGM), Table 5 (every
          registered regulariser), Table 6 (γ × λ); finetune Table 4 (full fine-tuning, L²-SP, SMART and
          LNSR each ± LGM); at paper scale also Tables 2, 3, 6 (DTD, ConvNeXt-L) and 8

`experiment(scale)` makes the list; a step is a command and its config dataclass. `reproduce --budget
micro|small|gpu` runs it (paper/reproduce.py), and `--budget paper` prints it, each step rendered from its
config by `command_line`, so the plan and what runs cannot drift apart. A budget may add steps of its own
that are not commands (`run`), e.g. tokenizing the small corpora of Figure 4 directly.
"""

from __future__ import annotations

import shlex
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from noisecli.core.stage import Stage

# name -> (alpha, dist, noise from the French corpus)
DATASETS = {"clean": (0.0, "uniform", False), "random-0.01": (0.01, "random", False),
            "random-0.05": (0.05, "random", False), "random-0.2": (0.2, "random", False),
            "gaussian-0.05": (0.05, "gaussian", False), "uniform-0.05": (0.05, "uniform", False),
            "french-0.2": (0.2, "french", True)}
# run -> (dataset, seed): every dataset once with seed 1337, and the clean one again with two more seeds:
# their spread is the training-seed uncertainty every comparison of the findings holds (three seeds, so that
# a t-interval has two degrees of freedom: t = 4.3, where two seeds give 12.7)
CLEAN_SEEDS = {"clean-seed2": 1338, "clean-seed3": 1339}
RUNS = {**{name: (name, 1337) for name in DATASETS}, **{name: ("clean", seed) for name, seed in CLEAN_SEEDS.items()}}
BERT_RUNS = {"bert-clean": ("clean", 1337), "bert-random-0.05": ("random-0.05", 1337),   # Table 9
             "bert-clean-seed2": ("clean", 1338)}
# Table 6 (the paper: DTD with ConvNeXt-L) has the rows (γ, λ) = (0.001, 0.001), (0.05, 0.05), (0.1, 0.1); probe
# crosses --gamma × --lam, so the grid below holds those three on its diagonal (and six pairs more)
TABLE6_POINTS = [(0.001, 0.001), (0.05, 0.05), (0.1, 0.1)]
TABLE6_GAMMA = TABLE6_LAM = [g for g, _ in TABLE6_POINTS]
# Table 2 (E.1.3): batch 8; lr 6e-4 for linear heads and 1e-4 for MLP heads; γ and λ "grid-searched on the
# validation set" over values the paper does not list: we search the ones it uses elsewhere (Table 6's and the
# default 0.01 / 0.15)
TABLE2_LR = {"linear": 6e-4, "mlp": 1e-4}
TABLE2_GAMMA, TABLE2_LAM = [0.001, 0.01, 0.05, 0.1], [0.001, 0.05, 0.1, 0.15]
TABLE2_TASKS = ["bbc", "balanced-copa", "mrpc", "wic"]
TABLE6_BACKBONE, TABLE6_TASK = "ConvNext-L (Laion-2B and ImageNet-1K)", "dtd"
BERT_MILESTONES = [1_000_000, 5_000_000, 10_000_000]   # Table 9 reads BERT-base at 1M / 5M / 10M iterations
PAPER_TASKS = ["sst2", "sst-fine", "20newsgroup", "cr", "bbc", "balanced-copa", "mrpc", "wic"]   # Table 1
PAPER_OTHER_CORPORA = {   # hub stand-ins for the paper's crawled arXiv and Wikipedia text (ids not checked offline)
    "arxiv": dict(hf="ccdv/arxiv-summarization", text_field="article"),
    "wikipedia": dict(hf="wikimedia/wikipedia", hf_config="20231101.en"),
}
TABLE2_LLMS = ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
               "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct")


# the paper's Table 5 (SST-2, clean GPT-2), in its order: ‖∇ℓ‖, cos(∇ℓ(t), ∇ℓ(t̂)), L_gm beside the baseline;
# l2 (‖g(t) − g(t̂)‖) is §4.1 / Figure 6(b)'s comparator, drawn in the sensitivity figure, not a Table 5 row
TABLE5 = ["gradnorm", "cosine", "lgm"]
NOT_TABLE5 = ["l2"]


def table5_regularisers() -> list[str]:
    """Table 5's rows beside the plain baseline: the paper's in its order, then any regulariser registered
    beyond noisecli's own (a user's), which the ablation should show too."""
    from noisecli.how.probe.regularisers import REGULARISERS
    names = [n for n in REGULARISERS.names() if n != "none"]
    return [n for n in TABLE5 if n in names] + [n for n in names if n not in TABLE5 + NOT_TABLE5]


TABLE4 = ["l2sp", "smart", "lnsr"]   # the paper's Table 4, in its order


def table4_regularisers() -> list[str]:
    """Table 4's methods: the paper's in its order, then any other registered fine-tuning regulariser
    (plain fine-tuning, `none`, is no row of the paper's)."""
    from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
    names = [n for n in FINETUNE_REGULARISERS.names() if n != "none"]
    return [n for n in TABLE4 if n in names] + [n for n in names if n not in TABLE4]


@dataclass
class Step:
    name: str
    stage: Stage | None = None                 # the command (core/stage.py) whose config this is
    config: Any = None
    run: Callable[[], object] | None = None    # a budget's own step that is no command ...
    done: Callable[[], bool] | None = None     # ... and how to tell that it has finished

    @property
    def command(self) -> str | None:
        """The command as typed after `noisecli` ("theory k", ...), or None for a budget's own step."""
        return self.stage.name if self.stage is not None else None


@dataclass
class Scale:
    """What differs between a budget and the paper; the steps themselves do not."""
    root: Path                       # data/, runs/, eval/, theory/, features/, probe/ go under it
    sources: dict[str, dict]         # PrepareConfig fields of each language's corpus ("en", "fr")
    datasets: list[str]              # which of DATASETS (and their runs)
    pretrain: dict                   # PretrainConfig fields of every run
    eval: dict                       # EvalNtpConfig fields beside the files and runs
    tasks: list[str]
    extract: dict                    # ExtractConfig fields beside backbone, task, out
    probe: dict                      # ProbeConfig fields of every table
    theory: dict                     # fields of the theory configs (max_tokens, device)
    other_corpora: list[Step] = field(default_factory=list)   # steps making Figure 4's corpora ...
    other_files: list[Path] = field(default_factory=list)      # ... and the files (or folders) they make
    k_from_eval: Callable[[list[str]], Step] | None = None    # k from eval-ntp's losses (else `theory k`)
    ablation_task: str = "movie"
    paper_tables: bool = False       # Tables 2, 3 and 8 (hub LLMs, vision backbones, GPT-2 774M)
    bert: dict | None = None         # PretrainConfig fields of Table 9's BERT runs (None: no Table 9)
    finetune: dict | None = None     # FinetuneConfig fields of Table 4's full fine-tuning (None: no Table 4)


def experiment(scale: Scale) -> list[Step]:
    """Every step of the experiment at `scale`, in the order they run (each reads what earlier ones wrote)."""
    from noisecli.how.extract import STAGE as EXTRACT
    from noisecli.how.extract import ExtractConfig
    from noisecli.how.probe.command import STAGE as PROBE
    from noisecli.how.probe.command import ProbeConfig
    from noisecli.what.eval_ntp import STAGE as EVAL_NTP
    from noisecli.what.eval_ntp import EvalNtpConfig
    from noisecli.what.prepare import STAGE as PREPARE
    from noisecli.what.prepare import PrepareConfig
    from noisecli.what.pretrain import STAGE as PRETRAIN
    from noisecli.what.pretrain import PretrainConfig
    from noisecli.why.theory import K_STAGE as THEORY_K
    from noisecli.why.theory import LEMMA1_STAGE as THEORY_LEMMA1
    from noisecli.why.theory import KConfig, Lemma1Config
    root = scale.root
    data, runs, features = root / "data", root / "runs", root / "features"
    steps = [Step("prepare fr (Pⁿ of the multilingual case)", PREPARE,
                  PrepareConfig(**scale.sources["fr"], out=data / "fr"))]
    for name in scale.datasets:   # the corpus is tokenized once (clean); each noisy set adds noise to its tokens
        alpha, dist, french = DATASETS[name]
        noise = dict(noise_from=data / "fr") if french else dict(dist=dist) if alpha else {}
        source = scale.sources["en"] if name == "clean" else \
            {"from_tokens": data / "clean", **({"workers": scale.sources["en"]["workers"]}
                                               if "workers" in scale.sources["en"] else {})}
        steps.append(Step(f"prepare {name}", PREPARE, PrepareConfig(**source, out=data / name, alpha=alpha, **noise)))
    steps += scale.other_corpora
    run_names = [n for n, (dataset, _) in RUNS.items() if dataset in scale.datasets]
    for name in run_names:
        dataset, seed = RUNS[name]
        steps.append(Step(f"pretrain {name}", PRETRAIN,
                          PretrainConfig(data=data / dataset, out=runs / name, seed=seed, **scale.pretrain)))
    noisy = [n for n in scale.datasets if n != "clean"]
    steps.append(Step("eval-ntp", EVAL_NTP, EvalNtpConfig(
        checkpoints=[runs / n for n in noisy] + [runs / n for n in CLEAN_SEEDS], baseline=runs / "clean",
        data=[data / "clean"] + [data / n / "noise.bin" for n in noisy], out=root / "eval",
        final_only=list(scale.other_files), **scale.eval)))
    if scale.k_from_eval is not None:
        steps.append(scale.k_from_eval(noisy))
    else:
        steps += [Step(f"theory k {n}", THEORY_K, KConfig(clean=runs / "clean", noisy=runs / n,
                                                            out=root / "theory" / n, **scale.theory)) for n in noisy]
    steps.append(Step("theory lemma1", THEORY_LEMMA1, Lemma1Config(
        checkpoint=runs / "random-0.2", data=data / "random-0.2", out=root / "theory" / "lemma1.json", **scale.theory)))
    for name in scale.datasets:
        for task in scale.tasks:
            steps.append(Step(f"extract {name} {task}", EXTRACT, ExtractConfig(
                backbone=f"gpt:{runs / name}", task=task, out=features / f"{name}__{task}", **scale.extract)))
    clean_ablation = [features / f"clean__{scale.ablation_task}"]
    steps += [
        Step("probe Table 1 (baseline vs LGM)", PROBE, ProbeConfig(
            features=[features / f"{n}__{t}" for n in scale.datasets for t in scale.tasks], out=root / "probe" / "table1",
            lgm=True, **scale.probe)),
        Step("probe Table 5 (ablation)", PROBE, ProbeConfig(
            features=clean_ablation, out=root / "probe" / "table5", reg=table5_regularisers(), plot_sensitivity=True,
            **scale.probe)),
        Step("probe Table 6 analogue (γ × λ sensitivity on the clean GPT-2; the paper's is DTD / ConvNeXt-L)",
             PROBE, ProbeConfig(features=clean_ablation, out=root / "probe" / "table6", reg=["lgm"],
                                  gamma=TABLE6_GAMMA, lam=TABLE6_LAM, **scale.probe))]
    if "random-0.2" in scale.datasets:   # Your corpus: scan finds the noise it was given (α̂ against α)
        from noisecli.scan.scan import STAGE as SCAN
        from noisecli.scan.scan import ScanConfig
        steps.append(Step("scan random-0.2 (α̂ against the α put in)", SCAN, ScanConfig(
            source=[str(data / "random-0.2")], out=root / "scan" / "random-0.2")))
    if scale.bert is not None:
        steps += _table9(scale)
    if scale.finetune is not None:
        from noisecli.how.finetune.command import STAGE as FINETUNE
        from noisecli.how.finetune.command import FinetuneConfig
        steps.append(Step("finetune Table 4 (full fine-tuning, each regulariser ± LGM)", FINETUNE, FinetuneConfig(
            out=root / "finetune", reg=table4_regularisers(), lgm=True, **scale.finetune)))
    if scale.paper_tables:
        steps += _paper_tables(scale)
    return steps


def _table9(scale: Scale) -> list[Step]:
    """Table 9 (Appendix D.5): BERT pre-trained by masked-language modelling on the clean data and on 5 %
    random noise, and again on the clean data with another seed for the noise floor; their MLM losses."""
    from noisecli.what.eval_ntp import STAGE as EVAL_NTP
    from noisecli.what.eval_ntp import EvalNtpConfig
    from noisecli.what.pretrain import STAGE as PRETRAIN
    from noisecli.what.pretrain import PretrainConfig
    data, runs = scale.root / "data", scale.root / "runs"
    steps = [Step(f"pretrain {name}", PRETRAIN, PretrainConfig(data=data / dataset, out=runs / name, seed=seed,
                                                                 **{**scale.pretrain, **scale.bert}))
             for name, (dataset, seed) in BERT_RUNS.items()]
    eval_args = {k: v for k, v in scale.eval.items() if k != "plot"}
    steps.append(Step("eval-ntp BERT (Table 9)", EVAL_NTP, EvalNtpConfig(
        checkpoints=[runs / "bert-random-0.05", runs / "bert-clean-seed2"], baseline=runs / "bert-clean",
        data=[data / "clean", data / "random-0.05" / "noise.bin"], out=scale.root / "eval-bert",
        **eval_args)))
    return steps


def _paper_tables(scale: Scale) -> list[Step]:
    """Tables 2, 3 (frozen hub LLMs and timm vision backbones, probed) and 8 (GPT-2 774M)."""
    from noisecli.how.backbones.timm import TABLE13
    from noisecli.how.extract import STAGE as EXTRACT
    from noisecli.how.extract import ExtractConfig
    from noisecli.how.probe.command import STAGE as PROBE
    from noisecli.how.probe.command import ProbeConfig
    from noisecli.how.tasks.hub import HUB_VISION
    from noisecli.what.eval_ntp import STAGE as EVAL_NTP
    from noisecli.what.eval_ntp import EvalNtpConfig
    from noisecli.what.pretrain import STAGE as PRETRAIN
    from noisecli.what.pretrain import PretrainConfig
    root, steps = scale.root, []

    def features(table: str, backbone: str, task: str) -> Path:
        return root / table / f"{backbone.split('/')[-1].split(':')[-1]}__{task}"
    for table, backbones, tasks in (("table2", [f"hf:{m}" for m in TABLE2_LLMS], TABLE2_TASKS),
                                    ("table3", [f"timm:{m}" for m in TABLE13.values()], list(HUB_VISION))):
        for backbone in backbones:
            for task in tasks:
                steps.append(Step(f"extract {backbone} {task}", EXTRACT, ExtractConfig(
                    backbone=backbone, task=task, out=features(table, backbone, task))))
    table2 = [features("table2", f"hf:{m}", t) for m in TABLE2_LLMS for t in TABLE2_TASKS]
    for head, lr in TABLE2_LR.items():   # E.1.3: batch 8, lr by head, (γ, λ) chosen on validation
        steps.append(Step(f"probe table2 {head}", PROBE, ProbeConfig(
            features=table2, out=root / "table2" / f"probe-{head}", head=[head], lgm=True, lr=[lr], batch_size=[8],
            gamma=TABLE2_GAMMA, lam=TABLE2_LAM, select_gamma_lam=True)))
    steps.append(Step("probe table3", PROBE, ProbeConfig(
        features=[features("table3", f"timm:{m}", t) for m in TABLE13.values() for t in HUB_VISION],
        out=root / "table3" / "probe", head=["linear", "mlp"], lgm=True)))
    steps.append(Step("probe table6 (DTD, ConvNeXt-L)", PROBE, ProbeConfig(
        features=[features("table3", f"timm:{TABLE13[TABLE6_BACKBONE]}", TABLE6_TASK)], out=root / "table6" / "probe",
        head=["linear", "mlp"], reg=["lgm"], gamma=TABLE6_GAMMA, lam=TABLE6_LAM)))
    # Table 8 (Appendix D.5): GPT-2 774M on clean and 5 % random noise, losses at 10k / 50k / 100k iterations
    big = {**scale.pretrain, "preset": "gpt2-774m", "max_iters": 100_000, "milestones": [10_000, 50_000, 100_000]}
    for name in ("clean", "random-0.05"):
        steps.append(Step(f"pretrain 774m {name}", PRETRAIN, PretrainConfig(
            data=root / "data" / name, out=root / "runs-774m" / name, seed=1337, **big)))
    steps.append(Step("eval-ntp 774m", EVAL_NTP, EvalNtpConfig(
        checkpoints=[root / "runs-774m" / "random-0.05"], baseline=root / "runs-774m" / "clean",
        data=[root / "data" / "clean"], out=root / "eval-774m", **scale.eval)))
    return steps


def paper_scale(root: Path = Path("results/paper"), gpus: int = 8) -> Scale:
    """OpenWebText from the hub, gpt2-124m with the paper's recipe on 8 GPUs, the paper's tasks."""
    from noisecli.what.prepare import STAGE as PREPARE
    from noisecli.what.prepare import PrepareConfig
    other = [Step(f"prepare other corpus {name}", PREPARE,
                  PrepareConfig(**source, val_fraction=0.001, out=root / "data" / "other" / name))
             for name, source in PAPER_OTHER_CORPORA.items()]
    return Scale(
        root=root,
        sources={"en": dict(hf="Skylion007/openwebtext", val_fraction=0.0005),
                 "fr": dict(hf="wikimedia/wikipedia", hf_config="20231101.fr")},
        datasets=list(DATASETS),
        pretrain=dict(preset="gpt2-124m", gpus=gpus, compile=True, milestones=[10_000, 50_000, 100_000, 200_000]),
        eval=dict(max_tokens=10_000_000, plot=True, own_noise_only=True), tasks=PAPER_TASKS, extract={},
        probe=dict(head=["linear", "mlp"]), theory={}, other_corpora=other,
        bert=dict(arch="bert", preset="bert-base", max_iters=BERT_MILESTONES[-1], milestones=BERT_MILESTONES),
        finetune=dict(model="hf:bert-large-uncased", task=["glue-rte", "glue-mrpc", "glue-cola", "glue-stsb"],
                      seeds=5, gpus=gpus),
        other_files=[s.config.out for s in other], ablation_task="sst2", paper_tables=True)


def command_line(step: Step) -> str:
    """`noisecli COMMAND ...` with every option of the step's config that differs from its default."""
    if step.command is None:
        raise ValueError(f"step '{step.name}' is no command")
    words = ["noisecli", *step.command.split()]
    for f in fields(step.config):
        value = getattr(step.config, f.name)
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if value == default or value is None:
            continue
        if f.metadata.get("positional"):
            words += [str(v) for v in (value if isinstance(value, list) else [value])]
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag)          # every switch is off by default
        elif isinstance(value, list):
            items = [str(v) for v in value]
            if any("," in v for v in items):      # a path with a comma: repeat the flag instead
                words += [w for v in items for w in (flag, v)]
            else:
                words += [flag, ",".join(items)]
        else:
            words += [flag, str(value)]
    return " ".join(shlex.quote(w) for w in words)


def paper_commands(root: Path = Path("results/paper"), gpus: int = 8) -> list[str]:
    """The full-scale plan as the commands a user would type, its outputs under `root`."""
    return [command_line(s) for s in experiment(paper_scale(root, gpus))]
