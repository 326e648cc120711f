"""The command line: one subcommand per stage, each a thin wrapper around the stage's Python function.

Options come from the stage's config dataclass (field help -> `--help`), so the CLI and the Python API
never drift apart. Every stage command also takes `--config FILE.toml` whose keys supply defaults
(flags on the command line win). Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, get_args, get_origin, get_type_hints

import typer
from typer.core import TyperGroup

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

from noisecli.core.errors import InputError, Interrupted, RunError, raise_if_interrupted
from noisecli.core.options import check_numbers, choices_of


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


class _Group(TyperGroup):
    """Turns every usage error or InputError into one line on stderr and exit code 2."""

    def main(self, args=None, prog_name="noisecli", complete_var=None, standalone_mode=True, **extra):
        signal.signal(signal.SIGTERM, _raise_interrupted)   # SIGINT raises KeyboardInterrupt already
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (ClickException, InputError) as e:
            message = e.format_message() if isinstance(e, ClickException) else str(e)
            print(f"noisecli: error: {' '.join(message.split())}", file=sys.stderr)
            sys.exit(2)
        except RunError as e:
            print(f"noisecli: {e}", file=sys.stderr)
            sys.exit(1)
        except (typer.Abort, KeyboardInterrupt, Interrupted) as e:
            signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
            print(f"noisecli: interrupted by {signal.Signals(signum).name}; nothing half-written is left (rerun, "
                  "with --resume for training, to continue)", file=sys.stderr)
            sys.exit(128 + signum)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Group, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Does random noise in pre-training data hurt a language model, and how to tame it downstream? "
         "What: prepare -> pretrain -> eval-ntp.  Why: theory.  How: extract -> probe.")


def _print_version(value: bool) -> None:
    """Eager: runs while the options are parsed, before a missing command is an error."""
    if value:
        import noisecli
        print(f"noisecli {noisecli.__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                                metavar="", callback=_print_version)] = False) -> None:
    pass


def _load_config(ctx: typer.Context, param: Any, value: Optional[Path]) -> Optional[Path]:
    """Read a TOML file into the command's defaults. Keys are option names (dashes or underscores);
    a table named after the command ([prepare], or [theory.prop1] for a subcommand) is used if present,
    else the top-level keys."""
    if value is None:
        return None
    try:
        data = tomllib.loads(Path(value).read_text())
    except FileNotFoundError:
        raise InputError(f"--config {value} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--config {value} is not valid TOML ({e})") from None
    chain, c = [], ctx            # the contexts from the root's down to this command's
    while c is not None:
        chain.insert(0, c)
        c = c.parent
    path = [c.info_name for c in chain[1:]]   # the table named after the command: [prepare], [theory.prop1]
    section = data
    for depth, group in enumerate(chain[:-1]):   # a table is named after a command at its level, or is an error
        names = getattr(group.command, "commands", {})
        for key, val in section.items():
            if isinstance(val, dict) and key not in names:
                where = ".".join(path[:depth] + [key])
                raise InputError(f"--config {value}: unknown table [{where}] (tables at this level: "
                                 f"{', '.join(sorted(names))})")
        if not isinstance(section.get(path[depth]), dict):
            break
        section = section[path[depth]]
    known = {p.name for p in ctx.command.params} - {"config"}
    defaults = {}
    for key, val in section.items():
        if isinstance(val, dict):
            if section is not data and depth == len(path) - 1:   # inside this command's own table
                raise InputError(f"--config {value}: unknown table [{'.'.join(path + [key])}]")
            continue  # another command's table
        name = key.replace("-", "_")
        if name not in known:
            raise InputError(f"--config {value}: unknown option '{key}' for `{ctx.info_name}`")
        param = next(p for p in ctx.command.params if p.name == name)
        if getattr(param, "multiple", False):   # a list option: a TOML list or one (comma-separated) string
            val = [str(v) for v in val] if isinstance(val, list) else [str(val)]
        defaults[name] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def _list_item(hint: Any) -> type | None:
    """X for a `list[X]` (or `list[X] | None`) field, else None."""
    for h in (hint, *get_args(hint)):
        if get_origin(h) is list:
            return (get_args(h) or (str,))[0]
    return None


def _choice_checker(flag: str, allowed: list[str]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"'{value}' is not one of {', '.join(allowed)}", param_hint=flag)
        return value
    return check


def _list_parser(flag: str, item: type, allowed: list[str] | None) -> Callable[[Any], Any]:
    """Parse a list option once, here in the CLI: the flag repeated, comma-separated values, or both."""
    check = _choice_checker(flag, allowed) if allowed is not None else None

    def parse(value: Any) -> Any:
        out = []
        for part in (p.strip() for v in value or () for p in str(v).split(",")):
            if not part:
                continue
            try:
                out.append(item(part))
            except ValueError:
                raise typer.BadParameter(f"'{part}' is not a valid {item.__name__}", param_hint=flag) from None
            if check is not None:
                check(part)
        return out
    return parse


def config_toml(config: Any) -> str:
    """A config as TOML lines (`key = value`; None is left out, since TOML has no null)."""
    import json

    from noisecli.core.options import as_dict
    lines = []
    for key, value in as_dict(config).items():
        if value is not None:
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines)


def stage_command(name: str, config_cls: type, run: Callable[[Any], Any], help: str,
                  parent: typer.Typer = app) -> None:
    """Register `noisecli NAME` with one option per field of `config_cls`; it calls `run(config)`.
    A field with choices shows them in --help and checks them; a list field takes comma-separated values
    or the flag repeated, parsed here into the list that the config holds; a switch has its --no- form."""
    hints = get_type_hints(config_cls)
    params = []
    for f in fields(config_cls):
        meta, hint = f.metadata, hints[f.name]
        default = f.default_factory() if f.default_factory is not MISSING else (
            None if f.default is MISSING else f.default)
        flag = f"--{f.name.replace('_', '-')}"
        allowed, extra = choices_of(f), {}
        item = None if meta.get("positional") else _list_item(hint)   # positional lists take several arguments
        text = meta["help"]
        if item is not None:
            hint = list[str]
            extra = {"callback": _list_parser(flag, item, allowed), "metavar": f"{item.__name__.upper()},..."}
            default = [str(v) for v in default]
            if allowed is not None:
                text += f" Choices: {', '.join(allowed)}."
        elif allowed is not None:
            extra = {"callback": _choice_checker(flag, allowed), "metavar": "|".join(allowed)}
        if meta.get("positional"):
            info = typer.Argument(help=text, show_default=False)
        else:
            decl = f"{flag}/--no-{flag[2:]}" if hint is bool else flag   # switches come with their --no- form
            if hint is bool:
                extra = {**extra, "metavar": ""}                            # and take no value
            info = typer.Option(decl, *([meta["short"]] if meta.get("short") else []), help=text, **extra)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[hint, info]))
    config_option = typer.Option("--config", help="TOML file whose keys give this command's defaults "
                                 "(flags on the command line win).", is_eager=True, callback=_load_config,
                                 metavar="FILE.toml")
    params.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=Annotated[Optional[Path], config_option]))
    params.append(inspect.Parameter("print_config", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--print-config", metavar="", help="Print the resolved config (defaults, --config file "
                           "and flags) as TOML that --config reads, and exit.")]))

    def command(**kwargs: Any) -> None:
        kwargs.pop("config", None)
        show = kwargs.pop("print_config", False)
        config = config_cls(**kwargs)
        check_numbers(config)
        if show:
            print(config_toml(config))
            return
        from noisecli.core.lock import output_lock
        out = getattr(config, "out", None)
        # under torchrun rank 0 holds the folder's lock, and across nodes node 0 does
        torchrun_worker = os.environ.get("RANK", "0") != "0" or getattr(config, "node_rank", 0)
        with output_lock(None if torchrun_worker or (out is not None and Path(out).suffix) else out):
            run(config)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = help
    command.config_cls = config_cls   # type: ignore[attr-defined]  (the typed fields, for tests and tools)
    command.__name__ = name.replace("-", "_")
    parent.command(name, help=help)(command)


def _prepare(cfg) -> None:
    from noisecli.core.tables import print_prepare_summary
    from noisecli.what.prepare import prepare
    print_prepare_summary(prepare(cfg))


def _pretrain(cfg) -> None:
    from noisecli.what.pretrain import pretrain
    raise_if_interrupted(pretrain(cfg))


def _export(cfg) -> None:
    from noisecli.core.tables import console
    from noisecli.what.export import export
    r = export(cfg)
    console.print(f"exported {r['checkpoint']} as a transformers {r['class']} to {r['out']} "
                  f"(load it with from_pretrained(\"{r['out']}\"))")


def _eval_ntp(cfg) -> None:
    from noisecli.core.tables import print_ntp_table
    from noisecli.what.eval_ntp import eval_ntp
    print_ntp_table(eval_ntp(cfg))


def _extract(cfg) -> None:
    from noisecli.core.tables import console
    from noisecli.how.extract import extract
    m = extract(cfg)
    for split, info in m["splits"].items():
        console.print(f"{split}: {info['samples']:,} samples" + (" (already there, skipped)" if info["skipped"] else ""))
    console.print(f"{m['backbone']} on {m['task']}: d = {m['dim']}, {m['num_classes']} classes, "
                  f"{m['elapsed_s']:.1f} s; manifest {cfg.out}/extract.json")


def _probe(cfg) -> None:
    from noisecli.core.tables import print_probe_table
    from noisecli.how.probe import probe
    print_probe_table(probe(cfg))


def _finetune(cfg) -> None:
    from noisecli.how.finetune import finetune
    raise_if_interrupted(finetune(cfg))


def _scan(cfg) -> None:
    from noisecli.core.tables import console, markdown_table
    from noisecli.scan.scan import scan
    r = scan(cfg)
    rows = [[k, f"{100 * v['share_of_tokens']['value']:.3f} % [{100 * v['share_of_tokens']['lo']:.3f}, "
                f"{100 * v['share_of_tokens']['hi']:.3f}]", f"{v['tokens']:,}", f"{v['documents']:,}"]
            for k, v in r["shares"].items()]
    console.print(markdown_table(["kind", "share of tokens (95 % interval)", "tokens", "documents"], rows))
    console.print(f"{r['documents']:,} documents, {r['tokens']:,} tokens → {r['out']}/scan.json, documents.jsonl, "
                  "examples.md, scores.png" + (f"; clean copy in {cfg.write_clean}" if cfg.write_clean else ""))
    if "cost" in r:
        console.print(f"What it would cost {cfg.model} (Proposition 1): {r['cost']['conclusion']}")


def _reproduce(cfg) -> None:
    from noisecli.paper.reproduce import reproduce
    reproduce(cfg)


theory_app = typer.Typer(help="The paper's \"Why\": Proposition 1, the f(ε) curve, k from checkpoints, "
                               "Lemma 1 on real data, and the predicted loss rise.", no_args_is_help=True)
app.add_typer(theory_app, name="theory")


def _theory(run_name: str, title: str) -> Callable[[Any], None]:
    def run(cfg) -> None:
        import json

        from noisecli.core.manifest import write_json
        from noisecli.core.tables import print_result
        from noisecli.why import theory
        result = getattr(theory, run_name)(cfg)
        if cfg.json:
            print(json.dumps(result, indent=2))
        else:
            print_result(result, title)
        out = getattr(cfg, "out", None)
        if out is not None and run_name in ("run_prop1", "run_lemma1", "run_predict"):
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            write_json(out, result)
    return run


def _register() -> None:
    from noisecli.what.prepare import PrepareConfig
    from noisecli.what.pretrain import PretrainConfig
    stage_command("prepare", PrepareConfig, _prepare,
                  "Tokenize a corpus with GPT-2's BPE into train.bin/val.bin (uint16) and mix in random "
                  "noise at proportion α; writes noise.bin and meta.json too.")
    stage_command("pretrain", PretrainConfig, _pretrain,
                  "Pre-train GPT-2 on a prepared dataset with the paper's recipe (AdamW 6e-4, cosine to "
                  "6e-5, batch 16 x 40 x 1024) on a CPU, on N GPUs (DDP) or across nodes; exact resume.")
    from noisecli.what.export import ExportConfig
    stage_command("export", ExportConfig, _export,
                  "Write a checkpoint as a Hugging Face transformers model folder (GPT2LMHeadModel or "
                  "BertForMaskedLM, with GPT-2's tokenizer) for from_pretrained, lm-eval and the rest.")
    from noisecli.what.eval_ntp import EvalNtpConfig
    stage_command("eval-ntp", EvalNtpConfig, _eval_ntp,
                  "Exact next-token loss of checkpoints on token files (clean validation, the noise, other "
                  "corpora), with differences to a clean baseline run and the paper's Figures 2-4.")
    from noisecli.how.extract import ExtractConfig
    stage_command("extract", ExtractConfig, _extract,
                  "Frozen features of a task's train/val/test splits from a backbone (our GPT-2 checkpoints "
                  "with prompt templates, transformers models, timm vision models) to safetensors.")
    from noisecli.how.probe import ProbeConfig
    stage_command("probe", ProbeConfig, _probe,
                  "Fit linear or MLP heads on extracted features, optionally with Local Gradient Matching "
                  "(L = L_ce + λ‖E∇ℓ(g(t)) − E∇ℓ(g(t+γδ))‖), with grid search and mean ± std over seeds.")
    from noisecli.how.finetune import FinetuneConfig
    stage_command("finetune", FinetuneConfig, _finetune,
                  "Fine-tune every weight of a transformers encoder with L²-SP, SMART or LNSR, each alone and "
                  "with LGM (the paper's Table 4): GLUE RTE/MRPC/CoLA/STS-B, embedded or local tasks; seeds, "
                  "best epoch on validation, DDP, resume.")
    from noisecli.scan.scan import ScanConfig
    stage_command("scan", ScanConfig, _scan,
                  "How much random noise is in your corpus: spans of random tokens, random bytes, mojibake, "
                  "another language or script, found inside documents (no model needed); α̂ with 95 % intervals, "
                  "the spans, and a clean copy. `noisecli scan merge DIR...` adds up --shard runs.")
    from noisecli.paper.reproduce import ReproduceConfig
    stage_command("reproduce", ReproduceConfig, _reproduce,
                  "The whole paper on the embedded corpus in one command (prepare, pretrain, eval-ntp, theory, "
                  "extract, probe) and a report.md with figures, tables and findings; resumable.")
    from noisecli.why import theory
    for name, cls, fn, title, help in (
            ("prop1", theory.Prop1Config, "run_prop1", "Proposition 1",
             "η = αp_c − (1−α)k·p_n, the threshold kp_n/(p_c + kp_n), which conclusion applies, and the clean loss."),
            ("curve", theory.CurveConfig, "run_curve", "f(ε)",
             "f(ε) = (1−α)log((p_c−ε)/p_c) + α log((p_n+ε/k)/p_n) over (0, p_c) as CSV, with a plot."),
            ("k", theory.KConfig, "run_k", "k per iteration",
             "k per common iteration of a clean and a noisy run, from their losses (Appendix B.3)."),
            ("lemma1", theory.Lemma1Config, "run_lemma1", "Lemma 1",
             "Check L(Pᵐ) = αL(Pⁿ) + (1−α)L(Pᶜ) on a prepared dataset's training tokens."),
            ("predict", theory.PredictConfig, "run_predict", "predicted loss rise",
             "Proposition 1's bound on a noisy run's clean-loss rise, beside the measured rise.")):
        stage_command(name, cls, _theory(fn, title), help, parent=theory_app)


_register()


def main() -> None:
    typer.main.get_command(app).main(prog_name="noisecli")
