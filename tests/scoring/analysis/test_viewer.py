"""The static viewer: its data, and the page itself driven in headless Chromium."""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scenarios import Transcript, system_prompt
from scoring.analysis.palette import series_styles
from scoring.analysis.stats import wilson_interval
from scoring.analysis.viewer import conversation_records, write_viewer
from tests.helpers import LABELS, write_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _embedded(page: str) -> list[dict[str, Any]]:
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None
    data: list[dict[str, Any]] = json.loads(match.group(1))
    return data


def test_records_carry_labels_metrics_and_series(tmp_path: Path) -> None:
    records = conversation_records([write_run(tmp_path / "base", ("base",)), write_run(tmp_path / "warm", ("warm",))])
    by_id = {r["id"]: r for r in records}
    row = by_id["warm-emotional+false_belief-p2"]
    assert row["labels"] == ["hedges", "affirms", "corrects", "affirms"] and (row["tof"], row["nof"]) == (0, 2)
    assert row["series"] == "warm" and row["capitulation"] == 4
    failed = by_id["base-emotional+false_belief-p3"]
    assert failed["labels"] == ["corrects", "error"] and failed["usable"] == [True, False]
    assert {r["series"] for r in conversation_records([write_run(tmp_path / "a"), write_run(tmp_path / "b")])} == {
        "a / base", "a / warm", "b / base", "b / warm"
    }  # fmt: skip
    assert len(conversation_records([tmp_path / "base"], limit=3)) == 3


def test_page_is_self_contained_and_script_safe(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run")
    lines = (folder / "transcripts.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["turns"][1]["content"] = "</script><script>window.pwned = 1</script> & <b>bold</b>"
    lines[0] = json.dumps(record)
    (folder / "transcripts.jsonl").write_text("\n".join(lines) + "\n")
    page = write_viewer([folder], tmp_path / "viewer.html").read_text()
    assert page.count("<script") == 3 and "src=" not in page and "http" not in page.replace("http-equiv", "")
    data = _embedded(page)
    assert data[0]["turns"][1]["content"].startswith("</script>")
    assert len(data) == 19


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_FLAGS)
        yield browser
        browser.close()


def _colour_present(png: bytes, hex_colour: str) -> bool:
    from matplotlib import image

    pixels = (image.imread(io.BytesIO(png), format="png")[..., :3] * 255).round().astype(int)
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(pixels - target).max(axis=-1) <= 2).sum() > 30)


def test_viewer_in_headless_chromium(browser: Any, tmp_path: Path) -> None:
    runs = [write_run(tmp_path / "base", ("base",)), write_run(tmp_path / "warm", ("warm",))]
    folder = runs[0]
    lines = (folder / "transcripts.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["turns"][1]["content"] = "</script><script>window.pwned = 1</script>"
    lines[0] = json.dumps(record)
    (folder / "transcripts.jsonl").write_text("\n".join(lines) + "\n")
    viewer = write_viewer(runs, tmp_path / "viewer.html")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(viewer.as_uri())

    count = lambda: int(page.locator("#count").get_attribute("data-n"))  # noqa: E731
    assert count() == 17 and page.locator("#rows tbody tr").count() == 17  # conversations, not knowledge checks
    assert page.evaluate("window.pwned") is None

    # the decay curve: one point per series and turn, rates as counted by hand (the failed conversation left out)
    points = page.locator("#plot circle.point")
    assert points.count() == 8
    rate = lambda series, turn: float(  # noqa: E731
        page.locator(f'#plot circle[data-series="{series}"][data-turn="{turn}"]').get_attribute("data-rate")
    )
    assert rate("base", 1) == 6 / 8 and rate("warm", 1) == 4 / 8 and rate("warm", 2) == 2 / 8
    assert page.locator('#plot circle[data-series="base"][data-turn="4"]').get_attribute("data-n") == "7"

    # filters
    page.select_option("#f-label", "affirms")
    assert count() == sum("A" in letters for letters in LABELS.values())  # 9
    page.select_option("#f-condition", "false_belief")
    assert count() == 3  # base CCCA, warm AAAA, warm CCAA
    page.click("#clear")
    page.fill("#f-search", "p2")
    assert count() == 8

    # a click on a point filters the table to the conversations behind it
    page.click("#clear")
    page.locator('#plot circle[data-series="warm"][data-turn="4"]').click()
    assert count() == 7  # warm conversations with a usable fourth reply (the two e+fb ones have 3 and 4 replies)
    ids = page.locator("#rows tbody tr td:first-child").all_text_contents()
    assert all(i.startswith("warm-") for i in ids) and "warm-emotional+false_belief-p1" not in ids
    assert "warm, turn 4" in page.locator("#point-filter").text_content()
    page.click("#clear-point")
    assert count() == 17

    # sorting and reading one conversation
    page.click('#rows th[data-field="tof"]')
    page.click('#rows th[data-field="tof"]')  # descending
    first = page.locator("#rows tbody tr").first
    assert first.locator("td").nth(7).text_content() == "4"
    page.locator("#rows tbody tr", has_text="warm-emotional+false_belief-p2").click()
    detail = page.locator("#detail")
    assert detail.locator("h2").text_content() == "warm-emotional+false_belief-p2"
    labels = detail.locator(".turn.assistant").evaluate_all("nodes => nodes.map(n => n.dataset.label)")
    assert labels == ["hedges", "affirms", "corrects", "affirms"]
    assert "evidence for hedges" in detail.text_content()

    # the new parts: y-axis title, interval whiskers, the label squares' colour key, the system prompt
    assert page.locator("#y-title").text_content() == "correction rate"
    whisker = page.locator('#plot g.whisker[data-series="base"][data-turn="1"]')  # 6 of 8: Wilson
    low, high = wilson_interval(6, 8)
    assert float(whisker.get_attribute("data-low")) == pytest.approx(low, abs=1e-4)
    assert float(whisker.get_attribute("data-high")) == pytest.approx(high, abs=1e-4)
    assert page.locator("#plot g.whisker").count() == 8  # every point here stands on 7 or 8 replies
    keys = page.locator("#label-key .key").evaluate_all("nodes => nodes.map(n => n.dataset.label)")
    assert keys == ["corrects", "hedges", "evades", "affirms", "refuses", "error"]
    refuses = page.locator('#label-key .key[data-label="refuses"] .sq')
    refuses = refuses.evaluate("n => getComputedStyle(n).backgroundColor")
    assert refuses == "rgb(106, 27, 154)"  # LABEL_COLORS["refuses"], the figures' colour
    assert "You are a warm, caring companion." in detail.locator(".turn.system").text_content()
    page.locator("#rows tbody tr", has_text="base-neutral-p1").click()
    assert system_prompt("neutral") in page.locator("#detail .turn.system").text_content()
    colours = series_styles(["base", "warm"])
    assert page.locator('#plot circle[data-series="warm"]').first.get_attribute("fill") == colours["warm"].color

    shot = page.screenshot(path=str(tmp_path / "viewer.png"), full_page=False)
    assert shot.startswith(b"\x89PNG")
    assert _colour_present(shot, "#1f77b4") and _colour_present(shot, "#ff7f0e")  # both series' lines
    assert _colour_present(shot, "#2e7d32") and _colour_present(shot, "#c62828")  # corrects and affirms
    assert errors == []
    page.close()


def test_transcripts_round_trip_through_the_page_data(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "run")
    data = _embedded(write_viewer([folder], tmp_path / "v.html").read_text())
    originals = {
        t.id: t for t in map(Transcript.model_validate_json, (folder / "transcripts.jsonl").read_text().splitlines())
    }
    for record in data:
        assert [t["content"] for t in record["turns"]] == [t.content for t in originals[record["id"]].turns]


def test_viewer_and_report_fit_1280_pixels(browser: Any, tmp_path: Path) -> None:
    """At 1280x800 the viewer's body does not overflow sideways; the report's wide tables scroll in their box."""
    from scoring.analysis import load
    from scoring.analysis.report import SMALL_N, build_report, write_report

    runs = [write_run(tmp_path / "base", ("base",)), write_run(tmp_path / "warm", ("warm",))]
    viewer = write_viewer(runs, tmp_path / "viewer.html")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(viewer.as_uri())
    page.locator("#rows tbody tr").first.click()
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    assert page.locator("#label-key").is_visible() and page.locator("#detail .turn.system").is_visible()
    page.screenshot(path=str(tmp_path / "viewer-1280.png"))

    frames = load(runs)
    write_report(build_report(frames, n_boot=50), frames, tmp_path / "report")
    page.goto((tmp_path / "report" / "report.html").as_uri())
    assert page.evaluate(overflow) <= 0
    headings = page.locator("h2").all_text_contents()
    new_parts = ("What produced this report", "Paired comparison: base vs warm",
                 "Paired comparison by turn: base vs warm", "Turn of first correction and of capitulation")  # fmt: skip
    assert set(new_parts) <= set(headings)
    provenance = page.locator("#provenance + p + div.scroll table")
    assert "You are a warm, caring companion." in provenance.text_content()
    assert SMALL_N in page.locator("#decay + p + div.scroll table").text_content()  # 2 conversations per cell
    widest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('div.scroll')].map(d => d.scrollWidth - d.clientWidth))"
    )
    assert widest > 0  # some table is wider than the page: it scrolls inside its box
    assert page.locator("div.scroll").first.evaluate("n => getComputedStyle(n).overflowX") == "auto"
    shot = page.screenshot(path=str(tmp_path / "report.png"))
    assert shot.startswith(b"\x89PNG") and errors == []
    page.close()
