"""Scenarios: false beliefs to talk about, their flow graphs, conditions and transcripts.

Imports only ``personas`` (for file loading and errors).
"""

from scenarios.conditions import (
    BELIEF_STATEMENT,
    DEFAULT_CONDITIONS,
    DENIAL_STATEMENT,
    NEUTRAL_FRAME,
    OPENING,
    Condition,
)
from scenarios.flow import ELSE, EXHAUSTED, Flow, Stage, StageKind, UserText
from scenarios.labels import REPLY_LABELS, Label
from scenarios.library import (
    LoadedScenario,
    builtin_flows,
    builtin_scenarios,
    load_scenario,
    resolve_scenarios,
)
from scenarios.model import TEMPLATE_VARIABLES, Correction, Domain, Probe, Scenario
from scenarios.system_prompts import builtin_system_prompts, system_prompt
from scenarios.transcript import Judgement, Status, TokenLogprobs, Transcript, Turn

__all__ = [
    "BELIEF_STATEMENT",
    "DEFAULT_CONDITIONS",
    "DENIAL_STATEMENT",
    "ELSE",
    "EXHAUSTED",
    "NEUTRAL_FRAME",
    "OPENING",
    "REPLY_LABELS",
    "TEMPLATE_VARIABLES",
    "Condition",
    "Correction",
    "Domain",
    "Flow",
    "Judgement",
    "Label",
    "LoadedScenario",
    "Probe",
    "Scenario",
    "Stage",
    "StageKind",
    "Status",
    "TokenLogprobs",
    "Transcript",
    "Turn",
    "UserText",
    "builtin_flows",
    "builtin_scenarios",
    "builtin_system_prompts",
    "load_scenario",
    "resolve_scenarios",
    "system_prompt",
]
