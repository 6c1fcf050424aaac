"""`medtalk-data report`: one self-contained HTML page, opened in a real headless Chromium.

The browser test needs Debian's ``chromium`` + ``chromium-driver`` and the ``selenium`` package; it
skips without them on a developer machine and fails on CI (CI=1), which installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from medtalk_cli.data import cli
from medtalk_data.errors import MedtalkError
from medtalk_data.inspect.report import CLIP_PLOTS, OVERVIEW_PLOTS, pick_clips, render_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver; pip install selenium==4.51.0"


class _Page(HTMLParser):
    """Every tag with its attributes, and the visible text, of a report page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


@pytest.fixture(scope="module")
def report_html(training_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, str]:
    """The report of the 15-clip manifest, written once through the CLI: (path, seconds, CLI output)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["report", str(training_manifest), "-o", str(out)])
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    return out, elapsed, result.output


def _chrome_or_skip():
    """A headless Chromium driver, or a skip (developer machine) / failure (CI) that names what is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"headless browser check needs {', '.join(missing)} ({INSTALL_HINT})"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install them")
        pytest.skip(message)
    return webdriver, Service


@pytest.mark.realdata
def test_report_loads_in_headless_chromium(report_html: tuple[Path, float, str], tmp_path: Path) -> None:
    page, elapsed, output = report_html
    webdriver, service_class = _chrome_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1600",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=service_class(executable_path=str(CHROMEDRIVER)))
    try:
        driver.set_page_load_timeout(60)
        driver.get(page.resolve().as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.execute_script(
            "return [...document.querySelectorAll('img[data-plot]')].map(i => ({plot: i.dataset.plot, "
            "clip: i.dataset.clip || null, complete: i.complete, width: i.naturalWidth, alt: i.alt}))"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        clip_sections = driver.execute_script("return document.querySelectorAll('section.clip').length")
        toc_targets = driver.execute_script(
            "return [...document.querySelectorAll('#toc a')].map(a => !!document.querySelector(a.hash))"
        )
        driver.execute_script("console.warn('medtalk-report-probe')")  # proves the console is being read
        probe = driver.get_log("browser")
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()

    assert errors == [], errors
    assert any("medtalk-report-probe" in e["message"] for e in probe), probe
    assert images and all(i["complete"] and i["width"] > 0 for i in images), [i for i in images if not i["width"]]
    assert all(i["alt"].strip() for i in images)
    plots = {i["plot"] for i in images}
    assert set(OVERVIEW_PLOTS) <= plots
    assert clip_sections >= 1
    assert sum(i["plot"] == "clip_timeline" for i in images) == clip_sections
    assert "clip_frames" in plots  # the talking clips' videos are there: frames with landmarks
    assert toc_targets and all(toc_targets)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    width, height = struct.unpack(">II", png[16:24])
    assert width > 0 and height > 0
    print(f"report of the 15-clip manifest: {elapsed:.1f} s; {output.strip().splitlines()[-1]}")


@pytest.mark.realdata
def test_report_is_self_contained_with_named_plots(report_html: tuple[Path, float, str]) -> None:
    page_path, _, output = report_html
    text = page_path.read_text(encoding="utf-8")
    page = _Page(text)
    assert "12 of 15 clips" in output
    for tag, attrs in page.tags:  # nothing to fetch: every src/href is inline or an anchor
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, attrs[key][:80])
    assert not page.find("script")
    assert any("default-src 'none'" in a.get("content", "") for a in page.find("meta"))
    images = [a for t, a in page.tags if t == "img"]
    assert images and all(a.get("data-plot") in (*OVERVIEW_PLOTS, *CLIP_PLOTS) for a in images)
    assert all(a["src"].startswith("data:image/png;base64,") and a["alt"] for a in images)
    for name in OVERVIEW_PLOTS:
        assert len(page.find("img", **{"data-plot": name})) == 1, name
    sections = [a for t, a in page.tags if t == "section" and a.get("class") == "clip"]
    assert len(sections) == 12
    # spread over emotions: the five MEAD emotions and the unlabelled talking clips all appear
    manifest_emotions = {"angry", "happy", "neutral", "sad", "surprise", "unlabelled"}
    toc = "".join(page.text)
    assert all(e in toc for e in manifest_emotions)
    for section in sections:
        assert page.find("img", **{"data-plot": "clip_timeline", "data-clip": section["data-clip"]})


def _patched_manifest(training_manifest: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the manifest whose clips lost their video, their extraction folder, or became audio-only."""
    manifest = tmp_path / "manifest"
    shutil.copytree(training_manifest, manifest)
    clips = pq.read_table(manifest / "clips.parquet")
    ids = clips["clip_id"].to_pylist()
    video_gone, folder_gone, audio_only = ids[0], ids[1], ids[-1]
    extraction = Path(clips["extraction_dir"][0].as_py())
    moved = tmp_path / "extracted"
    (moved / "clips").mkdir(parents=True)
    shutil.copytree(extraction / "clips" / video_gone, moved / "clips" / video_gone)
    status_file = moved / "clips" / video_gone / "status.json"
    status = json.loads(status_file.read_text(encoding="utf-8"))
    status["source"]["path"] = str(tmp_path / "deleted.mp4")
    status_file.write_text(json.dumps(status), encoding="utf-8")
    dirs = [
        str(moved) if c == video_gone else str(tmp_path / "gone") if c == folder_gone else d
        for c, d in zip(ids, clips["extraction_dir"].to_pylist(), strict=True)
    ]
    kinds = pc.if_else(pc.equal(clips["clip_id"], audio_only), "audio", clips["kind"])
    clips = clips.set_column(clips.schema.get_field_index("extraction_dir"), "extraction_dir", pa.array(dirs))
    clips = clips.set_column(clips.schema.get_field_index("kind"), "kind", kinds)
    original = pq.read_schema(manifest / "clips.parquet").metadata  # carries the schema version
    pq.write_table(clips.replace_schema_metadata(original), manifest / "clips.parquet")
    return manifest, {"video": video_gone, "folder": folder_gone, "audio": audio_only}


@pytest.mark.realdata
def test_missing_video_folder_and_audio_only_are_said_not_fatal(training_manifest: Path, tmp_path: Path) -> None:
    manifest, which = _patched_manifest(training_manifest, tmp_path)
    chosen = [which["video"], which["folder"], which["audio"]]
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(cli, ["report", str(manifest), "-o", str(out), "--clips", ",".join(chosen)])
    assert result.exit_code == 0, result.output
    assert "Source video missing" in result.output and "deleted.mp4" in result.output
    assert "No per-frame face data" in result.output
    assert "Audio-only clip" in result.output
    page = _Page(out.read_text(encoding="utf-8"))
    assert [a["data-clip"] for t, a in page.tags if t == "section" and a.get("class") == "clip"] == chosen
    assert len(page.find("img", **{"data-plot": "clip_timeline"})) == 3  # curves come from the manifest itself
    assert not page.find("img", **{"data-plot": "clip_frames"})
    assert len(page.find("p", **{"class": "note"})) == 3


@pytest.mark.realdata
def test_bad_arguments_exit_2(training_manifest: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(cli, ["report", str(training_manifest), "-o", str(tmp_path / "r.html"), "--clips", "x"])
    assert unknown.exit_code == 2 and "not in the manifest: x" in unknown.output
    empty = runner.invoke(cli, ["report", str(training_manifest), "--clips", " , "])
    assert empty.exit_code == 2
    assert not (tmp_path / "r.html").exists()
    overview_only = tmp_path / "overview.html"
    result = runner.invoke(cli, ["report", str(training_manifest), "-o", str(overview_only), "-n", "0"])
    assert result.exit_code == 0, result.output
    assert "No clips chosen" in overview_only.read_text(encoding="utf-8")


def test_not_a_manifest_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "not a manifest" in result.output


def test_pick_clips_spreads_over_emotions_and_speakers() -> None:
    rows = [
        ("a1", "angry", "s1"),
        ("a2", "angry", "s1"),
        ("a3", "angry", "s2"),
        ("h1", "happy", "s1"),
        ("n1", None, "s3"),
        ("n2", None, "s3"),
    ]
    table = pa.table({k: [r[i] for r in rows] for i, k in enumerate(("clip_id", "emotion", "speaker"))})
    assert pick_clips(table, 3) == ["a1", "h1", "n1"]  # one per emotion first, unlabelled last
    assert pick_clips(table, 5) == ["a1", "h1", "n1", "a3", "n2"]  # then the other speaker before s1's second
    assert len(pick_clips(table, 100)) == 6
    assert pick_clips(table, 0) == []
    assert pick_clips(table, 2, ["n2", "a1", "n2"]) == ["n2", "a1"]  # as asked, beyond the limit, no repeats
    with pytest.raises(MedtalkError, match="zz"):
        pick_clips(table, 3, ["a1", "zz"])


def test_render_report_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(MedtalkError):
        render_report(tmp_path, tmp_path / "r.html")
