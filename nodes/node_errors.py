"""Turns the engine's input errors into the one-line messages ComfyUI shows on the failing node."""
from __future__ import annotations

import functools

from ..dragon_core.errors import DragonInputError


class DragonNodeError(Exception):
    """Raised to ComfyUI with a message that names the input and what is allowed."""


def user_errors(fn):
    """Re-raise DragonInputError as DragonNodeError without the engine's traceback chain."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DragonInputError as exc:
            raise DragonNodeError(str(exc)) from None

    return wrapper
