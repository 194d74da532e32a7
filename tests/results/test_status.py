"""The trial statuses, defined once (results.status): the members are keras-tuner's strings, the sets say which
statuses ended and which have a score, and no other module spells a status out."""
import json
import re
from pathlib import Path

import keras_tuner as kt
import pandas as pd

import hpstudy
from hpstudy.results.status import ENDED, SCORED, TrialStatus

PACKAGE = Path(hpstudy.__file__).parent
SPELLED = re.compile(r"""["'](COMPLETED|RUNNING|FAILED|INVALID|PRUNED|STOPPED|IDLE)["']""")   # a status as text


def test_members_are_the_strings_keras_tuner_writes():
    theirs = {value for name, value in vars(kt.engine.trial.TrialStatus).items() if name.isupper()}
    assert theirs == {s.value for s in TrialStatus} - {"PRUNED"}
    assert TrialStatus.COMPLETED == "COMPLETED" and TrialStatus("PRUNED") is TrialStatus.PRUNED
    # Printed, formatted and written as the plain string (never "TrialStatus.PRUNED").
    assert (str(TrialStatus.PRUNED), f"{TrialStatus.PRUNED}", f"{TrialStatus.FAILED:>7}") == ("PRUNED", "PRUNED",
                                                                                              " FAILED")
    assert json.dumps({"status": TrialStatus.FAILED}) == '{"status": "FAILED"}'


def test_ended_and_scored_sets():
    assert SCORED == {"COMPLETED", "PRUNED"}
    # A pruned trial ended (keras-tuner records it COMPLETED, the trials table PRUNED): counted in either form.
    assert ENDED == {"COMPLETED", "PRUNED", "FAILED", "INVALID"} and SCORED < ENDED
    assert TrialStatus.RUNNING not in ENDED and TrialStatus.IDLE not in ENDED and TrialStatus.STOPPED not in ENDED


def test_a_table_read_from_files_compares_with_the_members():
    table = pd.DataFrame({"status": ["COMPLETED", "PRUNED", "RUNNING", "FAILED", "INVALID"]})
    assert table.status.isin(ENDED).tolist() == [True, True, False, True, True]
    assert table.status.isin(SCORED).sum() == 2
    assert (table.status == TrialStatus.RUNNING).tolist() == [False, False, True, False, False]


def test_no_module_spells_a_status_out():
    found = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py") if path.name != "status.py"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if SPELLED.search(line)]
    assert found == []


def test_the_spelling_check_can_fail():
    assert SPELLED.search('done = table[table.status == "COMPLETED"]') and SPELLED.search("{'PRUNED': 1}")
    assert not SPELLED.search("done = table[table.status == TrialStatus.COMPLETED]")
