"""`dvc plots show` / `dvc plots diff` pages that work offline: the repository's HTML template
(`.dvc/plots/offline.html`, set as `plots.html_template` in `.dvc/config`) inlines pinned Vega,
Vega-Lite and vega-embed builds instead of loading them from a CDN.

The template checks and the self-containment checks of the generated pages always run; rendering
the pages in headless Chromium (with every host name unresolvable, so anything fetched from the
network would fail) runs where a Chromium is installed: `.ci/run` installs Debian's, and under CI
(``CI`` set) a missing Chromium fails the test; elsewhere it is skipped with its reason."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from conftest import PIPELINES, REPO

TEMPLATE_DIR = REPO / ".dvc" / "plots"
PINS = {"vega": "5.33.1", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
MAX_BYTES = 1 << 20  # no committed file over 1 MiB
DATA_EXT = {".csv", ".json", ".tsv", ".yaml", ".yml"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".svg"}


class Page(HTMLParser):
    """Collects what an HTML page would load: URL-valued attributes and inline scripts."""

    URL_ATTRS = {"src", "href", "data", "srcset", "poster", "action", "formaction"}
    LOADING_TAGS = {"script", "link", "img", "iframe", "embed", "object", "source", "video", "audio",
                    "track", "input", "frame", "base", "form"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.scripts: list[tuple[dict, str]] = []  # (attributes, inline code)
        self.styles: list[str] = []
        self.imgs: list[str] = []
        self._in: tuple[str, dict] | None = None
        self._buf: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag in self.LOADING_TAGS:
            self.refs += [(tag, k, v) for k, v in a.items() if k in self.URL_ATTRS]
        if "style" in a:
            self.styles.append(a["style"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("script", "style"):
            self._in, self._buf = (tag, a), []

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            text = "".join(self._buf)
            (self.scripts.append((self._in[1], text)) if tag == "script" else self.styles.append(text))
            self._in = None


def remote_refs(html: str) -> list[str]:
    """Everything the page would fetch from the network when opened: http(s) or protocol-relative
    URLs in loading attributes (script/link/img/iframe... src/href), CSS url()/@import, meta
    refresh targets. URL strings inside the vendored JavaScript (schema ids, the "Open in Vega
    Editor" link) are data, not loads, and are not counted."""
    page = Page(html)
    remote = re.compile(r"^\s*(https?:)?//", re.I)
    out = [f"<{t} {k}={v}>" for t, k, v in page.refs if remote.match(v)]
    out += [f"<script src> {a['src']}" for a, _ in page.scripts if "src" in a]  # any, even local
    css_url = re.compile(r"(?:url\(|@import)\s*['\"]?\s*((?:https?:)?//[^'\")\s]+)")
    for css in page.styles:
        out += [f"css {u}" for u in css_url.findall(css)]
    refresh = re.compile(r"http-equiv=\"refresh\"[^>]*url=([^\"';>]+)", re.I)
    out += [f"meta refresh {u}" for u in refresh.findall(html)]
    return out


# --------------------------------------------------------------------------------------------
# The template itself (no pipeline needed)
# --------------------------------------------------------------------------------------------

def configured_template(repo: Path) -> Path:
    out = subprocess.run([sys.executable, "-m", "dvc", "config", "plots.html_template"], cwd=repo,
                         capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    return path if path.is_absolute() else repo / ".dvc" / path  # DVC resolves it against .dvc/


def test_template_is_configured_small_and_fills_like_dvc_does():
    from dvc_render.html import HTML

    template = configured_template(REPO)
    assert template.resolve() == (TEMPLATE_DIR / "offline.html").resolve()
    for f in TEMPLATE_DIR.iterdir():
        assert f.stat().st_size < MAX_BYTES, f"{f}: {f.stat().st_size} bytes"
    text = template.read_text(encoding="utf-8")
    assert "{plot_divs}" in text and "{refresh_tag}" in text
    assert "{scripts}" not in text  # dvc_render would put its CDN <script src=...> tags there
    page = HTML(text).with_scripts("<script src='https://cdn.invalid/x.js'></script>")
    page.with_element("<div id='probe'></div>")
    filled = page.embed()
    assert "<div id='probe'></div>" in filled and "cdn.invalid" not in filled
    assert remote_refs(filled) == []
    # the check itself: DVC's default page is caught (its three CDN scripts)
    from dvc_render.vega import VegaRenderer
    default = remote_refs(HTML().with_scripts(VegaRenderer.SCRIPTS).embed())
    assert {u for u in ("vega@", "vega-lite@", "vega-embed@") if any(f"/npm/{u}" in r for r in default)} \
        == {"vega@", "vega-lite@", "vega-embed@"}, default


def test_template_inlines_the_pinned_builds_with_their_licences():
    parsed = Page((TEMPLATE_DIR / "offline.html").read_text(encoding="utf-8"))
    inlined = {a.get("data-package"): code for a, code in parsed.scripts}
    assert set(inlined) == {f"{n}@{v}" for n, v in PINS.items()}
    for name, version in PINS.items():
        code = inlined[f"{name}@{version}"]
        assert f'"{version}"' in code, (name, "version string not in the inlined build")
        assert "sourceMappingURL" not in code
        licence = (TEMPLATE_DIR / f"LICENSE.{name}").read_text()
        assert "University of Washington Interactive Data Lab" in licence and "Redistribution" in licence
    assert "Esprima" in (TEMPLATE_DIR / "THIRD_PARTY_NOTICES.md").read_text()


# --------------------------------------------------------------------------------------------
# Pages generated in the tiny pipeline's repository
# --------------------------------------------------------------------------------------------

SPEC = re.compile(r"var spec = (\{.*\});\s*$", re.M)


def declared_charts(work: Path) -> list[str]:
    """The ids (titles) of every top-level `plots:` entry of the repository's dvc.yaml files."""
    ids = []
    for where in PIPELINES:
        for entry in yaml.safe_load((work / where).read_text()).get("plots", []):
            ids.append(entry if isinstance(entry, str) else next(iter(entry)))
    return ids


def specs(html: str) -> dict[str, dict]:
    """Every chart's Vega-Lite spec on a `dvc plots` page, by title."""
    out = {}
    for m in SPEC.finditer(html):
        spec = json.loads(m.group(1))
        out[spec["title"]] = spec
    return out


def encodings(spec: dict) -> list[dict]:
    """The ``encoding`` of a spec and of its facet spec / layers."""
    found = [spec["encoding"]] if "encoding" in spec else []
    for sub in [spec.get("spec", {}), *spec.get("layer", []), *spec.get("spec", {}).get("layer", [])]:
        found += encodings(sub) if sub else []
    return found


@pytest.fixture(scope="module")
def pages(pipeline, tmp_path_factory) -> dict[str, Path]:
    """`dvc plots show` (written by the pipeline fixture) and `dvc plots diff` of the commits
    before and after `lora.r=2`, both with the repository's configured template."""
    out = tmp_path_factory.mktemp("plots_diff")
    pipeline.sh("dvc", "plots", "diff", "HEAD~2", "HEAD~1", "-o", str(out))
    return {"show": pipeline.work / "dvc_plots" / "index.html", "diff": out / "index.html"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["show", "diff"])
def test_generated_page_is_self_contained_with_one_titled_chart_per_declared_plot(pipeline, pages, kind):
    html = pages[kind].read_text(encoding="utf-8")
    assert 'data-package="vega@' in html, "the configured offline template was not used"
    assert remote_refs(html) == []
    charts = specs(html)
    assert sorted(charts) == sorted(declared_charts(pipeline.work)) and len(charts) <= 15, sorted(charts)
    assert Page(html).imgs == []  # the PNGs stay files (reports/figures/): no chart twice


@pytest.mark.slow
def test_charts_colour_by_method_dash_by_revision_and_never_smooth(pages):
    charts = specs(pages["show"].read_text(encoding="utf-8"))
    for title, spec in charts.items():
        text = json.dumps(spec)
        assert "smooth" not in text and '"bind"' not in text, title  # no slider on any chart
        dashes = [e["strokeDash"]["field"] for e in encodings(spec) if "strokeDash" in e]
        shapes = [e["shape"]["field"] for e in encodings(spec) if "shape" in e]
        assert set(dashes + shapes) <= {"rev"}, title
    nmse = charts["NMSE vs SNR"]
    color = next(e["color"] for e in encodings(nmse) if "color" in e)
    assert color["field"] == "method"
    assert len(set(color["scale"]["range"])) == len(color["scale"]["domain"])  # a colour per method
    methods = {row["method"] for row in nmse["data"]["values"]}
    assert {"ls", "lmmse_stat", "lmmse_genie", "base", "lora"} <= methods <= set(color["scale"]["domain"])
    frontier = charts["Adaptation frontier: gap to the genie vs target data"]
    assert any(e["x"].get("scale", {}).get("type") == "log" for e in encodings(frontier) if "x" in e)
    bler = charts["PUSCH BLER vs SNR"]
    assert any(e["y"].get("scale", {}).get("type") == "log" for e in encodings(bler) if "y" in e)


@pytest.mark.slow
def test_a_diff_of_a_lora_rank_change_draws_both_revisions_of_every_method(pages):
    nmse = specs(pages["diff"].read_text(encoding="utf-8"))["NMSE vs SNR"]
    rows = nmse["data"]["values"]
    revs = {row["rev"] for row in rows}
    assert len(revs) == 2, revs
    for method in ("ls", "base", "lora"):
        assert {row["rev"] for row in rows if row["method"] == method} == revs, method
    lora = {row["rev"]: row["nmse_db"] for row in rows if row["method"] == "lora" and row["scenario"] == "InF_Los"}
    assert len(set(lora.values())) == 2  # r=4 and r=2 adapters: two curves


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    why = ("no Chromium on PATH (apt-get install chromium): rendering not checked; "
           "self-containment is checked by test_generated_page_is_self_contained...")
    if os.environ.get("CI"):  # .ci/run installs Chromium: CI must render, never skip
        pytest.fail(why)
    pytest.skip(why)


def render(index: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and the browser console (Chromium logs it to stderr).
    Every host name is unresolvable, so a page that needs the network fails visibly."""
    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", index.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "net::ERR" in line]
    return proc.stdout, console


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["show", "diff"])
def test_generated_page_renders_every_chart_in_chromium_offline(pipeline, pages, kind, tmp_path):
    chromium()
    html = pages[kind].read_text(encoding="utf-8")
    n_charts = html.count("vegaEmbed('#")
    assert n_charts == len(declared_charts(pipeline.work))
    dom, console = render(pages[kind], tmp_path / "profile")
    errors = [c for c in console if re.search(r"Uncaught|Failed to load|net::ERR|Error:", c)]
    assert errors == [], "\n".join(errors)
    assert dom.count('class="vega-embed') == n_charts, dom[-2000:]
    assert len(re.findall(r"<canvas|<svg[^>]*class=\"marks\"", dom)) == n_charts
    assert dom.count("<img") == html.count("<img")


def test_the_templates_colour_scales_are_written_from_the_style_tables() -> None:
    """Every `dvc plots` template colours a method as the PNGs do: the committed templates are
    what `python -m chanest.evaluation.templates` writes from the table of methods and the peer
    registry (a new method or peer: run it)."""
    from chanest.evaluation.plots import METHOD_STYLE
    from chanest.evaluation.templates import method_colours, rendered

    paths = sorted(TEMPLATE_DIR.glob("*.json"))
    stale = [p.name for p in paths if rendered(p) != p.read_text(encoding="utf-8")]
    assert stale == [], f"run `python -m chanest.evaluation.templates`: {stale}"
    nmse = json.loads((TEMPLATE_DIR / "nmse.json").read_text(encoding="utf-8"))
    scale = nmse["spec"]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"])) == method_colours()
    assert scale["range"][scale["domain"].index("lora")] == METHOD_STYLE["lora"]["color"]
    peers = json.loads((TEMPLATE_DIR / "peers.json").read_text(encoding="utf-8"))["spec"]["encoding"]["color"]["scale"]
    assert {"reesnet", "reesnet_lora", "v4", "v4_lora"} <= set(peers["domain"])
