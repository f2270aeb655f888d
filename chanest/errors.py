"""The errors chanest reports as a user's input mistake: one line naming the file or key, exit 1.

This module imports nothing, so the stage entry point (:func:`chanest.utils.cli.run`) can tell these
from a defect in the code without importing torch or any domain module: these exit 1 with their
message, anything else shows its traceback. ``InputError`` covers the params (``ParamsError``), PDP
files (``PDPError``) and outputs of earlier stages that do not fit; ``MissingInputError`` an input
file that is not there; ``CheckpointError`` a checkpoint that does not fit its model.
"""


class InputError(ValueError):
    """Input a stage cannot use: wrong arguments, or outputs of earlier stages that do not fit."""


class ParamsError(InputError):
    """A params key is missing, unknown, or of the wrong type."""


class PDPError(InputError):
    """Bad PDP input: the message names the file, the PDP index and what was expected."""


class CheckpointError(RuntimeError):
    """A checkpoint that does not fit: the message names every offending key."""


class MissingInputError(FileNotFoundError):
    """An input file that is not there (an earlier stage has not run): the message names it."""
