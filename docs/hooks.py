"""MkDocs hooks that make `mkdocs build --strict` fail on an undocumented public API.

Each check logs a warning, which strict mode turns into a failed build:

- every name in the ``__all__`` of each module of `PUBLIC_MODULES` has a docstring of its
  own, and so has every public method and property of the classes among them;
- every such name is rendered in the API reference: its ``module.name`` is in the site's
  ``objects.inv``, read back after the build.

A new public module is one more line in `PUBLIC_MODULES` (and a page in docs/reference/);
tests/test_docs.py checks the same inventory against the same list.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PUBLIC_MODULES = [
    "sendgrid_ipam",
    "sendgrid_ipam.resources",  # not imported from the package, but what sg.ips etc. are
    "sendgrid_ipam.testing",
    "sendgrid_ipam.redis",  # the optional extra: the docs build installs it
]
"""Modules whose every ``__all__`` name the reference must document."""

log = logging.getLogger("mkdocs.plugins.sendgrid_ipam_checks")


def public_names() -> Iterator[tuple[str, str, Any]]:
    """(module, name, object) for every public name of `PUBLIC_MODULES`."""
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not name.startswith("_"):  # __version__: a string, described on its page
                yield module_name, name, getattr(module, name)


def _own_doc(value: Any) -> str | None:
    # A class's own docstring: inspect.getdoc would fall back on a base class's.
    return vars(value).get("__doc__") if inspect.isclass(value) else value.__doc__


def _undocumented_members(cls: type) -> Iterator[str]:
    for member_name, member in vars(cls).items():
        if member_name.startswith("_"):
            continue
        function = member.fget if isinstance(member, property) else member
        if isinstance(function, (staticmethod, classmethod)):
            function = function.__func__
        if inspect.isfunction(function) and not function.__doc__:
            yield member_name


def undocumented() -> list[str]:
    """Every public name, method or property without a docstring of its own."""
    missing = []
    for module_name, name, value in public_names():
        if typing.get_origin(value) is not None:  # a type alias: its module describes it
            continue
        if not _own_doc(value):
            missing.append(f"{module_name}.{name}")
        if inspect.isclass(value):
            missing += [f"{module_name}.{name}.{m}" for m in _undocumented_members(value)]
    return missing


def missing_from_inventory(inventory_path: Path) -> list[str]:
    """The public names that the built reference does not document."""
    from mkdocstrings import Inventory

    with inventory_path.open("rb") as file:
        documented = set(Inventory.parse_sphinx(file))
    return [
        f"{module_name}.{name}"
        for module_name, name, _ in public_names()
        if f"{module_name}.{name}" not in documented
    ]


def on_pre_build(config: Any) -> None:
    for name in undocumented():
        log.warning("public API without a docstring: %s", name)


def on_post_build(config: Any) -> None:
    for name in missing_from_inventory(Path(config["site_dir"]) / "objects.inv"):
        log.warning("public name missing from the API reference (docs/reference/): %s", name)
