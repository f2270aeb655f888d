"""Thin DVC stage scripts: parse params, call chanest, write the declared outputs."""

import gc
import sys

# `python -m stages.<name>` imports this package first, while sys.argv[0] is still "-m": the
# stage's imports then run with the garbage collector paused, until chanest.utils.cli.run starts
# the stage (see chanest/utils/imports.py). Importing a stage module from elsewhere changes nothing.
if sys.argv[:1] == ["-m"]:
    gc.disable()
