"""Flow graphs: validation of inline flows (with positions), the networkx graph, the Mermaid drawing."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from personas import FileError, FileErrors
from scenarios import Flow, Label, StageKind, builtin_flows, builtin_scenarios, load_scenario
from simulator.cli import app

HEAD = """\
id: tiny
domain: medical
title: A tiny scenario
question: Is it so?
truth: It is not so.
false_belief: it is so
correction:
  references: [It is not so.]
anecdote: My aunt said so.
authority: my aunt
"""

GOOD_FLOW = """\
flow:
  start: open
  stages:
    open:
      kind: open
      next: {corrects: push, affirms: done, else: ask}
    push:
      kind: pushback
      next: {exhausted: done, corrects: push, else: ask}
    ask:
      kind: say
      user: "Please answer: {question}"
      next: {else: done}
    done:
      kind: end
"""


def write(folder: Path, flow: str, name: str = "tiny") -> tuple[Path, str]:
    """Write a scenario with ``flow`` under HEAD; return the path and the full text."""
    text = HEAD.replace("id: tiny", f"id: {name}") + flow
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path, text


def errors_of(path: Path) -> list[FileError]:
    """The errors loading the scenario gives; fails the test if it loads."""
    with pytest.raises(FileErrors) as caught:
        load_scenario(path)
    return caught.value.errors


def line_of(text: str, needle: str, start: int = 1) -> int:
    """1-based number of the first line at or after ``start`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text after line {start}")


def stage_head(text: str, stage: str) -> set[int]:
    """Lines an error about a whole stage may point at: its name, or the first line of its mapping."""
    name_line = line_of(text, f"    {stage}:")
    return {name_line, name_line + 1}


def only(errors: list[FileError], fragment: str) -> FileError:
    """The single error whose message holds ``fragment``."""
    matching = [e for e in errors if fragment in e.message]
    assert len(matching) == 1, errors
    return matching[0]


def test_a_good_inline_flow_loads(tmp_path: Path) -> None:
    path, _ = write(tmp_path, GOOD_FLOW)
    loaded = load_scenario(path)
    assert isinstance(loaded.scenario.flow, Flow)
    assert loaded.flow.problems() == []
    assert loaded.flow.start == "open"


def test_missing_start_stage(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("start: open", "start: begin"))
    error = only(errors_of(path), "start stage 'begin' is not defined")
    assert error.line == line_of(text, "start: begin")
    assert error.path == str(path)


def test_unreachable_stage(tmp_path: Path) -> None:
    flow = GOOD_FLOW.replace(
        "    done:\n", "    extra:\n      kind: say\n      user: hello\n      next: {else: done}\n    done:\n"
    )
    path, text = write(tmp_path, flow)
    error = only(errors_of(path), "cannot be reached")
    assert "'extra'" in error.message
    assert error.line in stage_head(text, "extra")


def test_stage_without_edges_for_some_labels_and_no_else(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("{corrects: push, affirms: done, else: ask}", "{corrects: push}"))
    error = only(errors_of(path), "has no edge for")
    assert error.line == line_of(text, "{corrects: push}")
    for label in ("hedges", "evades", "refuses", "affirms"):
        assert label in error.message
    assert "corrects" not in error.message.split("for", 1)[1]


def test_cycle_with_no_way_to_an_end(tmp_path: Path) -> None:
    flow = GOOD_FLOW.replace("user: \"Please answer: {question}\"\n      next: {else: done}",
                             "user: \"Please answer: {question}\"\n      next: {else: again}").replace(
        "    done:\n", "    again:\n      kind: say\n      user: Again?\n      next: {else: ask}\n    done:\n"
    )  # fmt: skip
    path, text = write(tmp_path, flow)
    errors = [e for e in errors_of(path) if "reaches an end stage" in e.message]
    assert {e.message.split("'")[1] for e in errors} == {"ask", "again"}
    for error in errors:
        stage = error.message.split("'")[1]
        assert error.line in stage_head(text, stage)


def test_flow_without_any_end_stage(tmp_path: Path) -> None:
    flow = GOOD_FLOW.replace("    done:\n      kind: end\n", "").replace("done", "ask")
    path, _ = write(tmp_path, flow)
    assert any("no `end` stage" in e.message for e in errors_of(path))


def test_edge_to_unknown_stage(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("affirms: done", "affirms: nowhere"))
    error = only(errors_of(path), "unknown stage 'nowhere'")
    assert error.line == line_of(text, "affirms: nowhere")
    assert error.column == text.splitlines()[error.line - 1].index("nowhere") + 1


def test_unknown_edge_key(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("{else: done}", "{else: done, maybe: done}"))
    error = only(errors_of(path), "unknown edge key 'maybe'")
    assert error.line == line_of(text, "maybe: done")


def test_pushback_stage_without_exhausted(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("{exhausted: done, corrects: push, else: ask}", "{else: ask}"))
    error = only(errors_of(path), "needs an `exhausted` edge")
    assert error.line == line_of(text, "next: {else: ask}")


def test_exhausted_edge_outside_a_pushback_stage(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("{else: done}", "{else: done, exhausted: done}"))
    error = only(errors_of(path), "only a pushback stage")
    assert error.line == line_of(text, "exhausted: done}")


def test_say_stage_without_user_text(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace('      user: "Please answer: {question}"\n', ""))
    error = only(errors_of(path), "needs a `user` text")
    assert "'ask'" in error.message
    assert error.line in stage_head(text, "ask")


def test_end_stage_with_edges(tmp_path: Path) -> None:
    path, text = write(tmp_path, GOOD_FLOW.replace("      kind: end\n", "      kind: end\n      next: {else: open}\n"))
    error = only(errors_of(path), "end stage 'done'")
    assert error.line in stage_head(text, "done")


def test_several_flow_errors_are_reported_together(tmp_path: Path) -> None:
    flow = GOOD_FLOW.replace("affirms: done", "affirms: nowhere").replace("{else: done}", "{else: done, maybe: done}")
    path, text = write(tmp_path, flow)
    assert [e.line for e in errors_of(path)] == [line_of(text, "nowhere"), line_of(text, "maybe")]


# --- the graph ------------------------------------------------------------------------------------


def test_graph_is_a_digraph_with_on_edge_attribute(tmp_path: Path) -> None:
    path, _ = write(tmp_path, GOOD_FLOW)
    graph = load_scenario(path).flow.graph()
    assert isinstance(graph, nx.DiGraph)
    assert set(graph.nodes) == {"open", "push", "ask", "done"}
    assert graph.nodes["push"]["kind"] is StageKind.PUSHBACK
    assert graph.edges["open", "push"]["on"] == {"corrects"}
    assert graph.edges["push", "push"]["on"] == {"corrects"}
    assert graph.edges["push", "done"]["on"] == {"exhausted"}
    assert graph.edges["open", "done"]["on"] == {"affirms"}
    assert not graph.has_edge("done", "open")


def test_graph_merges_keys_that_lead_to_the_same_stage(tmp_path: Path) -> None:
    path, _ = write(tmp_path, GOOD_FLOW.replace("{else: done}", "{corrects: done, hedges: done, else: done}"))
    graph = load_scenario(path).flow.graph()
    assert graph.edges["ask", "done"]["on"] == {"corrects", "hedges", "else"}


def edge_keys(graph: nx.DiGraph[str]) -> dict[tuple[str, str], set[str]]:
    """(source, target) -> the keys that select the edge."""
    return {(source, target): set(data["on"]) for source, target, data in graph.edges(data=True)}


def test_every_builtin_flow_is_valid_and_branches_on_the_label() -> None:
    labels = {str(label) for label in Label}
    flows = dict(builtin_flows())
    flows.update({f"scenario {k}": v.flow for k, v in builtin_scenarios().items()})
    for name, flow in flows.items():
        assert flow.problems() == [], name
        keys_by_source: dict[str, set[str]] = {}
        for (source, _), keys in edge_keys(flow.graph()).items():
            keys_by_source.setdefault(source, set()).update(keys)
        branching = [node for node, keys in keys_by_source.items() if len(keys & labels) >= 2]
        assert branching, f"flow {name} never branches on the reply's label"


# --- Mermaid --------------------------------------------------------------------------------------

runner = CliRunner()
EDGE = re.compile(r"^\s*(\w+) -->\|([^|]+)\| (\w+)$")
NODE = re.compile(r'^\s*(\w+)[\[(]+"([^"<]+)')
MERMAID_KEYWORDS = {"end", "graph", "subgraph", "flowchart", "style", "class", "classDef", "click", "linkStyle"}


def drawn_flow(stdout: str) -> tuple[dict[str, str], dict[tuple[str, str], set[str]]]:
    """From a Mermaid flowchart: node id -> stage name, and (source, target) stage names -> edge keys."""
    lines = stdout.splitlines()
    names = {m[1]: m[2] for m in map(NODE.match, lines) if m}
    edges = {(names[m[1]], names[m[3]]): set(m[2].split(" / ")) for m in map(EDGE.match, lines) if m}
    return names, edges


def test_cli_graph_prints_a_mermaid_flowchart_with_every_edge() -> None:
    result = runner.invoke(app, ["scenarios", "graph", "antibiotics-flu"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("flowchart")
    names, edges = drawn_flow(result.stdout)
    graph = builtin_scenarios()["antibiotics-flu"].flow.graph()
    assert set(graph.nodes) <= set(names.values())
    assert edges == edge_keys(graph)


def test_cli_graph_of_unknown_scenario_exits_2() -> None:
    result = runner.invoke(app, ["scenarios", "graph", "no-such-scenario"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_cli_graph_does_not_use_mermaid_keywords_as_node_ids() -> None:
    # Mermaid breaks on a node called `end` (the standard flow's terminal stage)
    result = runner.invoke(app, ["scenarios", "graph", "antibiotics-flu"])
    names, _ = drawn_flow(result.stdout)
    assert "end" in names.values()
    linked = {end for m in map(EDGE.match, result.stdout.splitlines()) if m for end in (m[1], m[3])}
    assert not (set(names) | linked) & MERMAID_KEYWORDS
