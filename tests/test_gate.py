"""The CI gate (`bench compare --unit seed`): a change of machine redraws seeds and passes; a planted drop fails."""

import json
from pathlib import Path

import pytest
from results_factory import CORRECT, make_cells, write_results_file
from typer.testing import CliRunner

from bench.analysis.compare import holm
from bench.cli import app

runner = CliRunner()
SEED_GATE = ["--unit", "seed", "--alpha", "0.05", "--min-delta", "5"]

# A machine change as the issue measured it: rounding sends some trainings down another path, so a cell's seeds
# are redrawn: finetune_new t_arith loses one seed to the failure mode (the 83 -> 29), and every
# other cell moves by a sample or two.
TWIN = {key: [k + (1, -1, 0)[i % 3] for i, k in enumerate(values)] for key, values in CORRECT.items()}
TWIN[("finetune_new", "t_arith")] = [12, 34, 36]


def gate(baseline, current, *args):
    return runner.invoke(app, ["compare", str(baseline), str(current), *args])


def verdicts(output: str) -> dict:
    rows = {}
    for line in output.splitlines():
        parts = [p.strip() for p in line.strip("|").split("|")]
        if len(parts) == 10 and parts[-1] in ("ok", "REGRESSED"):
            rows[(parts[0], parts[1])] = parts[-1]
    return rows


@pytest.fixture
def baseline(tmp_path):
    return write_results_file(tmp_path / "baseline.json")


def test_a_machine_change_fires_the_sample_gate_but_not_the_seed_gate(baseline, tmp_path):
    twin = write_results_file(tmp_path / "twin.json", make_cells(TWIN))
    assert gate(baseline, twin).exit_code == 1  # per-sample McNemar: the lost seed is "significant"
    result = gate(baseline, twin, *SEED_GATE)
    assert result.exit_code == 0, result.output
    assert set(verdicts(result.stdout).values()) == {"ok"} and len(verdicts(result.stdout)) == 10


def test_a_planted_drop_of_a_third_of_the_correct_answers_fails_the_seed_gate(baseline, tmp_path):
    planted = dict(TWIN)  # on top of the machine change
    planted[("trans_peft", "t_knowledge")] = [round(k * 2 / 3) for k in TWIN[("trans_peft", "t_knowledge")]]
    result = gate(baseline, write_results_file(tmp_path / "planted.json", make_cells(planted)), *SEED_GATE)
    assert result.exit_code == 1, result.output
    rows = verdicts(result.stdout)
    assert {cell for cell, verdict in rows.items() if verdict == "REGRESSED"} == {("trans_peft", "t_knowledge")}
    assert "1 of 10 cells regressed" in result.stdout


def test_a_drop_under_min_delta_or_in_a_noisy_cell_does_not_fire(baseline, tmp_path):
    small = dict(CORRECT)
    small[("trans_peft", "t_knowledge")] = [25, 26, 27]  # 2.5 points: significant perhaps, but under min delta
    result = gate(baseline, write_results_file(tmp_path / "small.json", make_cells(small)), *SEED_GATE)
    assert result.exit_code == 0, result.output


def test_the_seed_gate_needs_seeds_and_the_same_grid(baseline, tmp_path):
    one_seed = write_results_file(tmp_path / "one.json", [c for c in make_cells() if c["seed"] == 0])
    result = gate(one_seed, one_seed, *SEED_GATE)
    assert result.exit_code == 2 and "needs at least 2 seeds" in result.stderr
    other_tasks = write_results_file(tmp_path / "tasks.json", [c | {"task": "t_code"} if c["task"] == "t_arith" else c
                                                                for c in make_cells()])
    for unit in ("sample", "seed"):
        result = gate(baseline, other_tasks, "--unit", unit)
        assert result.exit_code == 2 and "baseline has tasks t_arith, t_knowledge but current has" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    other_pair = write_results_file(tmp_path / "pair.json", make_cells(), pair="tiny-severe")
    assert gate(baseline, other_pair, *SEED_GATE).exit_code == 2
    assert gate(baseline, baseline, "--unit", "seeds").exit_code == 2


def test_the_table_goes_to_the_github_step_summary_when_set(baseline, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = gate(baseline, baseline, *SEED_GATE)
    written = summary.read_text()
    assert result.exit_code == 0 and "| method" in written and "0 of 10 cells regressed" in written


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


# Measured (README "Regression gate (CI)"). Default recipes: the 10-seed leaderboard of those recipes, made on an
# AVX-512 machine, against the same code's seeds 0-2 on an AVX2-only AMD EPYC (a real change of machine, which moved
# cells by up to 32 points) and on that EPYC under the CPU twin, MKL_ENABLE_INSTRUCTIONS=SSE4_2
# ATEN_CPU_CAPABILITY=default (the run of .ci/run there). Tuned recipes (the CI gate's baseline): the 10-seed
# leaderboard, made natively on an AVX2 EPYC, against seeds 0-2 (twin-tuned) and 0-3 (twin-v2: the tiny tasks of
# now; twin-v3: the recipes of now, chosen by the one-standard-error rule, seeds 0-3, and seeds 0-2 as CI runs
# them; twin-v3-seeds4-9: the same code's other six seeds) under the twin there; v4 (tiny_arith's LoRA on every
# linear layer and v1's update 2,400 steps) made natively on an AVX-512 EPYC in fp32, against seeds 0-3 under the
# twin there (twin-v4), each run from a fresh cache. v5 (the recipes of now: PortLLM's
# tiny_knowledge and tiny_code searched again with its LoRA targets as a knob): made natively on an AVX-512 EPYC,
# where `--precision auto` then trained the tiny pair in bf16, against seeds 0-3 under the twin there (still bf16).
# v6 (the same recipes; the tiny pairs now train in fp32 on every CPU): made natively on that AVX-512 EPYC, against
# seeds 0-3 under the twin there.
RESULTS = Path(__file__).resolve().parents[1] / "results"
MEASURED = RESULTS / "science" / "gate"
CI_SEEDS = (0, 1, 2)  # the seeds .ci/run gates (README "Why 3 seeds")
MACHINE_CHANGES = [("tiny-10seeds-20261201.json", "avx2.json", None), ("tiny-10seeds-20261201.json", "twin.json", None),
                   ("tiny-tuned-10seeds-20261203.json", "twin-tuned.json", None),
                   ("tiny-v2-10seeds-20261203.json", "twin-v2.json", None),
                   ("tiny-v3-10seeds-20261203.json", "twin-v3.json", None),
                   ("tiny-v3-10seeds-20261203.json", "twin-v3-seeds4-9.json", None),
                   ("tiny-v3-10seeds-20261203.json", "twin-v3.json", CI_SEEDS),
                   ("tiny-v4-10seeds-20261204.json", "twin-v4.json", None),
                   ("tiny-v4-10seeds-20261204.json", "twin-v4.json", CI_SEEDS),
                   ("tiny-v5-10seeds-20261207.json", "twin-v5.json", None),
                   ("tiny-v5-10seeds-20261207.json", "twin-v5.json", CI_SEEDS),
                   ("tiny-v6-10seeds-20261207.json", "twin-v6.json", None),
                   ("tiny-v6-10seeds-20261207.json", "twin-v6.json", CI_SEEDS)]  # what CI runs, on that twin
# Two machines and two precisions: v5 (an AVX-512 EPYC, where `--precision auto` then trained the tiny pair in bf16)
# and v4 (another AVX-512 EPYC, where the probe picked fp32), on the cells whose recipe they share (PortLLM's
# tiny_knowledge and tiny_code recipes were tuned again after v4), each one's 10 seeds as the baseline of the
# other's 0-2. In fp32 the two machines give the same answers (v6 against v4, below).
RETUNED = {("portllm", "tiny_knowledge"), ("portllm", "tiny_code")}
REAL_MACHINES = [("tiny-v5-10seeds-20261207.json", "tiny-v4-10seeds-20261204.json"),
                 ("tiny-v4-10seeds-20261204.json", "tiny-v5-10seeds-20261207.json")]
FP32_MACHINES = ("tiny-v6-10seeds-20261207.json", "tiny-v4-10seeds-20261204.json")  # two AVX-512 EPYCs
# A change of precision on one machine and the same recipes: v6 (fp32) and v5 (bf16), both ways.
PRECISIONS = [("tiny-v6-10seeds-20261207.json", "tiny-v5-10seeds-20261207.json"),
              ("tiny-v5-10seeds-20261207.json", "tiny-v6-10seeds-20261207.json")]


def test_ci_gates_against_the_committed_tuned_baseline():
    ci = (RESULTS.parent / ".ci" / "run").read_text()
    baseline_name, twin, seeds = MACHINE_CHANGES[-1]
    assert f"results/{baseline_name}" in ci and "--unit seed --alpha 0.05 --min-delta 5" in ci
    baseline = json.loads((RESULTS / baseline_name).read_text())
    assert baseline["tuned_recipes"] and len({c["seed"] for c in baseline["cells"]}) == 10
    # CI runs seeds the gate was measured with, on the current baseline and its twin (below)
    measured = {c["seed"] for c in json.loads((MEASURED / twin).read_text())["cells"]}
    assert f"--seeds {','.join(map(str, seeds))} " in ci and set(seeds) <= measured


def plant_drop(source: Path, out: Path, method: str, task: str) -> Path:
    """A third of the cell's correct answers wrong, on every seed."""
    results = json.loads(source.read_text())
    for cell in results["cells"]:
        if (cell["method"], cell["task"]) == (method, task):
            right = [s for s in cell["samples"] if s["correct"] == 1.0]
            for sample in right[: round(len(right) / 3)]:
                sample["correct"] = 0.0
            cell["score"] = 100 * sum(s["correct"] for s in cell["samples"]) / len(cell["samples"])
    out.write_text(json.dumps(results))
    return out


def seeds_of(source: Path, seeds: tuple[int, ...] | None, out: Path, without: set = frozenset()) -> Path:
    """The results file with only these seeds' cells (None: all of them), less the (method, task) cells `without`."""
    if seeds is None and not without:
        return source
    results = json.loads(source.read_text())
    results["cells"] = [c for c in results["cells"] if (seeds is None or c["seed"] in seeds)
                        and (c["method"], c["task"]) not in without]
    out.write_text(json.dumps(results))
    return out


def assert_passes_and_catches_planted_drops(baseline: Path, other_machine: Path, tmp_path: Path,
                                            answers_change: bool = True) -> None:
    if answers_change:
        assert gate(baseline, other_machine).exit_code == 1  # per-sample: "regressed", with no code change
    result = gate(baseline, other_machine, *SEED_GATE)
    assert result.exit_code == 0 and set(verdicts(result.stdout).values()) == {"ok"}, result.output
    # The re-tuning references are steady enough at 3 seeds that a third of their correct answers is caught
    for method in ("finetune_old", "finetune_new"):
        for task in ("tiny_arith", "tiny_knowledge", "tiny_code"):
            planted = gate(baseline, plant_drop(other_machine, tmp_path / "planted.json", method, task), *SEED_GATE)
            regressed = {cell for cell, verdict in verdicts(planted.stdout).items() if verdict == "REGRESSED"}
            assert planted.exit_code == 1 and regressed == {(method, task)}, planted.output


@pytest.mark.parametrize("baseline_name,run,seeds", MACHINE_CHANGES,
                         ids=[f"{run}-seeds-{''.join(map(str, s or [])) or 'all'}" for _, run, s in MACHINE_CHANGES])
def test_another_machine_passes_the_seed_gate_and_a_planted_drop_in_a_reference_cell_fails_it(baseline_name, run,
                                                                                               seeds, tmp_path):
    baseline, other_machine = RESULTS / baseline_name, seeds_of(MEASURED / run, seeds, tmp_path / "seeds.json")
    assert_passes_and_catches_planted_drops(baseline, other_machine, tmp_path)


@pytest.mark.parametrize("baseline_name,run", REAL_MACHINES + PRECISIONS,
                         ids=["v4-fp32-on-v5-bf16", "v5-bf16-on-v4-fp32", "v5-bf16-on-v6", "v6-fp32-on-v5"])
def test_two_machines_or_precisions_pass_each_others_seed_gate_and_a_planted_drop_fails_it(baseline_name, run,
                                                                                          tmp_path):
    baseline = seeds_of(RESULTS / baseline_name, None, tmp_path / "baseline.json", RETUNED)
    other_machine = seeds_of(RESULTS / run, CI_SEEDS, tmp_path / "seeds.json", RETUNED)
    assert_passes_and_catches_planted_drops(baseline, other_machine, tmp_path)


def test_in_fp32_two_machines_give_the_same_answers_and_the_gate_still_catches_a_planted_drop(tmp_path):
    """v6 and v4, made in fp32 on two AVX-512 EPYCs in different sessions, 10 seeds each: every shared (cell, seed)
    has the same answers, so neither gate fires, and a planted drop on top still fails the seed gate."""
    v6, v4 = (json.loads((RESULTS / name).read_text()) for name in FP32_MACHINES)
    assert {c["precision"] for c in v6["cells"] + v4["cells"]} == {"fp32"}
    answers = {(c["method"], c["task"], c["seed"]): [s["response"] for s in c["samples"]] for c in v4["cells"]}
    shared = [c for c in v6["cells"] if (c["method"], c["task"]) not in RETUNED]
    assert len(shared) == 130
    assert all([s["response"] for s in c["samples"]] == answers[c["method"], c["task"], c["seed"]] for c in shared)
    baseline = seeds_of(RESULTS / FP32_MACHINES[0], None, tmp_path / "baseline.json", RETUNED)
    other_machine = seeds_of(RESULTS / FP32_MACHINES[1], CI_SEEDS, tmp_path / "seeds.json", RETUNED)
    assert gate(baseline, other_machine).exit_code == 0  # per sample too: nothing changed
    assert_passes_and_catches_planted_drops(baseline, other_machine, tmp_path, answers_change=False)
