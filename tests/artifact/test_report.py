"""report.html and report.png: from a real small compile, and from a realistic search section."""
from __future__ import annotations

import base64
import copy
from html.parser import HTMLParser

import pytest
from matplotlib.image import imread

from edgenas.artifact.report import write_html
from edgenas.pipeline.compile import compile_artifact

from ..conftest import ARCH

VOID = {"meta", "img", "br"}
# A realistic search under a 0.5 ms budget: three reference cells (no prediction yet), two misses, one fit.
CANDIDATES = [
    {"arch": "|skip_connect~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|skip_connect~2|",
     "predicted_ms": None, "measured_ms": 0.262, "fits": True, "predicted_accuracy": 84.1},
    {"arch": "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
     "predicted_ms": None, "measured_ms": 0.881, "fits": False, "predicted_accuracy": 89.7},
    {"arch": "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|",
     "predicted_ms": None, "measured_ms": 0.433, "fits": True, "predicted_accuracy": 87.2},
    {"arch": "|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
     "predicted_ms": 0.47, "measured_ms": 0.507, "fits": False, "predicted_accuracy": 90.3},
    {"arch": "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
     "predicted_ms": 0.455, "measured_ms": 0.514, "fits": False, "predicted_accuracy": float("nan")},
    {"arch": "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
     "predicted_ms": 0.468, "measured_ms": 0.476, "fits": True, "predicted_accuracy": 89.9},
]


class Page(HTMLParser):
    """Parses the page, checking that every element is closed in order; keeps the text and image sources."""

    def __init__(self, text: str):
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed elements {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data):
        if self.stack[-1:] != ["style"]:
            self.text.append(data)


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory, small):
    out = tmp_path_factory.mktemp("report")
    return compile_artifact("host", ARCH, out / "art", space=small, db=out / "store.sqlite")


def check_files(out, page: Page, size=(450, 1100)):
    png = out / "report.png"
    image = imread(png)
    assert image.shape[:2] == size and image.std() > 0  # drawn, not blank
    assert page.images == ["data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()]


def test_compile_writes_the_html_report(small_artifact):
    out, report = small_artifact.directory, small_artifact.report
    page = Page((out / "report.html").read_text())
    check_files(out, page)
    text = " ".join(page.text)
    assert ARCH in text and "host" in text and report["target"] in text
    assert "fits" in text  # a small network meets the host's 10 ms and 64 MB budgets
    assert "TVM / onnxruntime" in text and f"{report['tvm_vs_onnxruntime']:.2f}" in text
    assert f"{report['costs']['mflops']:.1f}" in text and f"{report['compile']['kernels']} (" in text
    assert not {"script", "link"} & set(page.tags)  # self-contained: the one image is a data URI


def test_search_report_shows_every_candidate_and_the_pick(small_artifact, tmp_path):
    report = copy.deepcopy(small_artifact.report)
    report["latency_ms"]["tvm"].update(p50_ms=0.476, p90_ms=0.49, min_ms=0.468)
    report["latency_ms"]["onnxruntime"].update(p50_ms=0.626, p90_ms=0.64, min_ms=0.61)
    report.update(arch=CANDIDATES[-1]["arch"], budgets={"latency_ms": 0.5, "memory_mb": 64},
                  fits_latency_budget=True, tvm_vs_onnxruntime=0.7604, search={
                      "latency_budget_ms": 0.5, "memory_budget_mb": 64, "stored_measurements_used": 0,
                      "new_measurements": 6, "verified": True, "accuracy_prior": "cifar10",
                      "candidates": CANDIDATES})
    page = Page(write_html(report, tmp_path).read_text())
    check_files(tmp_path, page)
    text = " ".join(page.text)
    for c in CANDIDATES:
        assert c["arch"] in text
    assert text.count("reference") == 3 and text.count("(pick)") == 1
    assert text.count("misses") == 3 and "verified" in text and "TVM p50 0.476 ms" in text and "0.76" in text


def test_unmeasured_report_and_escaping(small_artifact, tmp_path):
    report = copy.deepcopy(small_artifact.report)
    evil = "<script>alert('x')</script> & co"
    report.update(profile=evil, measured=False, latency_ms={}, not_measured_because="--no-measure")
    del report["tvm_vs_onnxruntime"], report["fits_latency_budget"]
    html = write_html(report, tmp_path).read_text()
    page = Page(html)
    check_files(tmp_path, page)
    assert "script" not in page.tags and evil in " ".join(page.text)
    assert "&lt;script&gt;" in html and "not measured: --no-measure" in " ".join(page.text)
