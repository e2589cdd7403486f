"""The one cattrs converter: request models to JSON-ready dicts, replies to response models.

Replies are read leniently (unknown keys ignored, absent keys defaulted) but not loosely:
a value of the wrong kind (a string where a list of IPs belongs, "yes" for a boolean) is an
error, reported by the client as `DecodeError` with the raw text.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import models

__all__ = ["converter", "structurer", "unstructure"]

T = TypeVar("T")


def shown(value: object) -> str:
    """A reply's value for an error message: enough of it to recognise, never all of it."""
    # A reply can hold anything, a ten-megabyte string or an array nested a thousand deep:
    # reprlib cuts both short, where repr() would copy the one and overflow the stack on the
    # other (RecursionError, which the client would not report as a DecodeError).
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80


def strict_str(value: object, _: object = str) -> str:
    """A JSON string; a number is accepted as its text (ids documented as strings
    sometimes arrive as numbers). Raises TypeError for anything else."""
    if type(value) is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {shown(value)}")


def strict_bool(value: object, _: object = bool) -> bool:
    """True or false, nothing else (no "yes", no 1). Raises TypeError."""
    if value is True or value is False:
        return value
    raise TypeError(f"expected true or false, got {shown(value)}")


def strict_int(value: object, _: object = int) -> int:
    """A JSON integer, or a string of digits. Raises TypeError (ValueError for digits
    `int` cannot read, such as superscripts)."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(f"expected an integer, got {shown(value)}")


def strings(value: object, _: object = None) -> tuple[str, ...]:
    """A JSON array of strings (numbers read as their text) as a tuple."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of strings, got {shown(value)}")
    for item in value:
        if type(item) is not str:
            return tuple(strict_str(item) for item in value)
    return tuple(value)


def _optional_of(t: Any) -> Any:
    """X for ``X | None`` (either order), else None."""
    if get_origin(t) not in (Union, UnionType):
        return None
    args = get_args(t)
    if len(args) != 2 or NoneType not in args:
        return None
    return args[0] if args[1] is NoneType else args[1]


def _object_tuple_item(t: Any) -> Any:
    """The model of ``tuple[Model, ...]``, else None."""
    args: tuple[Any, ...] = get_args(t)
    if get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(args[0]):
        return args[0]
    return None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)

    # Each factory below resolves the hooks it calls when it is built, once per type: cattrs'
    # generic Optional and sequence handling looks them up again for every value it reads.
    def optional_hook(t: Any) -> Callable[[Any, Any], Any]:
        inner_type = _optional_of(t)
        inner: Callable[[Any, Any], Any] = conv.get_structure_hook(inner_type)

        def optional(value: Any, _: Any) -> Any:
            return None if value is None else inner(value, inner_type)

        return optional

    def objects_hook(t: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_type = _object_tuple_item(t)
        hook: Callable[[Any, Any], Any] = conv.get_structure_hook(item_type)

        def objects(value: Any, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected a list of objects, got {shown(value)}")
            return tuple([hook(item, item_type) for item in value])

        return objects

    def object_hook(cls: type) -> Callable[[Any, type], Any]:
        hook: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, conv, _cattrs_detailed_validation=False
        )

        def structure(value: Any, _: type) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a JSON object for {cls.__name__}, got {shown(value)}")
            return hook(value, cls)

        return structure

    conv.register_structure_hook_factory(lambda t: _optional_of(t) is not None, optional_hook)
    conv.register_structure_hook_factory(lambda t: _object_tuple_item(t) is not None, objects_hook)
    conv.register_structure_hook_factory(attrs.has, object_hook)
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, strict_bool)
    conv.register_structure_hook(int, strict_int)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], strings)

    for cls in (
        models.AddAccountIpsBody,
        models.RemoveAccountIpsBody,
        models.AddIpBody,
        models.UpdateIpBody,
        models.SubusersBody,
        models.CreatePoolBody,
        models.RenamePoolBody,
        models.PoolIpsBody,
        models.ListIpQuery,
        models.ListPoolsQuery,
    ):
        conv.register_unstructure_hook(
            cls, make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True)
        )
    conv.register_unstructure_hook(
        models.PageQuery,
        make_dict_unstructure_fn(
            models.PageQuery, conv, _cattrs_omit_if_default=True, max_limit=override(omit=True)
        ),
    )
    return conv


converter = _make_converter()


def unstructure(request: Any) -> dict[str, Any]:
    """A request model as a dict of the fields that were given."""
    data: dict[str, Any] = converter.unstructure(request)
    return data


def structurer(cls: type[T]) -> Callable[[Any], T]:
    """The prepared reading function of a response model: one JSON object to the model.

    Raises only TypeError, ValueError or KeyError on a value it cannot read (the client
    reports them as `DecodeError`).
    """
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    hook: Callable[[Any, Any], T] = make_dict_structure_fn(
        cls, converter, _cattrs_detailed_validation=False  # type: ignore[arg-type]
    )
    name = cls.__name__

    def structure(data: Any) -> T:
        if type(data) is not dict:
            raise TypeError(f"expected a JSON object for {name}, got {shown(data)}")
        return hook(data, cls)

    return structure
