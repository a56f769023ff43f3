"""The check of a search folder's own study (`search/TAG/study.db`) before a search opens it.

Optuna creates a study wherever it finds none, so an empty, replaced or foreign `study.db`
would silently start the search over and rewrite the outputs of the one that ran before.
`check_study_file` refuses that: a file that is not an intact SQLite database, or a database
without this search's study while the folder holds that search's results.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from nas.artifact_kinds import STUDY
from nas.readers import check_sqlite, damaged

STUDY_FILE = "study.db"
RESULTS = ("pareto.json", "trials.jsonl")


def _study_names(path: Path) -> set[str]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60) as db:
        names = {str(row[0]) for row in db.execute("SELECT study_name FROM studies")}
    db.close()
    return names


def check_study_file(folder: Path, study_name: str) -> None:
    """Raise `ArtifactError` when opening `folder/study.db` would lose earlier results.

    Args:
        folder: the search folder (`runs/NAME/search/TAG/`).
        study_name: the study the search resumes (its tag).
    """
    path = folder / STUDY_FILE
    results = [name for name in RESULTS if (folder / name).is_file()]
    has_tables = check_sqlite(path, STUDY, table="studies")
    if not results:
        return  # nothing to lose: a new or resumed search
    if not has_tables:
        state = "is missing" if not path.exists() else "holds no study"
        raise damaged(path, f"{state}, but the search wrote {results[0]} before; starting "
                      "over would replace its results", STUDY)
    try:
        names = _study_names(path)
    except sqlite3.DatabaseError as exc:
        raise damaged(path, f"is not an Optuna study ({exc})", STUDY) from None
    if study_name not in names:
        raise damaged(path, f"has no study '{study_name}' (it has {sorted(names)[:5]}), but "
                      f"the search wrote {results[0]} before", STUDY)
