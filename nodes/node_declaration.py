"""How a node class tells ComfyUI what it is: one decorator, the class docstring as its description.

The decorator sets its category, function, outputs (type, name and tooltip together) and search aliases."""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

NodeClass = TypeVar("NodeClass", bound=type)


def node(category: str, function: str, *, outputs: Sequence[tuple[str, str, str]],
         aliases: Sequence[str]) -> Callable[[NodeClass], NodeClass]:
    """Class decorator: CATEGORY, FUNCTION, RETURN_TYPES / RETURN_NAMES / OUTPUT_TOOLTIPS (from the ``outputs``
    triples, in order), SEARCH_ALIASES, and DESCRIPTION (the docstring as one line: what the user reads)."""
    def declare(cls: NodeClass) -> NodeClass:
        if not cls.__doc__:
            raise TypeError(f"{cls.__name__}: a node's docstring is its description; it has none")
        cls.CATEGORY = category
        cls.FUNCTION = function
        cls.DESCRIPTION = " ".join(cls.__doc__.split())
        cls.RETURN_TYPES = tuple(kind for kind, _, _ in outputs)
        cls.RETURN_NAMES = tuple(name for _, name, _ in outputs)
        cls.OUTPUT_TOOLTIPS = tuple(tip for _, _, tip in outputs)
        cls.SEARCH_ALIASES = list(aliases)
        return cls

    return declare
