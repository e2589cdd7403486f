"""The one cattrs converter: request models to JSON-ready dicts, replies to response models.

Replies are read leniently (unknown keys ignored, absent keys defaulted) but not loosely:
a value of the wrong kind (a string where a list of IPs belongs, "yes" for a boolean) is an
error, reported by the client as `DecodeError` with the raw text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import models

__all__ = ["converter", "structurer", "unstructure"]

T = TypeVar("T")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)

    def strict_str(value: object, _: type) -> str:
        if type(value) is str:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # ids documented as strings sometimes arrive as numbers
        raise TypeError(f"expected a string, got {value!r}")

    def strict_bool(value: object, _: type) -> bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"expected true or false, got {value!r}")

    def strict_int(value: object, _: type) -> int:
        if type(value) is int:
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise TypeError(f"expected an integer, got {value!r}")

    def strings(value: object, _: type) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of strings, got {value!r}")
        for item in value:
            if type(item) is not str:
                return tuple(strict_str(item, str) for item in value)
        return tuple(value)

    def is_object_tuple(t: Any) -> bool:
        args: tuple[Any, ...] = getattr(t, "__args__", ())
        return (
            getattr(t, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis
            and attrs.has(args[0])
        )

    def objects(value: object, t: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of objects, got {value!r}")
        item_type = t.__args__[0]
        hook: Callable[[Any, Any], Any] = conv.get_structure_hook(item_type)
        return tuple(hook(item, item_type) for item in value)

    def object_hook_factory(cls: type) -> Callable[[Any, type], Any]:
        hook: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv)

        def structure(value: Any, _: type) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a JSON object for {cls.__name__}, got {value!r}")
            return hook(value, cls)

        return structure

    conv.register_structure_hook_func(is_object_tuple, objects)
    conv.register_structure_hook_factory(attrs.has, object_hook_factory)
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
    """The prepared structuring function for a response model (looked up once)."""
    if not attrs.has(cls):
        raise TypeError(f"{cls!r} is not an attrs class")
    hook: Callable[[Any, Any], T] = make_dict_structure_fn(cls, converter)  # type: ignore[arg-type]

    def structure(data: Any) -> T:
        if type(data) is not dict:
            raise TypeError(f"expected a JSON object for {cls.__name__}, got {data!r}")
        return hook(data, cls)

    return structure
