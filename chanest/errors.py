"""The errors chanest reports as a user's input mistake: one line naming the file or key, exit 1.

This module imports nothing, so the stage entry point (:func:`chanest.utils.cli.run`) can tell these
from a defect in the code without importing torch or any domain module. Each is also reachable where
it is raised (``chanest.utils.params.ParamsError``, ``chanest.channel.pdp.PDPError``,
``chanest.estimators.checkpoint.CheckpointError``).
"""


class ParamsError(ValueError):
    """A params key is missing, unknown, or of the wrong type."""


class PDPError(ValueError):
    """Bad PDP input: the message names the file, the PDP index and what was expected."""


class CheckpointError(RuntimeError):
    """A checkpoint that does not fit: the message names every offending key."""
