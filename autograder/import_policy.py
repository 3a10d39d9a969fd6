"""The from-scratch import policy of a NumPy worker: banned packages (torch, jax, ...) cannot be used by the student's
code. A banned import at the top of a module gives a stand-in module that raises on any use; a banned import at any
other time raises ImportError with the policy message. Detection, not prevention: the worker reports what was
used (see autograder.worker, op "modules")."""
from __future__ import annotations

import importlib.machinery
import sys
import types

# Dotted names of banned-library objects the student's code tried to use (see Standin and BanImports).
USED_BANNED: set[str] = set()


def policy_message(name: str) -> str:
    return (f"'{name}' cannot be used here: this topic's NumPy functions are written from scratch, so "
            f"{name.split('.')[0]} is not available to them")


class FromScratchError(RuntimeError, AttributeError):
    """Any use of a banned library in a NumPy worker. Also an AttributeError, so that `hasattr` and
    `from torch import nn` see a missing name and the import system imports it as a submodule stand-in."""


class Standin(types.ModuleType):
    """What `import torch` (or torch.nn, jax, ...) gives a NumPy module while it is imported: the module
    imports, its other functions are graded on their merits, and any use of the stand-in raises."""

    def __getattr__(self, attr):
        name = f"{self.__name__}.{attr}"
        if attr.startswith("__") and attr.endswith("__"):  # probes of module dunders (__file__) are no use
            raise AttributeError(policy_message(name))
        USED_BANNED.add(name)
        raise FromScratchError(policy_message(name))

    def __call__(self, *args, **kwargs):
        USED_BANNED.add(self.__name__)
        raise FromScratchError(policy_message(self.__name__))

    def __repr__(self) -> str:
        return f"<stand-in for {self.__name__}, which this topic's NumPy functions may not use>"


class BanImports:
    """meta_path finder for banned top-level packages (torch, jax, ...) in a NumPy worker.

    While a module is being imported (`standins` True) it hands out Standin modules; an import at any other
    time (inside a function, during a call) raises ImportError with the policy message. Stand-ins leave
    sys.modules after each import, so only the student modules that imported one hold it.
    """

    def __init__(self, banned: set[str]):
        self.banned = banned
        self.standins = False

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in self.banned:
            return None
        if not self.standins:
            USED_BANNED.add(name)
            raise ImportError(policy_message(name), name=name)
        USED_BANNED.discard(name)  # `from torch import nn` probed torch.nn with hasattr first: not a use
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return Standin(spec.name)

    def exec_module(self, module) -> None:
        pass

    @staticmethod
    def forget_standins() -> None:
        for name in [n for n, m in list(sys.modules.items()) if isinstance(m, Standin)]:
            del sys.modules[name]
