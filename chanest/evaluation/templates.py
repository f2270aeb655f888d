"""The colour scales of the ``dvc plots`` templates in ``.dvc/plots/``, written from the style tables.

A chart's colour scale (``"domain"`` and ``"range"``) names each method and its colour. The ones
that hold the genie (``lmmse_genie``) get every method of :mod:`chanest.evaluation.methods`
(plugins included) and the link's perfect-CSI floor; ``peers.json`` gets chanest's methods of
:data:`chanest.peers.report.CHANEST` and each registered peer's base and adapter. Everything
else in a template is kept as written. After adding a method or a peer::

    python -m chanest.evaluation.templates        # rewrites .dvc/plots/*.json in place

(a test checks that the committed templates are what this writes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / ".dvc" / "plots"


def method_colours() -> dict[str, str]:
    """Every method's colour, then the link's perfect-CSI floor: the charts' colour scale."""
    from chanest.evaluation.plots import LINK_STYLE, METHOD_STYLE

    return {m: s["color"] for m, s in METHOD_STYLE.items()} | {"perfect": LINK_STYLE["perfect"]["color"]}


def peer_colours() -> dict[str, str]:
    """chanest's methods in the peers report, then each registered peer's base and adapter."""
    from chanest.evaluation.plots import METHOD_STYLE
    from chanest.peers import PEERS, _discover
    from chanest.peers.report import CHANEST

    _discover()
    colours = {m: METHOD_STYLE[m]["color"] for m in CHANEST}
    for name, peer in PEERS.items():
        colours |= {name: peer.color, f"{name}_lora": peer.color_lora}
    return colours


def rendered(path: Path) -> str:
    """The template at ``path`` with its colour scales written from the tables."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    colours = peer_colours() if path.name == "peers.json" else method_colours()

    def fill(o: object) -> None:
        if isinstance(o, dict):
            if "domain" in o and "range" in o and (path.name == "peers.json" or "lmmse_genie" in o["domain"]):
                o["domain"], o["range"] = list(colours), list(colours.values())
            for v in o.values():
                fill(v)
        elif isinstance(o, list):
            for v in o:
                fill(v)

    fill(spec)
    return json.dumps(spec, indent=1, ensure_ascii=False) + "\n"


def main(template_dir: Path = TEMPLATE_DIR) -> None:
    for path in sorted(template_dir.glob("*.json")):
        text = rendered(path)
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
            print(f"{path}: colour scales rewritten")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE_DIR)
