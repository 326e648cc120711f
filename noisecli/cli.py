"""The command line: one subcommand per stage, each a thin wrapper around the stage's Python function.

Options come from the stage's config dataclass (field help -> `--help`), so the CLI and the Python API
never drift apart. Every stage command also takes `--config FILE.toml` whose keys supply defaults
(flags on the command line win). Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
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

from noisecli.core.errors import InputError, Interrupted, RunError
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
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            print(f"noisecli: the disk is full (writing {e.filename or 'the output'}): nothing half-written is left; "
                  "free space, or give an --out on another disk", file=sys.stderr)
            sys.exit(1)
        except MemoryError:
            print("noisecli: out of memory: nothing half-written is left; lower --batch-size (or --workers, "
                  "--max-tokens, --limit), or run on a machine with more memory", file=sys.stderr)
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
         "What: prepare -> pretrain -> eval-ntp, export.  Why: theory.  How: extract -> probe, finetune.  "
         "Your corpus: scan.  The paper: reproduce.")


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
    except OSError as e:     # a folder, a file without read permission
        raise InputError(f"--config {value} cannot be read ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"--config {value} is not valid TOML ({e})") from None
    chain, c = [], ctx            # the contexts from the root's down to this command's
    while c is not None:
        chain.insert(0, c)
        c = c.parent
    path = [c.info_name for c in chain[1:]]   # the table named after the command: [prepare], [theory.prop1]
    section, reached = data, 0
    for depth, group in enumerate(chain[:-1]):   # a table is named after a command at its level, or is an error
        names = getattr(group.command, "commands", {})
        for key, val in section.items():
            if isinstance(val, dict) and key not in names:
                where = ".".join(path[:depth] + [key])
                raise InputError(f"--config {value}: unknown table [{where}] (tables at this level: "
                                 f"{', '.join(sorted(names))})")
        if not isinstance(section.get(path[depth]), dict):
            break
        section, reached = section[path[depth]], depth + 1
    if 0 < reached < len(path) and any(not isinstance(v, dict) for v in section.values()):
        from noisecli.core.errors import warn
        warn(f"--config {value}: the keys of [{'.'.join(path[:reached])}] apply to every command of that group; "
             f"put them under [{'.'.join(path)}] to give them to this one alone")
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


def _is_path(hint: Any) -> bool:
    return hint is Path or Path in get_args(hint)


def _path_parser(flag: str) -> Callable[[Any], Any]:
    """A path option: an empty value is refused (Path("") would silently mean the current folder)."""
    def parse(value: Any) -> Any:
        if value is None:
            return None
        if not str(value).strip():
            raise typer.BadParameter("must not be empty", param_hint=flag)
        return Path(value)
    return parse


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
        elif _is_path(hint) and not meta.get("positional"):
            hint, default = Optional[str], (None if default is None else str(default))
            extra = {"callback": _path_parser(flag), "metavar": "PATH"}
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


theory_app = typer.Typer(help="The paper's \"Why\": Proposition 1, the f(ε) curve, k from checkpoints, "
                               "Lemma 1 on real data, and the predicted loss rise.", no_args_is_help=True)
app.add_typer(theory_app, name="theory")


def stages() -> list:
    """Every command's record (core/stage.py), in the order `noisecli --help` lists them."""
    from noisecli.how.extract import STAGE as EXTRACT
    from noisecli.how.finetune.command import STAGE as FINETUNE
    from noisecli.how.probe.command import STAGE as PROBE
    from noisecli.paper.reproduce import STAGE as REPRODUCE
    from noisecli.scan.scan import STAGE as SCAN
    from noisecli.what.eval_ntp import STAGE as EVAL_NTP
    from noisecli.what.export import STAGE as EXPORT
    from noisecli.what.prepare import STAGE as PREPARE
    from noisecli.what.pretrain import STAGE as PRETRAIN
    from noisecli.why.theory import STAGES as THEORY
    return [PREPARE, PRETRAIN, EXPORT, EVAL_NTP, EXTRACT, PROBE, FINETUNE, SCAN, REPRODUCE, *THEORY]


def _runs(stage) -> Callable[[Any], None]:
    def run(cfg) -> None:
        result = stage.run(cfg)
        if stage.show is not None:
            stage.show(cfg, result)
    return run


for _stage in stages():
    _group, _, _name = _stage.name.rpartition(" ")
    stage_command(_name, _stage.config, _runs(_stage), _stage.help, parent=theory_app if _group else app)


def main() -> None:
    typer.main.get_command(app).main(prog_name="noisecli")
