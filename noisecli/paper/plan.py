"""`noisecli reproduce --budget paper`: the full-scale plan as the commands a user would type (OpenWebText
from the hub, gpt2-124m with the paper's recipe on 8 GPUs, Figures 2-4, Tables 2, 3, 6 and 8).
The same datasets as the small budgets (`reproduce.DATASETS`)."""

from __future__ import annotations

from noisecli.paper.reproduce import DATASETS


def paper_commands(device_count: int = 8) -> list[str]:
    """The full-scale plan: OpenWebText from the hub, gpt2-124m, the paper's recipe, 8 GPUs."""
    cmds = []
    for name, (alpha, dist, french) in DATASETS.items():
        if french:
            cmds.append("noisecli prepare --hf wikimedia/wikipedia --hf-config 20231101.fr --out data/owt/fr")
        noise = (f" --alpha {alpha} --dist {dist}" if alpha and not french else
                 f" --alpha {alpha} --noise-from data/owt/fr" if french else "")
        cmds.append(f"noisecli prepare --hf Skylion007/openwebtext --val-fraction 0.0005{noise} --out data/owt/{name}")
    for name in DATASETS:
        cmds.append(f"noisecli pretrain --data data/owt/{name} --out runs/owt/{name} --preset gpt2-124m "
                    f"--gpus {device_count} --compile --milestones 10000,50000,100000,200000")
    # Figure 4's other corpora (§3.4: text crawled from arXiv and Wikipedia), scored through their val.bin
    for name, source in PAPER_OTHER_CORPORA.items():
        cmds.append(f"noisecli prepare {source} --val-fraction 0.001 --out data/owt/other/{name}")
    noisy = [n for n in DATASETS if n != "clean"]
    cmds.append("noisecli eval-ntp " + " ".join(f"runs/owt/{n}" for n in noisy) + " --baseline runs/owt/clean "
                "--data data/owt/clean " + " ".join(f"--data data/owt/{n}/noise.bin" for n in noisy) +
                " " + " ".join(f"--data data/owt/other/{n}" for n in PAPER_OTHER_CORPORA) +
                " --max-tokens 10000000 --plot --out results/owt/eval")
    for n in noisy:
        cmds.append(f"noisecli theory k --clean runs/owt/clean --noisy runs/owt/{n} --out results/owt/theory/{n}")
    for n in DATASETS:
        for task in ("sst2", "sst-fine", "20newsgroup", "cr", "bbc", "balanced-copa", "mrpc", "wic"):
            cmds.append(f"noisecli extract --backbone gpt:runs/owt/{n} --task {task} --out results/owt/features/{n}__{task}")
    cmds.append("noisecli probe results/owt/features/* --head linear,mlp --lgm --gamma 0.01 --lam 0.15 "
                "--out results/owt/probe")
    cmds.append("noisecli probe results/table3/convnext_large_mlp.clip_laion2b_augreg_ft_in1k__dtd --head linear,mlp "
                "--reg lgm --gamma 0.001,0.05,0.1 --lam 0.001,0.05,0.1 --out results/table6")
    # Table 8 (Appendix D.5): GPT-2 774M on clean and 5 % random noise, losses at 10k / 50k / 100k iterations
    for name in ("clean", "random-0.05"):
        cmds.append(f"noisecli pretrain --data data/owt/{name} --out runs/owt-774m/{name} --preset gpt2-774m "
                    f"--gpus {device_count} --compile --max-iters 100000 --milestones 10000,50000,100000")
    cmds.append("noisecli eval-ntp runs/owt-774m/random-0.05 --baseline runs/owt-774m/clean --data data/owt/clean "
                "--max-tokens 10000000 --out results/owt-774m/eval")
    # Table 2: LLMs from the hub as frozen feature extractors on BBC, Balanced COPA, MRPC and WiC
    for llm in TABLE2_LLMS:
        for task in ("bbc", "balanced-copa", "mrpc", "wic"):
            cmds.append(f"noisecli extract --backbone hf:{llm} --task {task} --out results/table2/{llm.split('/')[1]}__{task}")
    cmds.append("noisecli probe results/table2/* --head linear,mlp --lgm --lr 6e-4 --batch-size 8 --out results/table2/probe")
    # Table 3: Table 13's five timm backbones on Table 12's 14 vision datasets
    from noisecli.how.backbones.timm import TABLE13
    from noisecli.how.tasks import HUB_VISION
    for model in TABLE13.values():
        for task in HUB_VISION:
            cmds.append(f"noisecli extract --backbone timm:{model} --task {task} --out results/table3/{model}__{task}")
    cmds.append("noisecli probe results/table3/* --head linear,mlp --lgm --out results/table3/probe")
    return cmds


PAPER_OTHER_CORPORA = {   # hub stand-ins for the paper's crawled arXiv and Wikipedia text (ids not checked offline)
    "arxiv": "--hf ccdv/arxiv-summarization --text-field article",
    "wikipedia": "--hf wikimedia/wikipedia --hf-config 20231101.en",
}
TABLE2_LLMS = ("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Llama-3.2-3B-Instruct",
               "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
