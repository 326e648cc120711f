"""Registries of pluggable kinds, after timm's `register_model`: one package per kind (noise
distributions, backbones, heads, regularisers), one file per entry, each file registering its class.

    NOISES = Registry("noise distribution", __name__)                      # in what/noise/__init__.py

    @NOISES.register("uniform", "every id in [0, 50256) equally likely")   # the file: what/noise/uniform.py
    class Uniform(Noise):
        ...

The names come from the package's file list without importing anything, so `--help` shows the choices
without loading torch; `get(name)` imports the one file it needs. Classes registered from a user's own
code (outside the package) are listed too. `base.py` holds the kind's base class and is no entry.
`noisecli/catalog.py` gathers every registry (the README's tables are made from it).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Callable

from noisecli.core.errors import InputError

NOT_ENTRIES = ("base",)


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._classes: dict[str, type] = {}

    def register(self, name: str, summary: str) -> Callable[[type], type]:
        """Class decorator: the class becomes the choice `name`; `summary` is its line in --help and the
        README's table."""
        def add(cls: type) -> type:
            cls.name, cls.summary = name, summary
            self._classes[name] = cls
            return cls
        return add

    def names(self) -> list[str]:
        """Every registered name, without importing any entry."""
        spec = importlib.util.find_spec(self.package)
        files = {m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)
                 if not m.name.startswith("_") and m.name not in NOT_ENTRIES}
        return sorted(files | set(self._classes))

    def get(self, name: str) -> type:
        """The class registered as `name` (imports its file); an unknown name is the user's error."""
        if name not in self._classes:
            if name not in self.names():
                raise InputError(f"unknown {self.kind} '{name}' (choose from {', '.join(self.names())})")
            importlib.import_module(f"{self.package}.{name}")
        if name not in self._classes:
            raise RuntimeError(f"{self.package}.{name} does not register a {self.kind} named '{name}'")
        return self._classes[name]

    def all(self) -> dict[str, type]:
        return {name: self.get(name) for name in self.names()}

    def choices(self) -> str:
        return "|".join(self.names())

    def markdown(self) -> str:
        """The README table of this kind: name and the class's one-line summary."""
        rows = [f"| `{name}` | {cls.summary} |" for name, cls in self.all().items()]
        return "\n".join([f"| {self.kind} | what it is |", "|---|---|", *rows])
