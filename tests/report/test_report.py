"""Reports: the trials table, effects of each hyperparameter, every format, the CLI, running studies."""
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from hpstudy.analysis import effects, importance as importance_module, statistics, verdicts
from hpstudy.cli import main
from hpstudy.errors import HpstudyError
from hpstudy.report import pages as report, tables
from hpstudy.results.folder import open_folder, study_of
from hpstudy.results.trials import read_trials
from tests.helpers import SIX, write_study

TUNED = ["model.dropout", "preprocess.flip", "train.batch_size"]


@pytest.fixture(scope="session")
def six_study(tmp_path_factory):
    """A real 8-trial grid search (2 x 2 x 2), run once for the session: its results folder."""
    import hpstudy
    folder = tmp_path_factory.mktemp("six")
    return hpstudy.run(write_study(folder, SIX, name="six"), results_dir=folder / "results").path


@pytest.fixture
def running_study(six_study, tmp_path):
    """A copy of six_study caught mid-search (another process holds its lock): trial 3 RUNNING with no metrics,
    trial 4 FAILED, a trial folder with no trial.json yet and one whose trial.json is half written."""
    copy = tmp_path / "running"
    shutil.copytree(six_study, copy)
    tuner = copy / "tuner"

    def edit(number, **changes):
        path = next(tuner.glob(f"trial_*{number}/trial.json"))
        trial = json.loads(path.read_text())
        trial.update(changes)
        path.write_text(json.dumps(trial))
    edit(3, status="RUNNING", score=None, best_step=0, metrics={"metrics": {}}, message=None)
    shutil.rmtree(copy / "trials" / "3")
    edit(4, status="FAILED", score=None, metrics={"metrics": {}}, message="Traceback ...\nValueError: boom")
    (tuner / "trial_0008").mkdir()
    (tuner / "trial_0009").mkdir()
    (tuner / "trial_0009" / "trial.json").write_text('{"trial_id": "0009", "hyperpa')
    # The run that writes it holds the folder's lock, in a process of its own.
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(copy / ".hpstudy.lock")], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    yield copy
    holder.kill()
    holder.wait()


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def test_a_half_written_trial_of_a_finished_study_is_named(running_study):
    (running_study / ".hpstudy.lock").unlink()       # no run holds the folder: the file is damaged, not being written
    with pytest.raises(HpstudyError, match=r"trial_0009/trial.json: is corrupt \(not valid JSON"):
        tables.build([running_study])


def raw_trials(folder):
    return read_trials(open_folder(folder))


# ---------------------------------------------------------------- the trials table
def test_trials_table_of_a_finished_study(finished_study):
    folder, _ = finished_study
    table = tables.trials_table([folder])
    raw = raw_trials(folder)
    assert sorted(table.trial_id) == sorted(raw.trial_id) and len(table) == 2
    assert list(table.columns[:4]) == ["trial_id", "status", "model.dropout", "score"]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "gap", "test_loss",
                   "test_accuracy", "best_epoch", "epochs_run", "seconds", "params", "status"):
        assert column in table
    assert list(table.columns).index("gap") == list(table.columns).index("val_accuracy") + 1
    assert np.allclose(table.gap, table.accuracy - table.val_accuracy)
    assert table.score.is_monotonic_decreasing                  # val_accuracy: best (highest) first
    assert table.test_accuracy.notna().sum() == 1 and pd.notna(table.test_accuracy[0])


def test_a_folder_from_before_trainable_params_reads_and_reports_them_as_missing(finished_study, tmp_path, capsys):
    folder, _ = finished_study
    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    for record in copy.glob("trials/*/execution_*.json"):     # as an hpstudy that did not record them wrote it
        execution = json.loads(record.read_text())
        assert execution.pop("trainable_params") == execution["params"]
        record.write_text(json.dumps(execution))
    table = raw_trials(copy)
    assert table.trainable_params.isna().all() and table.params.notna().all()
    assert main(["report", str(copy), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"\|\s*params\s*\|", text) and "trainable_params" not in text    # blank: left out
    assert main(["report", str(folder), "--format", "markdown"]) == 0
    assert "trainable_params" in capsys.readouterr().out


def test_gap_top_and_sort_on_six_trials(six_study):
    raw = raw_trials(six_study)
    table = tables.trials_table([six_study])
    assert len(table) == 8 and set(table.status) == {"COMPLETED"}
    merged = table.set_index("trial_id").loc[raw.trial_id]
    assert np.allclose(merged.gap.to_numpy(), (raw.accuracy - raw.val_accuracy).to_numpy())
    top = tables.trials_table([six_study], top=1)
    assert len(top) == 1 and top.score[0] == raw.score.max()
    by_time = tables.trials_table([six_study], sort="seconds")
    assert list(by_time.seconds) == sorted(raw.seconds)
    assert list(tables.trials_table([six_study], sort="seconds:desc").seconds) == sorted(raw.seconds)[::-1]
    assert list(tables.trials_table([six_study], sort="trial_id").trial_id) == [str(i) for i in range(8)]
    fastest2 = tables.trials_table([six_study], sort="seconds", top=2)
    assert list(fastest2.seconds) == sorted(raw.seconds)[:2]


def test_unknown_sort_column_lists_the_columns(six_study):
    with pytest.raises(HpstudyError, match="unknown column; one of trial_id, status, model.dropout"):
        tables.trials_table([six_study], sort="speed")


# ---------------------------------------------------------------- effects
def test_effects_match_the_trials_computed_independently(six_study):
    raw = raw_trials(six_study)
    fx = tables.build([six_study]).studies[0].effects
    assert fx.objective == "val_accuracy" and not fx.minimize and fx.trials == 8
    assert [e.name for e in fx.effects] == TUNED
    for effect in fx.effects:
        assert effect.numeric
        for row in effect.table.to_dict("records"):
            matching = raw[raw[effect.name].astype(float) == float(row["value"])]
            learnt = matching[matching.trained.fillna(True).astype(bool)]     # the runs that trained
            assert row["count"] == len(learnt) and row["count"] + row.get("did not train", 0) == len(matching)
            if len(learnt):
                assert row["mean"] == pytest.approx(learnt.score.astype(float).mean())
                assert row["best"] == pytest.approx(learnt.score.astype(float).max())
                assert row["gap"] == pytest.approx((learnt.accuracy - learnt.val_accuracy).mean())
        learnt = raw[raw.trained.fillna(True).astype(bool)]
        x = learnt[effect.name].astype(float).rank()
        y = learnt.score.astype(float).rank()
        expected = np.corrcoef(x, y)[0, 1]
        if np.isfinite(expected):
            assert effect.spearman == pytest.approx(expected)
        else:
            assert effect.spearman is None


def test_every_line_carries_a_verdict_and_states_a_number_only_for_an_effect(six_study):
    fx = tables.build([six_study]).studies[0].effects
    for effect in fx.effects:
        assert effect.sentence.startswith(effect.name) and effect.contrasts
        for contrast in effect.contrasts:
            assert contrast.verdict in statistics.VERDICTS
            shown = verdicts.contrast_text(contrast, fx.objective)
            assert shown in effect.sentence
            if contrast.verdict == statistics.EFFECT:
                assert f"val_accuracy {contrast.difference:+.3f}" in shown
            elif contrast.verdict in (statistics.UNDETERMINED, statistics.NEGLIGIBLE):
                assert contrast.verdict in shown and "within noise" not in shown
            else:
                assert "too few trials" in shown and contrast.difference is None
    assert "Noise floor not measured" in fx.noise_note


def test_importance_ranks_every_hyperparameter(six_study):
    fx = tables.build([six_study]).studies[0].effects
    assert sorted(fx.importance.hyperparameter) == sorted(TUNED)
    assert fx.importance.importance.is_monotonic_decreasing
    assert fx.importance.share.sum() == pytest.approx(1.0) or fx.importance.share.sum() == 0
    assert "permutation importance" in fx.importance_note and "RandomForestRegressor" in fx.importance_note


def planted_trials(folder, count=32, seed=0):
    """Replace a results folder's trials with `count` written by keras-tuner's own Trial.save: dropout 0.5 costs
    0.3 of val_accuracy, flip and batch size are drawn at random and do nothing, plus noise of sd 0.01."""
    import keras_tuner as kt
    shutil.rmtree(folder / "tuner")
    shutil.rmtree(folder / "trials")
    for name in ("best.json", "importance.json", "trials.csv"):
        (folder / name).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    for number in range(count):
        hp = kt.HyperParameters()
        hp.Choice("model.dropout", [0.0, 0.5])
        hp.Boolean("preprocess.flip")
        hp.Choice("train.batch_size", [4, 8])
        hp.values.update({"model.dropout": [0.0, 0.5][number % 2], "preprocess.flip": bool(rng.integers(2)),
                          "train.batch_size": int(rng.choice([4, 8]))})
        score = 0.9 - 0.6 * hp.values["model.dropout"] + rng.normal(0, 0.01)
        trial = kt.engine.trial.Trial(hp, trial_id=f"{number:02d}", status="COMPLETED")
        trial.metrics.register("val_accuracy", direction="max")
        trial.metrics.update("val_accuracy", score, step=0)
        trial.score, trial.best_step = score, 0
        (folder / "tuner" / f"trial_{number:02d}").mkdir(parents=True)
        trial.save(str(folder / "tuner" / f"trial_{number:02d}" / "trial.json"))


def test_importance_finds_a_planted_effect_and_recomputes_the_same_ranking(six_study, tmp_path, monkeypatch):
    folder = tmp_path / "planted"
    shutil.copytree(six_study, folder)
    planted_trials(folder)
    assert len(read_trials(open_folder(folder))) == 32
    first = tables.build([folder]).studies[0].effects.importance
    ranked = first.set_index("hyperparameter")
    assert list(first.hyperparameter)[0] == "model.dropout"
    # The planted effect's interval lies above both noise hyperparameters' intervals, which reach down to 0.
    assert ranked.loc["model.dropout", "ci95 low"] > ranked.drop("model.dropout")["ci95 high"].max()
    assert (ranked.drop("model.dropout")["ci95 low"] <= 0.001).all()
    assert ranked.loc["model.dropout", "share"] > 0.9
    cache = folder / "importance.json"
    assert not cache.exists()                         # a report reads a study: it saves nothing into it
    again = tables.build([folder]).studies[0].effects.importance     # computed again from the trials
    pd.testing.assert_frame_equal(first, again)
    layout = open_folder(folder)                      # saved as `hpstudy run` saves it at its end, then read back
    effects.study_importance(study_of(layout), read_trials(layout), cache=cache, save=True)
    assert cache.is_file()
    with monkeypatch.context() as patched:
        patched.setattr(importance_module, "_permutation_importance", lambda *a: pytest.fail("computed again"))
        pd.testing.assert_frame_equal(tables.build([folder]).studies[0].effects.importance, first)


def test_too_few_trials_gives_no_ranking(finished_study):
    folder, _ = finished_study
    fx = tables.build([folder]).studies[0].effects
    assert fx.importance is None and "too few trials" in fx.importance_note
    assert "too few trials" in report.render(tables.build([folder]), "markdown")


def test_minimized_objective_means_lower_is_better():
    trials = pd.DataFrame({"trial_id": [str(i) for i in range(7)], "status": ["COMPLETED"] * 6 + ["FAILED"],
                           "opt.name": ["adam", "adam", "adam", "sgd", "sgd", "sgd", "sgd"],
                           "score": [0.5, 0.7, 0.6, 1.5, 1.1, 1.3, None],
                           "accuracy": [0.9, 0.8, 0.85, 0.5, 0.6, 0.55, None],
                           "val_accuracy": [0.7, 0.7, 0.7, 0.4, 0.5, 0.45, None]})
    fx = effects.effects(trials, ["opt.name"], "val_loss")
    assert fx.minimize and fx.trials == 6
    table = fx.effects[0].table.set_index("value")
    assert table.loc["adam", "best"] == 0.5 and table.loc["sgd", "best"] == 1.1 and table.loc["sgd", "count"] == 3
    assert not fx.effects[0].numeric and fx.effects[0].spearman is None
    contrast = fx.effects[0].contrasts[0]      # lower is better: sgd's +0.700 is worse, and an effect
    assert (contrast.value, contrast.reference) == ("sgd", "adam") and contrast.difference == pytest.approx(0.7)
    assert contrast.verdict == statistics.EFFECT and contrast.ci95[0] > 0
    assert fx.effects[0].sentence.startswith("opt.name sgd vs adam: val_loss +0.700 (95% interval ")
    assert table.loc["adam", "gap"] == pytest.approx(0.15)
    assert fx.importance is not None and list(fx.importance.hyperparameter) == ["opt.name"]


def test_inactive_values_form_their_own_group():
    trials = pd.DataFrame({"trial_id": list("0123"), "status": ["COMPLETED"] * 4,
                           "model.depth": pd.array([2, 3, None, None], dtype="Int64"),
                           "score": [0.2, 0.4, 0.6, 0.8], "accuracy": [None] * 4, "val_accuracy": [None] * 4})
    effect = effects.effects(trials, ["model.depth"], "val_accuracy").effects[0]
    assert list(effect.table.value) == [2, 3, effects.INACTIVE]
    assert effect.table["mean"].iloc[-1] == pytest.approx(0.7) and "gap" not in effect.table
    assert effect.sentence.startswith("model.depth 3 vs 2: too few trials (n=1 vs 1); "
                                      f"{effects.INACTIVE} vs 2: too few trials (n=2 vs 1)")


# ---------------------------------------------------------------- formats
class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.links += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_every_format_renders(six_study, fmt, tmp_path, capsys):
    out = tmp_path / f"report.{fmt}"
    assert main(["report", str(six_study), "--format", fmt, "--output", str(out), "--best", "0"]) == 0
    text = out.read_text()
    if fmt == "json":
        found = json.loads(text)
        rows = found["trials"]
        assert len(rows) == 8 and rows[0]["score"] == max(r["score"] for r in rows) and "gap" in rows[0]
        assert {e["hyperparameter"] for e in found["effects"]} == set(TUNED) and found["noise_floor"] is None
        assert all(set(e) >= {"hyperparameter", "value", "reference", "difference", "ci95", "n", "verdict"}
                   for e in found["effects"]) and found["repeats"] == []
        answer = found["answer"]
        best_row = next(r for r in rows if r["trial_id"] == answer["best_trial"])     # ties: any of the best
        assert answer["study"] == "six" and best_row["score"] == rows[0]["score"] == answer["score"]
        assert answer["test_accuracy"] is not None and answer["question"].startswith("Which of the searched")
        verdict = {}
        for e in found["effects"]:
            verdict.setdefault(e["hyperparameter"], set()).add(e["verdict"])
        open_ = [name.split(" (")[0] for name in answer["undetermined"]] + answer["negligible"]
        trained = [line.split(":")[0] for line in answer["training_findings"]]
        named = [line.split()[0] for line in answer["findings"]] + open_ + answer["too_few_trials"]
        named += [name for name in trained if name not in named]
        assert sorted(named) == sorted(TUNED)          # every searched hyperparameter, each said once
        assert all("effect" in verdict[line.split()[0]] for line in answer["findings"])
        assert all("effect" not in verdict[name] for name in open_ + answer["too_few_trials"])
    elif fmt == "csv":
        assert text.splitlines()[0].startswith("trial_id,status,model.dropout,preprocess.flip,train.batch_size,score")
        assert len(text.splitlines()) == 9
    elif fmt == "latex":
        # trials, adjusted effects, importance, one per-value table per hyperparameter
        assert text.count(r"\begin{tabular}") == 1 + 1 + 1 + len(TUNED) and r"model.dropout" in text
        assert text.startswith(r"\paragraph{The answer}") and r"\textbf{Best configuration:}" in text
        assert text.index(r"\textbf{Question:}") < text.index("% trials")
    elif fmt == "markdown":
        assert text.startswith("## The answer\n\n- **Question:** ") and "## Effects: six" in text
        assert "### model.dropout (raw means" in text and "- **Best configuration:** " in text
        assert text.index("- **Test accuracy:**") < text.index("| trial_id")      # the answer, then the details
        assert "### Effects, adjusted for the other hyperparameters" in text
        assert "nan" not in text
    else:
        parser = _Collect()
        parser.feed(text)
        assert parser.tags.count("table") == 1 + 1 + 1 + len(TUNED)
        # every image inline (the study's figures), nothing fetched from anywhere
        assert parser.links and all(link.startswith("data:image/png;base64,") for link in parser.links)
        assert "http" not in re.sub(r'src="data:[^"]*"', "", text) and "<style>" in text
        assert "Noise floor not measured" in text and "permutation importance" in text
        assert text.index('<section class="answer">') < text.index("<h2>Trials</h2>")
        assert text.count('<div class="scroll"><table') == text.count("<table") and "overflow-x: auto" in text


def test_html_embeds_images(finished_study):
    folder, _ = finished_study
    png = b"\x89PNG\r\n\x1a\nfake"
    page = report.render_html(tables.build([folder]), {"score by dropout": png})
    parser = _Collect()
    parser.feed(page)
    assert parser.links == ["data:image/png;base64,iVBORw0KGgpmYWtl"] and "score by dropout" in page


def test_latex_escapes_special_characters():
    text = report.latex_tabular(pd.DataFrame({"a_b": ["x&y", "50%"], "n": [1.23456, None]}))
    assert r"a\_b" in text and r"x\&y" in text and r"50\%" in text and "1.2346" in text
    assert text.startswith(r"\begin{tabular}{lr}") and text.endswith(r"\end{tabular}")


def test_several_studies_make_one_comparison_table(finished_study, six_study):
    folder, _ = finished_study
    built = tables.build([folder, six_study], top=1)
    assert list(built.trials.study) == ["tiny", "six"] and list(built.trials.columns[:2]) == ["study", "trial_id"]
    assert [s.name for s in built.studies] == ["tiny", "six"]
    text = report.render(built, "markdown")
    assert "## Effects: tiny" in text and "## Effects: six" in text
    assert text.index("## The answer: tiny") < text.index("## The answer: six") < text.index("| study")
    answers = json.loads(report.render(built, "json"))["answer"]
    assert set(answers) == {"tiny", "six"} and answers["tiny"]["study"] == "tiny"
    assert [s.answer.best_trial for s in built.studies] == [answers["tiny"]["best_trial"], answers["six"]["best_trial"]]
    twice = tables.build([folder, folder]).trials          # the same name twice: told apart by folder
    assert list(twice.study.unique()) == [str(folder)] and len(twice) == 4


# ---------------------------------------------------------------- a study still running
def test_a_running_study_is_reported(running_study):
    built = tables.build([running_study])
    table = built.trials.set_index("trial_id")
    assert sorted(table.index, key=int) == [str(i) for i in range(8)]        # the half-written trial skipped
    assert table.loc["3", "status"] == "RUNNING" and pd.isna(table.loc["3", "score"])
    assert table.loc["4", "status"] == "FAILED" and table.loc["4", "message"] == "ValueError: boom"
    assert list(built.trials.status[-2:]) != ["COMPLETED"] * 2                   # unfinished trials last
    assert set(built.trials.status[:6]) == {"COMPLETED"}
    fx = built.studies[0].effects
    assert fx.trials == 6 and sum(e.table["count"].sum() for e in fx.effects) == (6 - fx.untrained) * len(TUNED)
    for fmt in report.FORMATS:
        assert report.render(built, fmt)
    text = report.render(built, "markdown")
    assert "ValueError: boom" in text and "nan" not in text
    assert f" {int(table.loc['0', 'flops']):,} |" in text and "e+0" not in text  # counts stay whole next to blanks
    assert list(tables.trials_table([running_study], sort="val_loss").status[-2:]).count("COMPLETED") == 0


def test_cli_reports_a_running_study(running_study, capsys):
    assert main(["report", str(running_study), "--top", "3", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


# ---------------------------------------------------------------- the command line
def test_bad_sort_is_exit_2_with_one_line(finished_study, capsys):
    folder, _ = finished_study
    assert main(["report", str(folder), "--sort", "speed"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpstudy: error: --sort speed: unknown column; one of trial_id")
    assert "seconds" in lines[0]


def test_bad_top_is_exit_2(finished_study, capsys):
    folder, _ = finished_study
    with pytest.raises(SystemExit) as caught:
        main(["report", str(folder), "--top", "0"])
    assert caught.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("hpstudy report: error: argument --top: expected a positive "
                                                        "integer, got '0'")


def test_top_and_sort_through_the_cli(six_study, capsys):
    raw = raw_trials(six_study)
    assert main(["report", str(six_study), "--top", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["trials"]
    assert len(rows) == 1 and rows[0]["score"] == pytest.approx(raw.score.max())
    assert main(["report", str(six_study), "--sort", "seconds", "--format", "json"]) == 0
    assert [r["seconds"] for r in json.loads(capsys.readouterr().out)["trials"]] == sorted(raw.seconds)


def test_rendering_every_format_does_not_import_tensorflow(finished_study, tmp_path):
    folder, _ = finished_study
    code = ("import sys\nfrom hpstudy.report import pages as report, tables\nfrom hpstudy.cli import main\n"
            f"built = tables.build([{str(folder)!r}])\n"
            "for fmt in report.FORMATS:\n    assert report.render(built, fmt)\n"
            f"assert main(['report', {str(folder)!r}, '--format', 'html', '--output', {str(tmp_path / 'r.html')!r}, "
            "'--best', '0'])"
            " == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_importance_is_read_back_from_its_cache_while_the_trials_are_the_same(tmp_path, monkeypatch):
    trials = pd.DataFrame({"model.dropout": [0.0, 0.2, 0.4, 0.6, 0.1], "score": [0.9, 0.8, 0.6, 0.3, 0.85]})
    cache = tmp_path / "importance.json"
    assert effects.importance(trials, ["model.dropout"], cache=cache) is not None and not cache.exists()
    first = effects.importance(trials, ["model.dropout"], cache=cache, save=True)     # as `hpstudy run` saves it
    saved = cache.read_bytes()
    monkeypatch.setattr(importance_module, "_permutation_importance", lambda *a: pytest.fail("computed again"))
    pd.testing.assert_frame_equal(effects.importance(trials, ["model.dropout"], cache=cache), first)
    monkeypatch.undo()
    changed = trials.assign(score=trials.score[::-1].to_numpy())
    assert effects.importance(changed, ["model.dropout"], cache=cache) is not None
    assert cache.read_bytes() == saved                # computed for other trials, in memory: the cache kept
    assert json.loads(saved)["key"] != ""
