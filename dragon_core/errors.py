"""The one exception type the engine raises for bad input."""


class DragonInputError(ValueError):
    """An edit, bank or option that cannot be used as given.

    The message always names the offending field and says what is allowed, e.g.
    ``"points[2]: target (130, 12) lies outside the 128x96 image (0 <= x < 128, 0 <= y < 96)"``.
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
