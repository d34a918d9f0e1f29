"""Importers: third-party datasets turned into scenarios, and scenarios written as YAML files.

Each importer is a pure function from a dataset on disk to a list of :class:`Scenario`;
:func:`write_scenarios` writes them as ``<id>.yaml`` files that load through
:func:`scenarios.load_scenario`. A dataset that cannot be imported raises
:class:`DatasetError`, which names every problem as ``file:line:column: problem``.
"""

from scenarios.importers.readers import DatasetError, read_csv, read_jsonl, require_columns
from scenarios.importers.sycon import import_sycon
from scenarios.importers.table import TABLE_FIELDS, import_table
from scenarios.importers.truthfulqa import import_truthfulqa
from scenarios.importers.warm_paper import WarmPaperColumns, import_warm_paper, warm_paper_columns
from scenarios.importers.writing import write_scenarios

__all__ = [
    "TABLE_FIELDS",
    "DatasetError",
    "WarmPaperColumns",
    "import_sycon",
    "import_table",
    "import_truthfulqa",
    "import_warm_paper",
    "read_csv",
    "read_jsonl",
    "require_columns",
    "warm_paper_columns",
    "write_scenarios",
]
