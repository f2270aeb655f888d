"""Rebuild ``offline.html``: DVC's plots page with Vega, Vega-Lite and vega-embed inlined.

`dvc plots show/diff` fill the HTML template named by ``plots.html_template`` in ``.dvc/config``
(relative to ``.dvc/``). DVC's default page loads the three libraries from a CDN through its
``{scripts}`` placeholder; this template has no ``{scripts}`` and inlines the pinned minified UMD
builds instead, so the page works offline. Needs ``npm`` (only to fetch the packages):

    python .dvc/plots/vendor.py            # npm pack into a temp dir, write offline.html + licences

Pins: the newest releases in the majors that DVC's own template loads (dvc_render's VegaRenderer:
vega@5.20.2, vega-lite@5.2.0, vega-embed@6.18.2; the Vega specs DVC writes are Vega-Lite v5).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PINS = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
BUILDS = {"vega": "vega.min.js", "vega-lite": "vega-lite.min.js", "vega-embed": "vega-embed.min.js"}
# vega@5.33.1's tarball omits its LICENSE (package.json: BSD-3-Clause); 5.33.0's carries the
# project's licence text, unchanged since.
LICENSE_FROM = {"vega": "vega@5.33.0"}
MAX_BYTES = 1 << 20  # the repository hook warns on committed files over 1 MiB

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>chanest: DVC plots</title>
    <!-- Offline DVC plots page: {libs} inlined (BSD-3-Clause; licences in .dvc/plots/).
         Rebuild with python .dvc/plots/vendor.py. -->
{scripts}
    <style>
        table {{ border-spacing: 15px; }}
        body {{ font-family: sans-serif; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def npm_pack(spec: str, tmp: Path) -> Path:
    name = subprocess.run(["npm", "pack", "--silent", spec], cwd=tmp, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    dest = tmp / name.removesuffix(".tgz")
    with tarfile.open(tmp / name) as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # Python < 3.11.4: no extraction filters
            tar.extractall(dest)
    return dest / "package"


def notices(js: str) -> list[str]:
    """Licence comments that the unminified bundle keeps for the code it bundles."""
    found = [m.group(0) for m in re.finditer(r"/\*!?[\s\S]*?\*/", js)
             if re.search(r"copyright|\(c\)|licen[cs]e", m.group(0), re.I) and '":' not in m.group(0)
             and "license:" not in m.group(0)]
    found += [m.group(0) for m in re.finditer(r"(?:^[ \t]*//.*\n)+", js, re.M)
              if re.search(r"copyright|licen[cs]e", m.group(0), re.I)]
    out: list[str] = []
    for block in found:
        text = "\n".join(line.strip() for line in block.strip().splitlines())
        if text not in out:
            out.append(text)
    return out


def main() -> int:
    scripts, libs, third = [], [], []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, version in PINS.items():
            pkg = npm_pack(f"{name}@{version}", tmp)
            js = (pkg / "build" / BUILDS[name]).read_text(encoding="utf-8")
            js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.M)  # no .map beside the page
            for bad in ("</script", "<!--", "{plot_divs}", "{scripts}", "{refresh_tag}"):
                assert bad not in js, f"{name}: {bad!r} would break the inlined page"
            scripts.append(f'    <script data-package="{name}@{version}">\n{js.strip()}\n    </script>')
            libs.append(f"{name}@{version}")
            lic_pkg = npm_pack(LICENSE_FROM[name], tmp) if name in LICENSE_FROM else pkg
            (HERE / f"LICENSE.{name}").write_text((lic_pkg / "LICENSE").read_text(encoding="utf-8"))
            full = (pkg / "build" / BUILDS[name].replace(".min.js", ".js")).read_text(encoding="utf-8")
            third += [f"## bundled in {name}@{version}\n"] + [f"```\n{b}\n```\n" for b in notices(full)]
    page = PAGE.format(libs=", ".join(libs), scripts="\n".join(scripts))
    size = len(page.encode())
    assert size < MAX_BYTES, f"offline.html would be {size} bytes (> 1 MiB)"
    (HERE / "offline.html").write_text(page, encoding="utf-8")
    (HERE / "THIRD_PARTY_NOTICES.md").write_text(
        "# Notices kept by the vendored builds\n\nThe minified builds inlined in `offline.html` strip "
        "comments; these are the licence and attribution comments of the same releases' unminified "
        "builds, for the code they bundle.\n\n" + "\n".join(third))
    print(f"offline.html: {size} bytes ({', '.join(libs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
