"""Errors a user can act on; the CLI and the API turn them into a message, not a traceback."""


class RCAInputError(ValueError):
    """The input (a window, an onset, a CSV, a dataset folder) cannot be analysed as given."""


class DatasetLayoutError(RCAInputError):
    """A dataset folder does not match the layout its loader expects."""
