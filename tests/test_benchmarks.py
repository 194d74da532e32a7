"""The benchmark scripts' own logic (no timings): sections, tuner bookkeeping, import-time parsing, help."""
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from hpstudy.study import spec

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def script(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tuner_reach_counts_epochs_and_seconds_in_trial_order():
    run = script("run")
    rows = [{"epochs": 3, "seconds": 2.0, "val_accuracy": 0.90}, {"epochs": 1, "seconds": 0.5, "val_accuracy": None},
            {"epochs": 9, "seconds": 6.0, "val_accuracy": 0.97}, {"epochs": 9, "seconds": 6.0, "val_accuracy": 0.99}]
    assert run.tuner_reach(rows, 0.965) == {"trials": 3, "epochs": 13, "seconds": 8.5}
    assert run.tuner_reach(rows, 0.995) is None
    # A pruned trial's epochs are spent, but its truncated score never counts as reaching the target.
    pruned = [{**rows[0], "status": "PRUNED", "val_accuracy": 0.99}, {**rows[2], "status": "COMPLETED"}]
    assert run.tuner_reach(pruned, 0.965) == {"trials": 2, "epochs": 12, "seconds": 8.0}
    summary = run.tuner_summary([{"rows": pruned}, {"rows": rows[:2]}], 0.965)
    assert summary["reached"] == 1 and summary["epochs"] == [12] and summary["median"] == float("inf")
    assert summary["pruned"] == [1, 0] and summary["spent"] == [12, 4]
    # The median counts every run: two of three reached it, so it is the larger of their two counts.
    assert run.tuner_summary([{"rows": pruned}, {"rows": rows[:2]}, {"rows": rows}], 0.965)["median"] == 13


def test_every_tuner_searches_the_same_space():
    run = script("run")
    for mode, configs in (("full", 27), ("quick", 4)):
        size = run.SIZES[mode]
        studies = {run.tuner_label(t, rule): run.tuner_study(size, t, 7, rule)
                   for t, rule in [("grid", None), *size["tuner_variants"]]}
        assert len({s["name"] for s in studies.values()}) == len(studies)
        for study in studies.values():
            spec.from_dict(study)           # each a valid study file
        spaces = {t: {k: v for section in ("model", "train") for k, v in s[section].items() if isinstance(v, dict)}
                  for t, s in studies.items()}
        assert all(space == spaces["grid"] for space in spaces.values())
        sizes = [len(v["values"]) for v in spaces["grid"].values()]
        assert sizes and math.prod(sizes) == configs
        assert "max_trials" not in studies["hyperband"]["search"]
        pruned = [s for label, s in studies.items() if "+" in label]
        assert pruned and all(s["search"]["pruning"]["rule"] in label for label, s in studies.items() if "+" in label)
    full = run.SIZES["full"]
    assert {run.tuner_label(t, r) for t, r in full["tuner_variants"]} >= {
        "random", "bayesian", "hyperband", "random + median", "random + successive_halving", "bayesian + median",
        "bayesian + successive_halving"}
    # Bayesian optimization acts after its initial random trials: fewer of them than the trials a run may take.
    bayesian = run.tuner_study(full, "bayesian")["search"]
    assert bayesian["options"]["num_initial_points"] < bayesian["max_trials"]


def test_slowest_imports_reads_python_importtime():
    run = script("run")
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:       100 |     250000 |   sklearn.base\n"
            "import time:      2000 |    1200000 | sklearn\n"
            "import time:        50 |     300000 | pandas\n"
            "import time:        10 |         10 | _private\n")
    assert run.slowest_imports(text) == [("sklearn", 1.2), ("pandas", 0.3)]


def test_settings_change_one_value_at_a_time():
    configs = script("run").settings_configs()
    assert configs[0] == {} and all(len(c) == 1 for c in configs[1:])
    assert {"precision", "jit_compile", "steps_per_execution"} == {k for c in configs for k in c}


@pytest.mark.parametrize("name", ["run", "memory", "gpu", "pipeline", "confirm", "serve", "report_figures", "design",
                                  "fashion_mnist_quick"])
def test_scripts_answer_help(name):
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "usage" in done.stdout


def test_gpu_sh_parses_and_explains_itself():
    assert subprocess.run(["bash", "-n", str(BENCHMARKS / "gpu.sh")]).returncode == 0
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "fetch" in done.stderr and "run" in done.stderr


def test_results_keep_the_sections_not_run_again():
    run = script("run")
    old = ("# hpstudy benchmarks\n\n- Machine: AMD EPYC, 2 cores\n- Date: 2026-11-21\n\n"
           "## tuners\n\n| tuner | trials |\n|---|---:|\n| grid | 27 |\n\n## settings\n\nold settings\n")
    new = {"settings": ["## settings", "", "- Run: today", "", "new settings", ""],
           "overhead": ["## overhead", "", "- Run: today", "", "new overhead", ""]}
    merged = run.merge_results(old, new, quick=False)
    assert "old settings" not in merged and "new settings" in merged and "new overhead" in merged
    assert merged.index("## overhead") < merged.index("## tuners") < merged.index("## settings")
    tuners = merged[merged.index("## tuners"):merged.index("## settings")]
    assert "| grid | 27 |" in tuners and "- Machine: AMD EPYC, 2 cores" in tuners and "- Date: 2026-11-21" in tuners
    assert "- Date: 2026-11-21" not in merged[merged.index("## settings"):]
    assert run.merge_results(merged, {}, quick=False) == merged


def test_settings_say_faster_or_slower_only_when_every_round_agrees():
    run = script("run")
    rows = [{"images": 640, "rates": [100.0, 50.0, 80.0], "jit_resolved": False},
            {"precision": "mixed_bfloat16", "images": 640, "rates": [150.0, 60.0, 90.0], "jit_resolved": False},
            {"jit_compile": True, "images": 640, "rates": [90.0, 45.0, 70.0], "jit_resolved": True},
            {"steps_per_execution": 4, "images": 640, "rates": [120.0, 40.0, 80.0], "jit_resolved": False}]
    lines = run.render_settings({"backends": [{"backend": "tensorflow", "seconds": 5.0, "rows": rows}]})
    table = {line.split(" | ")[1]: line for line in lines if line.startswith("| tensorflow")}
    assert "| 80 (50–100) | 1.00 (1.00–1.00)x |  |" in table["defaults"]
    mixed = table["precision: mixed_bfloat16"]
    assert "| faster |" in mixed and "1.20 (1.12–1.50)x" in mixed
    assert "| slower |" in table["jit_compile: True"]
    assert "| mixed |" in table["steps_per_execution: 4"]


def test_spread_is_the_median_and_the_range():
    overhead = script("overhead")
    assert overhead.spread([3.0, 1.0, 2.0, 10.0]) == "2.5 (1.0–10.0)"
    assert overhead.spread([1234.4], 0) == "1,234"


def test_run_facts_count_configurations_proposed_again_and_pruned_winners(tmp_path):
    run = script("run")
    header = "trial_id,status,model.filters,train.learning_rate,val_accuracy\n"
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "trials.csv").write_text(header + "0,COMPLETED,8,0.001,0.90\n1,COMPLETED,16,0.001,0.97\n"
                                                  "2,COMPLETED,8,0.003,0.96\n3,COMPLETED,16,0.003,0.80\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trials.csv").write_text(header + "0,COMPLETED,8,0.001,0.90\n1,PRUNED,16,0.001,0.60\n"
                                                 "2,COMPLETED,8,0.001,0.90\n3,PRUNED,16,0.003,0.50\n")
    assert run.run_facts(tmp_path / "run", tmp_path / "grid", 0.965) == {"distinct": 3, "pruned_winners": 1}
    assert run.run_facts(tmp_path / "gone", tmp_path / "grid", 0.965) is None


def test_design_benchmark_runs_every_arm_on_the_same_studies_and_tabulates_them():
    design = script("design")
    results = design.synthetic(studies=3, cap=8)
    arms = (*design.ARMS, design.RANDOM_UNTIL)       # random search's trials are also read with the until rule
    assert len(results) == 3 * len(arms) * len(design.SCENARIOS)
    for _, study in results.groupby(["scenario", "study"]):
        stops = study.set_index("arm")["stop"]
        # The oracle's own until rule, held to each look's level, stops no sooner than the fixed design's trials
        # were first decisive at 95% (the same trials), and never where they were not.
        if stops.isna()["design, fixed"]:
            assert stops.isna()["design, until answered"]
        elif not stops.isna()["design, until answered"]:
            assert stops["design, until answered"] >= stops["design, fixed"]
        if not stops.isna()[design.RANDOM_UNTIL]:
            assert stops[design.RANDOM_UNTIL] >= stops["random"]
    assert (results.loc[results["arm"] != "design, until answered", "trials"] == 8).all()
    table = design.summary(results, cap=8)
    assert list(table.columns) == design.SYNTHETIC_COLUMNS
    assert len(table) == len(arms) * len(design.SCENARIOS)
    assert set(table["studies"]) == {3}


def test_design_benchmark_judges_verdicts_against_the_truth():
    design = script("design")
    rows = []
    for i in range(48):
        values = {"model.head": ["gap", "dense"][i % 2], "model.conv_layers": [1, 2][i // 2 % 2],
                  "model.kernel_size": 3, "model.dropout": 0.1 * (i % 5), "train.batch_size": 32,
                  "train.learning_rate": 10 ** (-4 + 2 * (i % 7) / 6)}
        score = 0.8 + (0.05 if values["model.head"] == "dense" else 0.0) + 0.002 * ((i * 7919) % 5 - 2)
        rows.append({**values, "score": score, "val_accuracy": score, "val_loss": 0.5, "best_epoch": 8})
    right = design.judge(rows)
    assert right["verdicts"] == {"model.head": "effect", "model.conv_layers": "negligible"}, right
    assert right["decisive"] and right["right"] and not right["wrong"]
    flipped = [{**r, "model.head": {"gap": "dense", "dense": "gap"}[r["model.head"]]} for r in rows]
    wrong = design.judge(flipped)           # gap above dense: an effect of the wrong sign
    assert wrong["decisive"] and wrong["wrong"] and not wrong["right"]
