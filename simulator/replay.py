"""`convsim replay`: the user turns of stored conversations, sent to other targets word for word."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scenarios import Condition
from simulator.config import RunConfig, TargetConfig
from simulator.manifest import check_compatible, run_personas, run_scenarios
from simulator.plan import ConversationSpec
from simulator.prepared import PreparedRun
from simulator.roles import judge_identity
from simulator.store import read_transcripts

__all__ = ["prepare_replay"]


def replay_plan(source: Path, targets: Sequence[TargetConfig], judge: str) -> list[ConversationSpec]:
    """One conversation per stored conversation and new target, with the stored user turns.

    Raises:
        FileErrors: the source run's manifest, or a file it names, cannot be used.
    """
    scenarios, personas = run_scenarios(source), run_personas(source)
    plan = []
    for transcript in read_transcripts(source):
        script = tuple((turn.content, turn.stage) for turn in transcript.turns if turn.role == "user")
        if transcript.kind != "conversation" or not script:
            continue
        persona = personas[transcript.persona] if transcript.persona else None
        for target in targets:
            plan.append(
                ConversationSpec(
                    "conversation",
                    scenarios[transcript.scenario],
                    persona,
                    Condition(transcript.condition),
                    target,
                    transcript.seed,
                    len(script),
                    judge,
                    replay=script,
                    replay_of=transcript.id,
                )
            )
    return plan


def prepare_replay(source: Path, config: RunConfig) -> PreparedRun:
    """A run of ``source``'s user turns against ``config.targets``, into ``config.out``.

    Raises:
        FileErrors: the source run cannot be read.
        ManifestMismatch: the output folder holds another run.
    """
    plan = replay_plan(source, config.targets, judge_identity(config))
    folder = config.output_dir()
    check_compatible(folder, config)
    scenarios = sorted(
        {spec.scenario.scenario.id: spec.scenario for spec in plan}.values(), key=lambda s: s.scenario.id
    )
    personas = sorted(
        {spec.persona.persona.id: spec.persona for spec in plan if spec.persona}.values(), key=lambda p: p.persona.id
    )
    return PreparedRun(config, folder, scenarios, personas, plan)
