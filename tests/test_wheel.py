"""What users install: the built wheel holds every module and data file, and works outside the source tree."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_installs_and_lists_everything_from_outside_the_source_tree(tmp_path):
    # A clean copy: setuptools reuses a checkout's build/ folder, which may hold modules that no longer exist.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("build", "dist", ".venv", ".tox", ".git",
                                                                 "*.egg-info", "__pycache__", "results"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("peft_transfer_bench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {str(p.relative_to(ROOT)) for top in ("bench", "methods", "tasks") for p in (ROOT / top).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert sources <= names, sorted(sources - names)[:5]  # every module, YAML, recipe and shipped checkpoint

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "BENCH_PROGRESS": "0"}
    where = subprocess.run([sys.executable, "-c", "import bench, tasks; print(bench.__file__, tasks.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True, check=True)
    assert all(path.startswith(str(target)) for path in where.stdout.split()), where.stdout
    tasks = subprocess.run([sys.executable, "-m", "bench", "list", "tasks"], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=120)
    assert tasks.returncode == 0, tasks.stderr
    for name in ("tiny_arith", "gsm8k_metamath", "boolq_cs", "humaneval_plus", "synth_arith", "synth_pyexec"):
        assert name in tasks.stdout
    plan = subprocess.run([sys.executable, "-m", "bench", "run", "--pair", "qwen2-qwen2.5", "--dry-run", "--offline"],
                          cwd=outside, env=env, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0 and "gsm8k_metamath" in plan.stdout, plan.stderr
