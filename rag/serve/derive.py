"""Pydantic response models derived from stdlib dataclasses, so the HTTP schema never restates their fields.

``derive(name, *dataclasses, ...)`` builds a model (``pydantic.create_model``) whose fields are the dataclasses'
fields (``dataclasses.fields``, types from ``typing.get_type_hints``), in their order, less what ``omit``
names, with ``rename``, ``retype`` and ``add`` stating every way the HTTP shape differs. Every field is
required unless ``required=False`` (then a field keeps its dataclass default): a response always carries
them all. A nested dataclass type (``list[Citation]``) becomes the model derived from that dataclass alone
(``list[CitationModel]``), which must be derived first; so each part of the schema has one model and one name.

``Model.of(*instances, **values)`` converts instances of those dataclasses (one per dataclass, in order),
nested ones included; ``values`` give the added fields, or replace a field's value (e.g. a display path).
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import sys
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, Field, create_model


@dataclasses.dataclass(frozen=True)
class Shape:
    """Where a derived model's fields come from: ``(source index, dataclass field, model field)`` each."""

    sources: tuple[type, ...]
    fields: tuple[tuple[int, str, str], ...]


class DerivedModel(BaseModel):
    """A response model derived from dataclasses (see ``derive``); ``of`` converts their instances."""

    derived_from: ClassVar[Shape]

    @classmethod
    def of(cls, *instances: object, **values: Any) -> Self:
        """The model of ``instances`` (one per source dataclass, in order); ``values`` set fields directly."""
        shape = cls.derived_from
        if len(instances) != len(shape.sources) or not all(
            isinstance(obj, source) for obj, source in zip(instances, shape.sources, strict=False)
        ):
            names = ", ".join(s.__name__ for s in shape.sources)
            raise TypeError(f"{cls.__name__}.of takes one instance each of {names}, got {instances!r}")
        unknown = values.keys() - cls.model_fields.keys()
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        data = {name: _convert(getattr(instances[i], attr)) for i, attr, name in shape.fields}
        data.update(values)
        return cls.model_validate(data)


# The model derived from each dataclass alone: how that dataclass is shown wherever it is nested.
_MODELS: dict[type, type[DerivedModel]] = {}


def derive(
    name: str,
    *sources: type,
    doc: str | None = None,
    omit: Collection[str] = (),
    rename: Mapping[str, str] | None = None,
    retype: Mapping[str, Any] | None = None,
    add: Mapping[str, Any] | None = None,
    required: bool = True,
) -> type[DerivedModel]:
    """A pydantic model named ``name`` with the fields of the ``sources`` dataclasses, in order.

    ``omit``: dataclass fields left out. ``rename``: dataclass field -> model field. ``retype``: model field ->
    its type in the API, where it is narrower than the dataclass's (a Literal for a str). ``add``: model fields
    the dataclasses lack -> their types (appended, required; ``of`` takes their values). ``required``: False
    keeps the dataclass defaults (optional fields), True requires every field. ``doc``: the description.
    """
    rename = dict(rename or {})
    retype = dict(retype or {})
    add = dict(add or {})
    known: set[str] = set()
    definitions: dict[str, Any] = {}
    fields: list[tuple[int, str, str]] = []
    for i, source in enumerate(sources):
        if not (isinstance(source, type) and dataclasses.is_dataclass(source)):
            raise TypeError(f"{name}: {source!r} is not a dataclass")
        hints = typing.get_type_hints(source)
        for f in dataclasses.fields(source):
            known.add(f.name)
            if f.name in omit:
                continue
            field_name = rename.get(f.name, f.name)
            if field_name in definitions:
                raise TypeError(f"{name}: two fields would be called {field_name!r}; rename one")
            annotation = retype[field_name] if field_name in retype else _api_type(hints[f.name], name)
            definitions[field_name] = (annotation, ... if required or field_name in retype else _default(f))
            fields.append((i, f.name, field_name))
    unknown = sorted((set(omit) | set(rename)) - known) + sorted(set(retype) - set(definitions))
    clashes = sorted(set(add) & set(definitions))
    if unknown or clashes:
        raise TypeError(f"{name}: no such dataclass field(s) {unknown}" if unknown else f"{name}: {clashes} exist")
    definitions.update({field_name: (annotation, ...) for field_name, annotation in add.items()})
    model = create_model(
        name,
        __base__=DerivedModel,
        __doc__=doc,
        __module__=sys._getframe(1).f_globals.get("__name__", __name__),  # the module that derives it
        **definitions,
    )
    model.derived_from = Shape(tuple(sources), tuple(fields))
    if len(sources) == 1:
        if sources[0] in _MODELS:
            raise TypeError(f"{name}: {sources[0].__name__} already has a model, {_MODELS[sources[0]].__name__}")
        _MODELS[sources[0]] = model
    return model


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return Field(default_factory=f.default_factory)
    return ...


def _api_type(annotation: Any, model: str) -> Any:
    """``annotation`` with every dataclass in it replaced by the model derived from it."""
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if annotation not in _MODELS:
            raise TypeError(f"{model}: derive a model from {annotation.__name__} first (it is nested in {model})")
        return _MODELS[annotation]
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is None or origin is typing.Literal or not args:
        return annotation
    new = tuple(_api_type(a, model) for a in args)
    if new == args:
        return annotation
    if origin in (types.UnionType, typing.Union):
        return functools.reduce(operator.or_, new)
    return origin[new]


def _convert(value: Any) -> Any:
    """A dataclass field's value for its model: nested dataclasses as their derived models."""
    model = _MODELS.get(type(value))
    if model is not None:
        return model.of(value)
    if isinstance(value, list | tuple):
        return [_convert(v) for v in value]
    if isinstance(value, dict):
        return {k: _convert(v) for k, v in value.items()}
    return value
