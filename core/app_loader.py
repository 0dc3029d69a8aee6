"""Load a Procrastinate App from "dotted.module:attribute" (or "dotted.module.attribute")."""

from __future__ import annotations

import importlib

from procrastinate import App

from jobdash.core.errors import AppLoadError, one_line


def split_app_path(path: str) -> tuple[str, str]:
    path = path.strip()
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if (
        not module_name
        or not attribute
        or not all(part.isidentifier() for part in [*module_name.split("."), *attribute.split(".")])
    ):
        raise AppLoadError(f"{path!r} is not of the form dotted.module:app")
    return module_name, attribute


def load_app(path: str) -> App:
    module_name, attribute = split_app_path(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(f"module {module_name!r} not found") from None
        raise AppLoadError(f"importing module {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise AppLoadError(
            f"importing module {module_name!r} failed: {type(exc).__name__}: {one_line(exc)}"
        ) from None
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AppLoadError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, App):
        raise AppLoadError(
            f"{module_name}:{attribute} is a {type(value).__name__}, not a procrastinate App"
        )
    return value
