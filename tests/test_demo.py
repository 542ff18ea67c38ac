"""The main job end to end in a reduced mode: synth (scripted real HTTP server) -> train -> eval -> search."""

from __future__ import annotations

import json

import pytest

from infir.demo import TRAINED_MODEL_DIR, DemoConfig, run_demo
from tests.synth.chat_server import start_chat_server

RESPONDER = "tests.synth.responder:respond"


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reuses_its_work(tmp_path, monkeypatch):
    server = start_chat_server(tmp_path / "server", responder=RESPONDER)
    try:
        # The configured-server path of the demo: INFIR_LLM_* select the OpenAI-compatible backend.
        monkeypatch.setenv("INFIR_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("INFIR_LLM_MODEL", "scripted")
        config = DemoConfig(out_dir=tmp_path / "demo", synth_pairs=3, train_steps=2, batch_size=2,
                            show_progress=False)
        lines: list[str] = []
        result = run_demo(config, say=lines.append)

        assert result.synth_kept + result.synth_rejected == 3
        assert result.synth_kept >= 1 and result.train_rows == 40 + result.synth_kept
        assert (result.model_path / "infir_config.json").exists()
        report = json.loads(result.eval_json.read_text())
        models = report["results"]["demo"]
        assert set(models) == {"default", TRAINED_MODEL_DIR, "bm25"}
        assert all(isinstance(m["p_mrr"], float) for m in models.values())
        assert result.plot.stat().st_size > 0
        hits = result.search_example["results"]
        assert set(hits) == {"og", "changed"} and all(len(h["hits"]) == 3 for h in hits.values())
        assert any("->" in line for line in lines)  # every step says where its output went

        requests_before = server.stats()["requests"]
        model_mtime = (result.model_path / "model.safetensors").stat().st_mtime_ns
        again: list[str] = []
        run_demo(config, say=again.append)
        assert server.stats()["requests"] == requests_before  # synthesis came from the journal
        assert any("reusing" in line for line in again)
        assert (result.model_path / "model.safetensors").stat().st_mtime_ns == model_mtime
    finally:
        server.stop()
