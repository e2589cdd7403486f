"""The public surface: `sendgrid_ipam.__all__` is sorted, complete, importable and documented."""

from __future__ import annotations

import inspect
import re
import types
import typing

import pytest

import sendgrid_ipam
from sendgrid_ipam import bulk, client, errors
from sendgrid_ipam.operations import OPERATIONS
from sendgrid_ipam.resources import IpsResource, PoolsResource, ProvisioningResource

PUBLIC = [name for name in sendgrid_ipam.__all__ if name != "__version__"]
RESOURCES = [IpsResource, PoolsResource, ProvisioningResource]


def test_all_is_sorted_and_unique() -> None:
    assert sendgrid_ipam.__all__ == sorted(set(sendgrid_ipam.__all__))


@pytest.mark.parametrize("name", sendgrid_ipam.__all__)
def test_every_name_in_all_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from sendgrid_ipam import {name}", namespace)
    assert namespace[name] is getattr(sendgrid_ipam, name)


def test_all_lists_every_public_name_of_the_package() -> None:
    """Nothing public is importable from the package without being in __all__."""
    exposed = {
        name for name, value in vars(sendgrid_ipam).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exposed == set(PUBLIC)


def test_version_is_a_version_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", sendgrid_ipam.__version__)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_documented(name: str) -> None:
    value = getattr(sendgrid_ipam, name)
    if typing.get_origin(value) is not None:  # a type alias: no docstring of its own
        home = next(m for m in vars(sendgrid_ipam).values()
                    if inspect.ismodule(m) and vars(m).get(name) is value)
        assert f"``{name}``" in (home.__doc__ or ""), f"{name} is not described in {home}"
        return
    # its own docstring: inspect.getdoc would fall back on a base class's
    doc = vars(value).get("__doc__") if inspect.isclass(value) else value.__doc__
    assert doc, f"{name} has no docstring of its own"


def test_package_has_a_docstring() -> None:
    assert inspect.getdoc(sendgrid_ipam)


def _public_methods(cls: type) -> list[tuple[str, object]]:
    return [
        (name, member) for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    ]


@pytest.mark.parametrize("cls", [sendgrid_ipam.SendGridIPAM, *RESOURCES],
                         ids=lambda c: c.__name__)
def test_every_public_method_is_documented(cls: type) -> None:
    undocumented = [name for name, member in _public_methods(cls) if not member.__doc__]
    assert undocumented == []


def test_every_operation_is_implemented_by_exactly_one_documented_method() -> None:
    implemented: dict[str, list[str]] = {}
    for cls in RESOURCES:
        for name, member in _public_methods(cls):
            for operation_id in re.findall(r"Implements operationId (\w+)",
                                           inspect.getdoc(member) or ""):
                implemented.setdefault(operation_id, []).append(f"{cls.__name__}.{name}")
    assert set(implemented) == set(OPERATIONS)
    assert {op: len(methods) for op, methods in implemented.items()} == dict.fromkeys(
        OPERATIONS, 1)


def test_every_exception_is_public() -> None:
    for name in errors.__all__:
        assert name in sendgrid_ipam.__all__, name
    for name in PUBLIC:
        value = getattr(sendgrid_ipam, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, sendgrid_ipam.SendGridError), name


def _classes_in(annotation: object) -> set[type]:
    found: set[type] = set()
    if inspect.isclass(annotation):
        found.add(annotation)
    for arg in typing.get_args(annotation):
        found |= _classes_in(arg)
    return found


def _return_type(function: object) -> object:
    """The evaluated return annotation (names only imported for type checking included)."""
    annotation = inspect.signature(function).return_annotation  # type: ignore[arg-type]
    if not isinstance(annotation, str):
        return annotation
    namespace = {**vars(bulk), **vars(client), **vars(inspect.getmodule(function))}
    return eval(annotation, namespace)


@pytest.mark.parametrize("cls", RESOURCES, ids=lambda c: c.__name__)
def test_every_model_a_method_returns_is_public(cls: type) -> None:
    """A user can import (and annotate with) whatever the client hands back."""
    missing = set()
    for name, member in _public_methods(cls):
        for returned in _classes_in(_return_type(member)):
            if returned.__module__.startswith("sendgrid_ipam"):
                public = getattr(sendgrid_ipam, returned.__name__, None)
                if public is not returned:
                    missing.add(f"{name} -> {returned.__name__}")
    assert missing == set()


def test_private_modules_stay_private() -> None:
    for name in sendgrid_ipam.__all__:
        assert not name.startswith("_") or name == "__version__"
