"""Store integrity: every entry's manifest is checked on reuse; damage is one warning line, then a rebuild.

The damage here is the kind the readers' own checks cannot see (a flipped byte in a tensor, a changed digit
in a score): without the manifest it would be used silently. Full-disk faults leave nothing partial visible.
"""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bench.core.store as store
from bench.cli import app
from bench.core.store import CACHE_ENV, MANIFEST, VERIFY_ENV, cache_dir, cached_dir, verify_entry

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# --- The store alone (no models): manifests, damage, old entries, hashing modes, full disks. -----------------

@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(VERIFY_ENV, raising=False)
    monkeypatch.setattr(store, "_verified", {})  # as a fresh process: nothing verified yet
    return tmp_path / "cache"


class Builder:
    """A build that writes a weights file and a nested json, counting its calls."""

    def __init__(self, size: int = 4096):
        self.calls, self.size = 0, size

    def __call__(self, out: Path):
        self.calls += 1
        (out / "weights.bin").write_bytes(bytes(range(256)) * (self.size // 256))
        (out / "sub").mkdir()
        (out / "sub" / "meta.json").write_text('{"score": 42}')


def flip(path: Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_stored_entry_carries_a_manifest_of_every_file_and_a_build_log_line(store_dir):
    entry = cached_dir("modules", "k", Builder())
    manifest = json.loads((entry / MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["sub/meta.json", "weights.bin"]
    assert manifest["files"]["weights.bin"]["size"] == 4096
    assert manifest["built"]["pid"] == os.getpid() and manifest["kind"] == "modules" and manifest["key"] == "k"
    (line,) = (store_dir / "builds.log").read_text().splitlines()
    assert json.loads(line) | {"seconds": 0, "started": ""} == {"kind": "modules", "key": "k", "pid": os.getpid(),
                                                                "seconds": 0, "started": ""}
    assert verify_entry(entry) is None


DAMAGE = {
    "a flipped byte": (lambda e: flip(e / "weights.bin", 1000), "weights.bin does not match its sha256"),
    "a truncated file": (lambda e: truncate(e / "weights.bin"), "weights.bin has 2048 bytes, not 4096"),
    "a nested file changed": (lambda e: (e / "sub" / "meta.json").write_text('{"score": 43}'),
                              "sub/meta.json does not match its sha256"),
    "a missing file": (lambda e: (e / "sub" / "meta.json").unlink(), "sub/meta.json is missing"),
    "an extra file": (lambda e: (e / "weights.pt").write_bytes(b"pickle"), "weights.pt is not in its manifest.json"),
    "a damaged manifest": (lambda e: flip(e / MANIFEST, 0), "its manifest.json is unreadable"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damage_is_one_warning_then_a_rebuild_never_a_use(damage, store_dir, capsys):
    build = Builder()
    entry = cached_dir("modules", "k", build)
    assert cached_dir("modules", "k", build) == entry and build.calls == 1  # verified (and hashed) reuse
    hurt, reason = DAMAGE[damage]
    hurt(entry)
    capsys.readouterr()
    assert cached_dir("modules", "k", build) == entry
    assert build.calls == 2
    assert capsys.readouterr().err == (f"warning: store entry {entry} is damaged ({reason}); "
                                       "moving it aside and rebuilding it\n")
    assert verify_entry(entry) is None and (entry / "weights.bin").read_bytes() == bytes(range(256)) * 16
    assert sorted(p.name for p in entry.parent.iterdir()) == [".k.lock", "k"]  # the damaged copy is gone
    assert len((store_dir / "builds.log").read_text().splitlines()) == 2


def test_bit_rot_that_keeps_size_and_mtime_is_found_by_the_next_process(store_dir, capsys):
    build = Builder()
    entry = cached_dir("modules", "k", build)
    stat = (entry / "weights.bin").stat()
    flip(entry / "weights.bin", 7)
    os.utime(entry / "weights.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    store._verified.clear()  # a later run: hashes are checked on its first use of the entry
    cached_dir("modules", "k", build)
    assert build.calls == 2 and "weights.bin does not match its sha256" in capsys.readouterr().err


def test_an_entry_from_before_manifests_is_trusted_and_given_one(store_dir, capsys):
    old = store_dir / "modules" / "k"  # as the previous store left it: renamed into place complete
    old.mkdir(parents=True)
    (old / "module.json").write_text("{}")
    build = Builder()
    assert cached_dir("modules", "k", build) == old
    assert build.calls == 0 and capsys.readouterr().err == ""
    manifest = json.loads((old / MANIFEST).read_text())
    assert list(manifest["files"]) == ["module.json"] and "adopted" in manifest and "built" not in manifest
    assert verify_entry(old) is None
    (old / "module.json").write_text("{ }")  # from now on it is checked like any other
    cached_dir("modules", "k", build)
    assert build.calls == 1


def test_a_read_only_entry_from_before_manifests_is_used_as_before(store_dir):
    old = store_dir / "modules" / "k"
    old.mkdir(parents=True)
    (old / "module.json").write_text("{}")
    old.chmod(0o555)
    try:
        if os.access(old, os.W_OK):
            pytest.skip("running as root: nothing is read-only")
        assert cached_dir("modules", "k", Builder()) == old and not (old / MANIFEST).exists()
    finally:
        old.chmod(0o755)


def test_large_entries_have_sizes_checked_and_hashes_on_request(store_dir, monkeypatch):
    monkeypatch.setattr(store, "VERIFY_HASH_LIMIT", 1024)  # as a multi-GB base checkpoint
    build = Builder()
    entry = cached_dir("pairs", "big", build)
    flip(entry / "weights.bin")
    assert verify_entry(entry) is None  # auto: a flipped byte in a large entry is not looked for ...
    monkeypatch.setenv(VERIFY_ENV, "full")
    assert verify_entry(entry) == "weights.bin does not match its sha256"  # ... unless asked for
    monkeypatch.setenv(VERIFY_ENV, "sizes")
    assert verify_entry(entry) is None
    truncate(entry / "weights.bin")
    assert verify_entry(entry) == "weights.bin has 2048 bytes, not 4096"  # sizes: always
    monkeypatch.setenv(VERIFY_ENV, "sometimes")
    with pytest.raises(store.BenchError, match="must be auto, full or sizes"):
        verify_entry(entry)


DAMAGED_BY_TWO = """
import sys
from pathlib import Path
from bench.core.store import cached_dir

def build(out):
    with open(sys.argv[1], "a") as log:
        log.write("built\\n")
    (out / "weights.bin").write_bytes(b"fresh weights")

print((cached_dir("modules", "k", build) / "weights.bin").read_text())
"""


def test_two_runs_meeting_one_damaged_entry_rebuild_it_once(store_dir, tmp_path):
    entry = cached_dir("modules", "k", lambda out: (out / "weights.bin").write_bytes(b"fresh weights"))
    flip(entry / "weights.bin")
    env = dict(os.environ, **{CACHE_ENV: str(store_dir)}, PYTHONPATH=str(ROOT))
    log = tmp_path / "builds.txt"
    runs = [subprocess.Popen([sys.executable, "-c", DAMAGED_BY_TWO, str(log)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert [out for out, _ in outputs] == ["fresh weights\n"] * 2
    assert log.read_text() == "built\n"
    assert sum(len(err.splitlines()) for _, err in outputs) == 1  # one warning between them


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class FullDiskFile:
    """A text file whose writes stop half-way with ENOSPC (the disk filled up while writing)."""

    def __init__(self, handle):
        self.handle = handle

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        no_space()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def full_disk_at(where: str, monkeypatch):
    """Inject ENOSPC into one store write: the build's own files, the manifest, the rename, the build log."""
    if where == "build":
        return lambda out: ((out / "weights.bin").write_bytes(b"half"),
                            (out / "more.bin").symlink_to("/dev/full"),  # the kernel's own ENOSPC
                            (out / "more.bin").write_bytes(b"x" * 65536))
    real_open, real_replace = open, os.replace
    if where == "manifest":
        monkeypatch.setattr(store, "open", lambda file, mode="r", *a, **k: FullDiskFile(real_open(file, mode, *a, **k))
                            if "w" in mode else real_open(file, mode, *a, **k), raising=False)
    elif where == "rename":
        monkeypatch.setattr(store.os, "replace", lambda src, dst: no_space() if Path(dst).parent.name == "modules"
                            else real_replace(src, dst))
    elif where == "build log":
        monkeypatch.setattr(store, "open", lambda file, mode="r", *a, **k: no_space()
                            if str(file).endswith("builds.log") else real_open(file, mode, *a, **k), raising=False)
    return Builder()


@pytest.mark.parametrize("where", ["build", "manifest", "rename"])
def test_a_full_disk_while_storing_leaves_nothing_and_the_next_run_stores_it(where, store_dir, monkeypatch):
    with monkeypatch.context() as fault:
        with pytest.raises((OSError, store.BenchError), match="No space left on device"):
            cached_dir("modules", "k", full_disk_at(where, fault))
    assert sorted(p.name for p in (store_dir / "modules").iterdir()) == [".k.lock"]  # no entry, no temporary
    assert not (store_dir / "builds.log").exists()
    build = Builder()
    entry = cached_dir("modules", "k", build)
    assert build.calls == 1 and verify_entry(entry) is None


def test_a_full_disk_for_the_build_log_still_stores_the_entry(store_dir, monkeypatch):
    entry = cached_dir("modules", "k", full_disk_at("build log", monkeypatch))
    assert verify_entry(entry) is None and not (store_dir / "builds.log").exists()


# --- Through `bench run` on the micro pair: damage is rebuilt and the results are the undamaged ones. ---------

# One module, two evaluations (old and new base); in this process (--workers 1), where the patched store and the
# captured stderr are (tests/test_workers.py: worker processes sharing one store).
FAST = ["run", "--pair", "micro", "--set", "steps=4", "--set", "batch_size=4", "--tasks", "tiny_knowledge",
        "--methods", "finetune_old,direct_transfer", "--workers", "1"]


@pytest.fixture(scope="module")
def populated(micro_pair, tmp_path_factory) -> tuple[Path, bytes]:
    """A cache holding the micro pair, finetune_old's module and its two evaluations; the run's results."""
    from bench.cli import quiet_libraries

    quiet_libraries()  # as `bench` does: no library progress bars on stderr
    cache = tmp_path_factory.mktemp("populated") / "cache"
    shutil.copytree(cache_dir() / "pairs", cache / "pairs")
    old = os.environ[CACHE_ENV]
    os.environ[CACHE_ENV] = str(cache)
    try:
        result = runner.invoke(app, [*FAST, "--out", str(cache.parent / "reference.json")])
    finally:
        os.environ[CACHE_ENV] = old
    assert result.exit_code == 0, result.output
    return cache, (cache.parent / "reference.json").read_bytes()


@pytest.fixture
def world(populated, tmp_path, monkeypatch) -> tuple[Path, bytes]:
    cache = tmp_path / "cache"
    shutil.copytree(populated[0], cache)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    monkeypatch.setattr(store, "_verified", {})
    return cache, populated[1]


def entries(cache: Path, kind: str) -> list[Path]:
    return sorted(p for p in (cache / kind).iterdir() if not p.name.startswith("."))


def builds(cache: Path, kind: str) -> list[str]:
    return [e["key"] for line in (cache / "builds.log").read_text().splitlines()
            if (e := json.loads(line))["kind"] == kind]


def assert_rebuilt(cache: Path, kind: str, entry: Path, built_before: list[str]) -> None:
    assert entry.is_dir() and verify_entry(entry) is None
    assert builds(cache, kind) == [*built_before, entry.name]  # built once more: that entry only
    assert [p.name for p in (cache / kind).iterdir() if p.is_dir() and p.name.startswith(".")] == []


@pytest.mark.parametrize("damage", ["a flipped byte", "a truncated file"])
def test_a_damaged_cached_module_is_retrained_with_one_warning(damage, world, tmp_path):
    cache, reference = world
    (module,) = entries(cache, "modules")
    built_before, evals_before = builds(cache, "modules"), builds(cache, "evals")
    weights = module / "adapter_model.safetensors"
    flip(weights) if damage == "a flipped byte" else truncate(weights)  # flipped: a weight, its header intact
    result = runner.invoke(app, [*FAST, "--out", str(tmp_path / "new.json")])
    assert result.exit_code == 0, result.output
    reason = "does not match its sha256" if damage == "a flipped byte" else "bytes, not"
    assert re.fullmatch(rf"warning: store entry {re.escape(str(module))} is damaged \(adapter_model\.safetensors "
                        rf"[^)]*{reason}[^)]*\); moving it aside and rebuilding it\n", result.stderr), result.stderr
    assert_rebuilt(cache, "modules", module, built_before)
    assert builds(cache, "evals") == evals_before  # the evaluations were reused
    assert (tmp_path / "new.json").read_bytes() == reference


def test_the_dry_run_counts_a_damaged_module_as_retrained_and_leaves_it(world):
    cache, _ = world
    (module,) = entries(cache, "modules")
    intact = runner.invoke(app, [*FAST, "--dry-run"])
    assert intact.exit_code == 0, intact.output
    assert "1 trainings (shared modules counted once; 1 already in the store)" in intact.stdout
    assert "(in the store: not retrained)" in intact.stdout
    flip(module / "adapter_model.safetensors")
    damaged_bytes = (module / "adapter_model.safetensors").read_bytes()
    result = runner.invoke(app, [*FAST, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 trainings (shared modules counted once; 0 already in the store, 1 there but damaged)" in result.stdout
    assert "(in the store but damaged, adapter_model.safetensors does not match its sha256: retrained)" in result.stdout
    assert "not retrained" not in result.stdout
    assert (module / "adapter_model.safetensors").read_bytes() == damaged_bytes  # a plan only looks


def test_a_damaged_cached_evaluation_is_rerun_with_one_warning(world, tmp_path):
    """Through the real `bench` (a rerun evaluation's lm-eval bars are off only there)."""
    cache, reference = world
    evaluation = entries(cache, "evals")[0]
    built_before = builds(cache, "evals")
    text = (evaluation / "eval.json").read_text()
    digit = re.search(r'"score": (\d)', text)
    (evaluation / "eval.json").write_text(text[: digit.start(1)] + str((int(digit[1]) + 1) % 10)
                                          + text[digit.end(1):])  # still valid JSON: another score
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "bench", *FAST, "--out", str(tmp_path / "new.json")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr == (f"warning: store entry {evaluation} is damaged (eval.json does not match its sha256); "
                          "moving it aside and rebuilding it\n")
    assert_rebuilt(cache, "evals", evaluation, built_before)
    assert (tmp_path / "new.json").read_bytes() == reference


def test_a_full_disk_while_storing_a_module_then_a_rerun_gives_the_same_results(world, tmp_path, monkeypatch):
    cache, reference = world
    (module,) = entries(cache, "modules")
    shutil.rmtree(module)
    out = tmp_path / "new.json"
    with monkeypatch.context() as fault:
        full_disk_at("rename", fault)
        result = runner.invoke(app, [*FAST, "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot store {module}: [Errno 28] No space left on device\n"
    assert not module.exists() and not out.exists()
    assert [p.name for p in (cache / "modules").iterdir() if p.is_dir()] == []  # nothing partial, visible or not
    result = runner.invoke(app, [*FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == reference and verify_entry(module) is None
