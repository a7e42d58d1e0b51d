"""``safeguards llm train`` on two processes (``torchrun`` and ``accelerate launch``): one run
directory written by the main process, the shield's token index built once and shared through
the cache, every process's completions in the metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("accelerate")

from tests.test_llm_train import CHAT_TEMPLATE, CONFIG  # noqa: E402

pytestmark = pytest.mark.slow


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"],
    # accelerate's --cpu flag starts one process; --multi_gpu starts torchrun's N, CPU or not
    "accelerate": [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu",
                   "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                   "--dynamo_backend", "no"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_train_one_run(tmp_path: Path, launcher: str) -> None:
    from tests.llm_tiny import tiny_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    tiny_model(tokenizer).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(model=tmp_path / "model").replace(
        "checkpoint_every = 1\n", "checkpoint_every = 1\nshield = true\n"), encoding="utf-8")
    env = {**os.environ, "SAFEGUARDS_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*LAUNCHERS[launcher], "-m", "safeguards", "llm", "train", str(config), "--run-dir", str(tmp_path / "runs"),
         "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 processes" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.count("after stage 2") == 1  # the main process reports
    run = tmp_path / "runs" / "progressive"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["completions"] == 4 for r in rows)  # 2 prompts x 2 generations, both processes
    assert all(r["violated/no_pii"] == 0 for r in rows)  # the shield held in every process
    assert len(json.loads((run / "result.json").read_text())["evaluations"]) == 2
    assert len(list((tmp_path / "cache" / "token-index").glob("*.npz"))) == 2  # one per stage
    assert not list(run.rglob("*.tmp"))
