"""The artifact's report: report.json, and drawn from it alone report.html (self-contained, inline CSS, the plot
embedded as a data URI), report.png, and the summary `edgenas compile` prints (`summary`).

With a search: predicted vs measured latency of the candidates, and predicted accuracy against measured
latency with the Pareto front and the pick. Without one: the measured point against the budget and each
runtime's latency.
"""
from __future__ import annotations

import base64
import json
import math
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from ..compiler.schedules import HAND_SCHEDULED
from ..compiler.tuning_db import SHIPPED_DATABASES

FITS, MISSES, NEUTRAL, TVM = "#1a7f37", "#cf222e", "#57606a", "#0969da"

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1f2328}
code{font-size:.9em;word-break:break-all}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}.fits{color:#1a7f37;font-weight:bold}
.misses{color:#cf222e;font-weight:bold}.none{color:#57606a}tr.pick{background:#fff8c5}img{max-width:100%}"""


def write_report(report: dict[str, Any], out_dir: Path) -> None:
    """Write report.json, report.html and report.png for `report` into `out_dir`."""
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    write_html(report, out_dir)


def _shipped(path: str | None) -> bool:
    """Whether the tuning database at `path` is one that ships with edgenas."""
    return bool(path) and Path(path).is_relative_to(SHIPPED_DATABASES)


def _database_name(path: str) -> str:
    return f"shipped ({Path(path).relative_to(SHIPPED_DATABASES)})" if _shipped(path) else f"from {path}"


def budget_verdicts(report: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Each budget judged: (latency_ms | memory_mb, met, in words with 'MISSED' where the artifact breaks it)."""
    out = []
    budgets, costs = report.get("budgets", {}), report["costs"]
    if "latency_ms" in budgets and "fits_latency_budget" in report:
        ms, met = report["latency_ms"][report["runtime"]]["p50_ms"], report["fits_latency_budget"]
        out.append(("latency_ms", met, f"latency {budgets['latency_ms']:g} ms: {'met' if met else 'MISSED'} "
                                       f"({report['runtime']} p50 {ms:.3f} ms)"))
    if "memory_mb" in budgets:
        met = report["fits_memory_budget"]
        out.append(("memory_mb", met, f"memory {budgets['memory_mb']:g} MB: {'met' if met else 'MISSED'} "
                                      f"(weights + peak activations {costs['memory_mb']:.3f} MB)"))
    return out


def summary(report: dict[str, Any], directory: Path) -> str:
    """What `edgenas compile` prints of the artifact in `directory`: its files, costs, training, compilation,
    latencies and search candidates, a line each."""
    r = report
    lines = []
    files = sorted(p.name for p in Path(directory).iterdir() if p.is_file()) if Path(directory).is_dir() else []
    lines.append(f"artifact   {directory}/  ({', '.join(files)})")
    lines.append(f"arch       {r['arch']}")
    c = r["costs"]
    lines.append(f"costs      {c['mflops']:.1f} MFLOPs, {c['params'] / 1e6:.3f} M params, "
                 f"{c['peak_activation_mb']:.3f} MB peak activations")
    if "training" in r:
        t = r["training"]
        test = "" if t["test_accuracy"] is None else f", test {t['test_accuracy']:.2f}%"
        lines.append(f"trained    val {t['val_accuracy']:.2f}%{test} (best epoch {t['best_epoch']} of "
                     f"{t['epochs_run']}; {t['samples']['train']} train / {t['samples']['val']} val samples, "
                     f"{len(t['classes'])} classes)")
        lines.append(f"input      data stored as for training ({t['preprocessing']['description']}), or the network's "
                     f"float32 NCHW input: edgenas predict and load(...).predict take both")
    if "accuracy_shots" in r:
        a = r["accuracy_shots"]
        lines.append(f"shots      after {a['epochs']} epochs the pick reaches {a['pick_val_accuracy']:.2f}%, beating "
                     f"{a['pick_beats']} of {len(a['sampled'])} sampled architectures (best "
                     f"{a['best_sampled_val_accuracy']:.2f}%)")
    comp = r["compile"]
    origins = Counter(comp.get("schedule_from", {}).values())
    hand = origins.pop(HAND_SCHEDULED, 0)
    tune = f"edgenas tune --target {r['profile']}" + (f" --model {r['model']['source']}" if "model" in r else
                                                       " --data DATA" if "training" in r else "")
    if comp["tuning_db"] is None:
        how = f"untuned: no tuning database for this target; run {tune}"
    elif comp["fallback"]:
        how = f"{len(comp['tuned'])} tuned, {len(comp['fallback'])} untuned: {', '.join(comp['fallback'])}"
        if len(comp["fallback"]) > len(comp["tuned"]) or "model" in r:
            how += f"; {tune} tunes them"
    else:
        how = "all tuned"
    if len(origins) > 1:  # the user's records first, the shipped ones for the workloads they lack
        how += "; schedules from " + ", ".join(f"{n} {_database_name(db)}" for db, n in origins.items())
    elif _shipped(comp["tuning_db"]):
        shipped = Path(comp["tuning_db"]).relative_to(SHIPPED_DATABASES)
        how += f"; from the database shipped for {shipped}, edgenas tune --target {r['profile']} tunes for this CPU"
    if hand:
        how += f"; {hand} kernel{'' if hand == 1 else 's'} (global pools, classifier) scheduled by hand"
    lines.append(f"compiled   {comp['kernels']} kernels in {comp['seconds']:.1f} s ({how})")
    if r.get("kernels", {}).get("by_kernel"):
        k = r["kernels"]
        top = ", ".join(f"{row['kernel']} {100 * row['share']:.0f} %" + (f" (x{row['calls']})" if row["calls"] > 1
                                                                         else "") for row in k["by_kernel"][:3])
        lines.append(f"kernels    {top}; timed alone they sum to {k['sum_us'] / 1e3:.3f} ms (report.json lists "
                     f"every kernel)")
    if not r["measured"]:
        lines.append(f"latency    not measured: {r['not_measured_because']}")
    search = r.get("search", {})
    if "stored_ms" in search and not r["latency_ms"]:
        lines.append(f"latency    {search['stored_ms']:.3f} ms as stored (measured on the device before; edgenas "
                     f"store import) for the budget {search['latency_budget_ms']:g} ms")
    if "predicted_ms" in search:
        low, high = search["predicted_interval_ms"]
        lines.append(f"latency    UNVERIFIED: predicted {search['predicted_ms']:.3f} ms (90 % interval "
                     f"{low:.3f}-{high:.3f} ms) for the budget {search['latency_budget_ms']:g} ms; measure the device "
                     f"to verify")
    for runtime, s in r["latency_ms"].items():
        flag = ("" if s["stable"] else "  (unstable: spread above 5%)") + (
            f"  (UNDER LOAD: other processes kept {s['other_cores']:.1f} cores busy; not used as support until "
            f"measured again)" if s.get("under_load") else "")
        lines.append(f"latency    {runtime:<12} p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms  "
                     f"min {s['min_ms']:.3f} ms  ({s['repeats']}x{s['number']} runs, {s['threads']} threads, "
                     f"{s['where']}){flag}")
    if "tvm_vs_onnxruntime" in r:
        lines.append(f"ratio      tvm / onnxruntime = {r['tvm_vs_onnxruntime']:.2f}")
    for _, _, verdict in budget_verdicts(r):
        lines.append(f"budget     {verdict}")
    lite = r.get("litert")
    if lite and "missing" in lite:
        lines.append(f"litert     {lite['missing']}")
    elif lite:
        lines.append(f"litert     {lite['file']} by {lite['converter']} in {lite['seconds']:.1f} s, LiteRT output "
                     f"within {lite['max_abs_error_vs_pytorch']:.2g} of PyTorch's")
        if "latency_here" in lite:
            s = lite["latency_here"]
            lines.append(f"litert     p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms on this machine "
                         f"({s['version']}, {s['threads']} threads; stored under profile 'host': it says nothing of "
                         f"the device)")
    for c in r.get("search", {}).get("candidates", []):  # reference measurements are taken before any prediction
        predicted = "reference point      " if c["predicted_ms"] is None else f"predicted {c['predicted_ms']:8.3f} ms"
        lines.append(f"candidate  {predicted}  measured {c['measured_ms']:9.3f} ms  "
                     f"{'fits  ' if c['fits'] else 'misses'}  {c['arch']}")
    return "\n".join(lines)


def write_html(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write report.png and report.html for `report` (the dict of report.json) into `out_dir`; return the
    HTML's path."""
    out_dir = Path(out_dir)
    png = out_dir / "report.png"
    _plot(report, png)
    page = out_dir / "report.html"
    page.write_text(_page(report, base64.b64encode(png.read_bytes()).decode()), encoding="utf-8")
    return page


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _ms(v: Any) -> str:
    return f"{v:.3f} ms" if _finite(v) else "–"


def _verdict(fits: bool | None) -> str:
    if fits is None:
        return '<span class="none">not checked</span>'
    return '<span class="fits">fits</span>' if fits else '<span class="misses">misses</span>'


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats in both latency (lower) and accuracy (higher), by latency."""
    front: list[tuple[float, float]] = []
    for ms, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or acc > front[-1][1]:
            front.append((ms, acc))
    return front


def _plot(report: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    budget = report["budgets"].get("latency_ms")
    candidates = report.get("search", {}).get("candidates", [])
    if candidates:
        _plot_predicted(left, candidates, budget)
        _plot_accuracy(right, candidates, budget, report["arch"])
    else:
        _plot_point(left, report, budget)
        _plot_runtimes(right, report["latency_ms"], budget)
    fig.savefig(path, dpi=100)


def _plot_predicted(ax, candidates: list[dict[str, Any]], budget: float | None) -> None:
    predicted = [c for c in candidates if c["predicted_ms"] is not None]
    for fits, colour, label in ((True, FITS, "fits"), (False, MISSES, "misses")):
        pts = [c for c in predicted if c["fits"] == fits]
        ax.scatter([c["predicted_ms"] for c in pts], [c["measured_ms"] for c in pts], color=colour, label=label)
    reference = [c["measured_ms"] for c in candidates if c["predicted_ms"] is None]
    if reference:  # no prediction: marked on the left edge at their measured latency
        ax.scatter([0] * len(reference), reference, marker=">", color=NEUTRAL, clip_on=False,
                   transform=ax.get_yaxis_transform(), label="reference (no prediction)")
    values = [c["measured_ms"] for c in candidates] + [c["predicted_ms"] for c in predicted] \
        + ([budget] if budget else [])
    pad = 0.06 * (max(values) - min(values)) or 0.1 * max(values)
    lo, hi = max(min(values) - pad, 0), max(values) + pad
    ax.plot([lo, hi], [lo, hi], color=NEUTRAL, lw=1, ls=":", label="measured = predicted")
    if budget:
        ax.axhline(budget, color=MISSES, lw=1, ls="--", label=f"budget {budget:g} ms")
        ax.axvline(budget, color=MISSES, lw=1, ls="--")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="predicted latency (ms)", ylabel="measured latency (ms)",
           title="Candidates: predicted vs measured")
    ax.legend(fontsize="small")


def _plot_accuracy(ax, candidates: list[dict[str, Any]], budget: float | None, pick: str) -> None:
    pts = [c for c in candidates if _finite(c.get("predicted_accuracy"))]
    for fits, colour, marker, label in ((True, FITS, "o", "fits"), (False, MISSES, "x", "misses")):
        sel = [c for c in pts if c["fits"] == fits]
        ax.scatter([c["measured_ms"] for c in sel], [c["predicted_accuracy"] for c in sel], color=colour,
                   marker=marker, label=label)
    front = _pareto([(c["measured_ms"], c["predicted_accuracy"]) for c in pts])
    if front:
        ax.plot(*zip(*front), color=NEUTRAL, lw=1, drawstyle="steps-post", label="Pareto front")
    for c in pts:
        if c["arch"] == pick:
            ax.scatter([c["measured_ms"]], [c["predicted_accuracy"]], s=260, facecolors="none",
                       edgecolors="#bf8700", linewidths=2, label="pick")
    if budget:
        ax.axvline(budget, color=MISSES, lw=1, ls="--", label=f"budget {budget:g} ms")
    ax.set(xlabel="measured latency (ms)", ylabel="predicted accuracy (%)", title="Accuracy vs latency")
    ax.legend(fontsize="small")


def _plot_point(ax, report: dict[str, Any], budget: float | None) -> None:
    tvm = report["latency_ms"].get("tvm")
    if tvm:
        ax.scatter([tvm["p50_ms"]], [report["costs"]["mflops"]], color=FITS if report.get(
            "fits_latency_budget", True) else MISSES, label="this network (TVM p50)")
    else:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
    if budget:
        ax.axvline(budget, color=MISSES, lw=1, ls="--", label=f"budget {budget:g} ms")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set(xlabel="latency (ms)", ylabel="MFLOPs", title="Measured latency vs budget")
    if tvm or budget:
        ax.legend(fontsize="small")


def _plot_runtimes(ax, latency: dict[str, Any], budget: float | None) -> None:
    if not latency:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
    else:
        names = [f"{n}\np50 {s['p50_ms']:.3f} ms" for n, s in latency.items()]
        ax.bar(names, [s["p50_ms"] for s in latency.values()], label="p50",
               color=[TVM if n == "tvm" else NEUTRAL for n in latency])
        ax.scatter(names, [s["p90_ms"] for s in latency.values()], marker="_", s=400, color="black", label="p90")
        if budget:
            ax.axhline(budget, color=MISSES, lw=1, ls="--", label=f"budget {budget:g} ms")
        ax.legend(fontsize="small")
    ax.set(ylabel="latency (ms)", title="Latency per runtime")


def _page(report: dict[str, Any], png_b64: str) -> str:
    e = lambda v: escape(str(v))  # noqa: E731
    budgets, costs, comp = report["budgets"], report["costs"], report["compile"]
    tvm = report["latency_ms"].get("tvm")
    search = report.get("search")
    if tvm:
        latency_value = f"TVM p50 {_ms(tvm['p50_ms'])}"
    elif search and "stored_ms" in search:
        latency_value = f"{_ms(search['stored_ms'])} as stored (measured on the device before this run)"
    elif search and "predicted_ms" in search:
        low, high = search["predicted_interval_ms"]
        latency_value = f"predicted {_ms(search['predicted_ms'])} (unverified; 90 % interval {low:.3f}–{high:.3f} ms)"
    else:
        latency_value = f"not measured: {report.get('not_measured_because', '')}"
    rows = [("latency", latency_value, _ms(budgets.get("latency_ms")), report.get("fits_latency_budget")),
            ("memory (weights + peak activations)", f"{costs['memory_mb']:.3f} MB",
             f"{budgets['memory_mb']:g} MB" if "memory_mb" in budgets else "–", report.get("fits_memory_budget"))]
    verdict = "".join(f"<tr><th>{e(name)}</th><td class=n>{e(value)}</td><td class=n>{e(limit)}</td>"
                      f"<td>{_verdict(fits)}</td></tr>" for name, value, limit, fits in rows)
    latency = "".join(
        f"<tr><th>{e(name)}</th><td class=n>{e(_ms(s['p50_ms']))}</td><td class=n>{e(_ms(s['p90_ms']))}</td>"
        f"<td class=n>{e(_ms(s['min_ms']))}</td><td class=n>{e(s['threads'])}</td><td>{e(s['where'])}</td>"
        f"<td>{'' if s['stable'] else '<span class=misses>unstable</span>'}</td></tr>"
        for name, s in report["latency_ms"].items())
    ratio = f"<p>TVM / onnxruntime (p50): <b>{report['tvm_vs_onnxruntime']:.2f}</b></p>" \
        if "tvm_vs_onnxruntime" in report else ""
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>edgenas report: {e(report['arch'])}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>edgenas report</h1><p>arch <code>{e(report['arch'])}</code><br>profile <b>{e(report['profile'])}"
        f"</b>, target <b>{e(report.get('target', '–'))}</b></p>",
        f"<h2>Budgets</h2><table><tr><th></th><th>value</th><th>budget</th><th>verdict</th></tr>{verdict}</table>",
    ]
    if search:
        parts.append(f"<p>Search: {'verified (measured within the budget)' if search['verified'] else 'not verified'}"
                     f", {e(search['new_measurements'])} new measurements, {e(search['stored_measurements_used'])} "
                     f"stored ones used.</p>")
    if latency:
        parts.append(f"<h2>Latency</h2><table><tr><th>runtime</th><th>p50</th><th>p90</th><th>min</th>"
                     f"<th>threads</th><th>where</th><th></th></tr>{latency}</table>{ratio}")
    parts.append(
        f"<h2>Costs and compile</h2><table><tr><th>MFLOPs</th><td class=n>{costs['mflops']:.1f}</td></tr>"
        f"<tr><th>parameters</th><td class=n>{costs['params']:,}</td></tr>"
        f"<tr><th>peak activations</th><td class=n>{costs['peak_activation_mb']:.3f} MB</td></tr>"
        f"<tr><th>compile time</th><td class=n>{comp['seconds']:.1f} s</td></tr>"
        f"<tr><th>kernels</th><td class=n>{comp['kernels']} ({len(comp['tuned'])} tuned, "
        f"{len(comp['fallback'])} fallback)</td></tr>"
        f"<tr><th>tuning database</th><td>{e(comp['tuning_db'] or 'none')}</td></tr></table>")
    if search and search["candidates"]:
        cand = "".join(
            f"<tr{' class=pick' if c['arch'] == report['arch'] else ''}><td class=n>{i}</td>"
            f"<td><code>{e(c['arch'])}</code>{' (pick)' if c['arch'] == report['arch'] else ''}</td>"
            f"<td class=n>{'reference' if c['predicted_ms'] is None else e(_ms(c['predicted_ms']))}</td>"
            f"<td class=n>{e(_ms(c['measured_ms']))}</td><td>{_verdict(c['fits'])}</td>"
            f"<td class=n>{e(f'{acc:.2f}' if _finite(acc := c.get('predicted_accuracy')) else '–')}</td></tr>"
            for i, c in enumerate(search["candidates"], 1))
        parts.append(f"<h2>Candidates</h2><table><tr><th>#</th><th>arch</th><th>predicted</th><th>measured</th>"
                     f"<th>budget</th><th>predicted accuracy</th></tr>{cand}</table>")
    parts.append(f'<h2>Plot</h2><img alt="edgenas report plot" src="data:image/png;base64,{png_b64}">'
                 f"</body></html>\n")
    return "\n".join(parts)
