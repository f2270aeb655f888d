"""The result tables in README.md and docs/ quote the committed reports, to the printed digit.

A pipeline re-run that moves a number, committed without its table, fails here: the tables users
read cannot drift from `reports/`, `research/reports/` and what `dvc metrics show` prints.
"""

from __future__ import annotations

import csv
import json

import pytest

from conftest import REPO


def _ci(value: float, ci: list[float], sign: bool = False) -> str:
    """``value [low, high]`` as the tables print it (2 decimals; ``sign``: ``+x [+a, +b]``)."""
    f = "{:+.2f}" if sign else "{:.2f}"
    return f"{f.format(value)} [{f.format(ci[0])}, {f.format(ci[1])}]"


def _rows(path: str, prefix: str, section: str | None = None) -> list[str]:
    """The table rows of ``path`` that start with ``| prefix``, bold marks removed; with
    ``section``, only those of the first table after the line that starts with it."""
    lines = _text(path).splitlines()
    if section is not None:
        start = next(i for i, line in enumerate(lines) if line.startswith(section))
        lines = lines[start + 1:]
        first = next(i for i, line in enumerate(lines) if line.startswith("|"))
        end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
        lines = lines[first:end]
    rows = [line.replace("**", "") for line in lines
            if line.startswith(f"| {prefix}") and not line.startswith("| ---")]
    assert rows, f"{path}: no table row starts with '| {prefix}'" + (f" after {section!r}" if section else "")
    return rows


def _quotes(path: str, prefix: str, expected: list[str], section: str | None = None) -> None:
    for row in _rows(path, prefix, section):
        missing = [e for e in expected if e not in row]
        assert not missing, f"{path}: the row '{row[:60]}...' does not quote {missing} from the reports"


def _json(path: str) -> dict:
    return json.loads((REPO / path).read_text())


def _text(path: str) -> str:
    return (REPO / path).read_text()


@pytest.mark.parametrize("doc, report", [("README.md", "reports/metrics.json"),
                                         ("docs/results.md", "reports/metrics.json"),
                                         ("docs/research.md", "research/reports/metrics.json")])
def test_the_gap_tables_quote_their_metrics_json(doc, report):
    for scenario, m in _json(report).items():
        methods = ["ls", "lmmse_stat", "nomp", "base"] + (["lora"] if "lora" in m else [])
        expected = [_ci(m[k]["gap_to_genie_db"], m[k]["gap_to_genie_ci_db"]) for k in methods]
        if "lora" in m:
            expected.append(_ci(m["lora_gain_db"], m["lora_gain_ci_db"]))
        learned = m["lora" if "lora" in m else "base"]  # the adapted model, or the base on a source
        expected.append(_ci(learned["ahead_of_nomp_db"], learned["ahead_of_nomp_ci_db"], sign=True))
        _quotes(doc, f"{scenario} ({'target' if 'lora' in m else 'source'}", expected)


@pytest.mark.parametrize("doc", ["README.md", "docs/research.md"])
def test_the_research_operating_points_quote_research_reports_points_json(doc):
    points = _json("research/reports/points.json")
    for scenario, p in points.items():
        expected = [_ci(p[k]["nmse_db"], p[k]["nmse_ci_db"])
                    for k in ("ls", "nomp", "lmmse_genie", "base", "lora")]
        expected.append(_ci(p["lora"]["ahead_of_nomp_db"], p["lora"]["ahead_of_nomp_ci_db"], sign=True))
        if doc == "docs/research.md":
            expected += [_ci(p["lmmse_stat"]["nmse_db"], p["lmmse_stat"]["nmse_ci_db"]),
                         _ci(p["lora_gain_db"], p["lora_gain_ci_db"])]
        _quotes(doc, f"{scenario}, {p['snr_db']} dB", expected)


def test_the_link_tables_quote_reports_link_json():
    link = _json("reports/link.json")
    for scenario, by_method in link.items():
        for mcs in by_method["perfect"]:
            expected = []
            for method, by_mcs in by_method.items():
                e = by_mcs[mcs]
                expected.append(_ci(e["snr_at_bler_10pct_db"], e["ci_db"]))
                if method != "perfect":
                    lo, hi = e["loss_ci_db"]
                    expected.append(f"{e['loss_vs_perfect_db']:+.2f} [{lo:.2f}, {hi:.2f}]")
            _quotes("docs/link.md", f"{scenario} |", expected, section=f"{mcs}:")


def _frontier_cells() -> dict[tuple[str, str, str, str], dict]:
    """``reports/frontier.csv`` by (target, method, r, target PDPs)."""
    with open(REPO / "reports/frontier.csv", newline="") as f:
        return {(r["scenario"], r["method"], r["r"], r["target_pdps"]): r for r in csv.DictReader(f)}


def _frontier_table(path: str, header: str) -> list[tuple[str, str, dict[str, str]]]:
    """The rows of the frontier-shaped table whose header starts with ``| header``: (target,
    budget, {column: cell}), the target carried down over the rows that leave it blank and
    ``all (N)`` read as N."""
    lines = _text(path).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    names = [c.strip() for c in lines[start].strip("|").split("|")]
    rows, target = [], None
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("**", "") for c in line.strip("|").split("|")]
        target = cells[0].split()[0] if cells[0] else target
        by_name = dict(zip(names, cells))
        budget = next(v for k, v in by_name.items() if "PDPs" in k or "budget" in k)
        budget = budget.split("(")[1].rstrip(")") if budget.startswith("all") else budget
        rows.append((target, budget, by_name))
    assert rows, f"{path}: no rows under '| {header}'"
    return rows


def _method(column: str) -> tuple[str, str] | None:
    """A frontier table's column name as (method, r): ``LoRA r 4 (...)`` -> (lora, 4)."""
    c = column.lower()
    if c.startswith("lora r"):
        return "lora", c.split()[2]
    return ("full_ft", "") if c.startswith("full") else ("scratch", "") if "scratch" in c else None


@pytest.mark.parametrize("doc, header", [("README.md", "site (base, zero-shot gap)"),
                                         ("docs/sim2real.md", "target (base, zero-shot gap)")])
def test_the_sim_to_real_gains_quote_reports_frontier_csv(doc, header):
    cells = _frontier_cells()
    rows = _frontier_table(doc, header)
    for target, budget, by_name in rows:
        for column, cell in by_name.items():
            if (key := _method(column)) is None:
                continue
            c = cells[(target, *key, budget)]
            lo, hi = float(c["gain_ci_low_db"]), float(c["gain_ci_high_db"])
            assert cell == _ci(float(c["gain_vs_base_db"]), [lo, hi], sign=True), (doc, target, budget, column)
        base = cells[(target, "base", "", "0")]
        assert f"({float(base['gap_to_genie_db']):.2f} dB)" in _text(doc), (doc, target)


def test_the_frontier_table_quotes_reports_frontier_csv():
    cells = _frontier_cells()
    rows = _frontier_table("docs/frontier.md", "target | base, zero-shot")
    assert len(rows) == 4 * len({k[0] for k in cells}), "one row per target and budget"
    for target, budget, by_name in rows:
        for column, cell in by_name.items():
            if (key := _method(column)) is not None:
                assert cell == f"{float(cells[(target, *key, budget)]['gap_to_genie_db']):.2f}", \
                    (target, budget, column)
        base = cells[(target, "base", "", "0")]
        if by_name["base, zero-shot"]:
            ci = [float(base["ci_low_db"]), float(base["ci_high_db"])]
            assert by_name["base, zero-shot"] == _ci(float(base["gap_to_genie_db"]), ci), target


def test_the_sim_to_real_target_table_quotes_reports_metrics_json():
    metrics = _json("reports/metrics.json")
    listed = [row.split("|")[1].strip() for row in _rows("docs/sim2real.md", "", section="| target | PDP source")]
    assert {"NYU_InF", "NYU_RMa"} <= set(listed), listed
    for target in listed:
        m = metrics[target]
        expected = [_ci(m[k]["gap_to_genie_db"], m[k]["gap_to_genie_ci_db"]) for k in ("base", "lora")]
        _quotes("docs/sim2real.md", f"{target} | ", expected + [_ci(m["lora_gain_db"], m["lora_gain_ci_db"])],
                section="| target | PDP source")


def _z(x: float) -> float:
    """-0.004 prints as 0.00, not -0.00 (the tables' convention)."""
    return 0.0 if abs(x) < 0.005 else x


def test_the_research_link_tables_quote_research_reports_link_link_json():
    link = _json("research/reports/link/link.json")
    for scenario, by_method in link.items():
        methods = {m: v for m, v in by_method.items() if m != "calibration"}
        for mcs in methods["perfect"]:
            expected = []
            for method, by_mcs in methods.items():
                e = by_mcs[mcs]
                expected.append(_ci(_z(e["snr_at_bler_10pct_db"]), [_z(v) for v in e["ci_db"]]))
                if method != "perfect":
                    lo, hi = (_z(v) for v in e["loss_vs_perfect_ci_db"])
                    expected.append(f"{_z(e['loss_vs_perfect_db']):+.2f} [{lo:.2f}, {hi:.2f}]")
            _quotes("docs/research-link.md", f"{scenario} |", expected, section=f"{mcs}:")
            gains = []
            for method in ("lmmse_stat", "lmmse_genie", "nomp", "base", "lora"):
                e = methods[method][mcs]
                lo, hi = (_z(v) for v in e["gain_vs_ls_ci_db"])
                gains.append(f"{_z(e['gain_vs_ls_db']):+.2f} [{lo:.2f}, {hi:.2f}]")
            _quotes("docs/research-link.md", f"{scenario}, {mcs} |", gains)


def test_the_peers_tables_quote_reports_peers_metrics():
    """docs/peers.md: each target's adapted row and each scenario's zero-shot row quote every gap
    and every paired difference of reports/peers/metrics.json."""
    metrics = _json("reports/peers/metrics.json")
    for scenario, m in metrics.items():
        for suffix, mine, section in (("_lora", "lora", "Gap to the genie"), ("", "base", "Every model zero-shot")):
            if mine not in m:
                continue
            expected = [_ci(m[mine]["gap_to_genie_db"], m[mine]["gap_to_genie_ci_db"])]
            for peer in ("reesnet", "v4"):
                e = m[peer + suffix]
                expected += [_ci(e["gap_to_genie_db"], e["gap_to_genie_ci_db"]),
                             _ci(e["chanest_ahead_db"], e["chanest_ahead_ci_db"], sign=True)]
            _quotes("docs/peers.md", f"{scenario} |", expected, section)
