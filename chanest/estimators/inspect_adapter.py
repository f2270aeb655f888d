"""Print what a LoRA adapter directory holds and check that it loads cleanly onto its base.

    python -m chanest.estimators.inspect_adapter models/lora/InF_Los [--base models/base]

Prints a JSON summary (base hash, r, alpha, targets, trainable parameters) and whether the adapter
on the base reproduces the saved merged weights; exits 1 if it does not load or does not match.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from chanest.utils import cli
from chanest.estimators.checkpoint import load_estimator
from chanest.estimators.lora import describe, load_adapter, merged_path, state_hash


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("adapter", help="adapter directory (models/lora/<Scenario>)")
    ap.add_argument("--base", default="models/base", help="base estimator directory")
    args = ap.parse_args()
    info = describe(args.adapter)
    base = load_estimator(args.base)
    info["base_matches"] = state_hash(base) == info["base_sha256"]
    model = load_adapter(base, args.adapter).eval()
    merged = load_estimator(merged_path(args.adapter).parent).eval()
    g = torch.Generator().manual_seed(0)
    n_p = len(merged.cfg.pilot_indices)
    h_ls = torch.randn(16, n_p, generator=g, dtype=torch.complex64)
    snr = torch.linspace(0, 30, 16)
    with torch.no_grad():
        diff = float((model(h_ls, snr) - merged(h_ls, snr)).abs().max())
    info["max_abs_diff_adapter_vs_merged"] = diff
    info["loads_cleanly"] = diff < 1e-4
    print(json.dumps(info, indent=2))
    if not info["loads_cleanly"]:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
