"""The trainer on a tiny random encoder: loss goes down, the folder loads, resume continues."""

from __future__ import annotations

import json

import pytest

from infir.data.records import INF_FIELDS
from infir.models import INFIR_CONFIG_NAME, read_infir_config
from infir.train import TrainConfig, train
from infir.train.trainer import CHECKPOINTS_DIR, TRAINING_LOG_NAME, InfTextCollator, records_dataset


def test_dataset_and_collator_hand_raw_text_per_field(inf_rows):
    dataset = records_dataset(inf_rows)
    batch = InfTextCollator()([dataset[0], dataset[1]])
    assert list(batch) == list(INF_FIELDS)
    assert batch["query_positive"] == [inf_rows[0].query_positive, inf_rows[1].query_positive]


def test_no_instructions_blanks_both_instructions_only(inf_rows):
    dataset = records_dataset(inf_rows, no_instructions=True)
    assert set(dataset["instruction_positive"]) == {""}
    assert set(dataset["instruction_negative"]) == {""}
    assert dataset["query_negative"] == [row.query_negative for row in inf_rows]


def test_empty_records_and_bf16_on_cpu_are_clear_errors(inf_rows, tmp_path):
    with pytest.raises(ValueError, match="no training rows"):
        train([], TrainConfig(), tmp_path)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="bf16 needs a CUDA GPU"):
            train(inf_rows, TrainConfig(bf16=True), tmp_path)


def test_resume_without_checkpoint_names_the_folder(inf_rows, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(inf_rows, TrainConfig(resume=True), tmp_path)


def test_unknown_objective_is_rejected():
    with pytest.raises(ValueError):
        TrainConfig(objective="multi:X")


@pytest.mark.slow
def test_tiny_run_lowers_loss_and_saves_a_loadable_folder(inf_rows, tiny_encoder_path, tmp_path):
    from sentence_transformers import SentenceTransformer

    config = TrainConfig(
        model=str(tiny_encoder_path), max_steps=8, batch_size=4, learning_rate=1e-3, max_query_length=32
    )
    result = train(inf_rows, config, tmp_path / "model")

    assert result.global_step == 8
    assert len(result.losses) == 8
    # Same 8 rows seen again and again: the last logged losses sit clearly below the first ones.
    assert sum(result.losses[-2:]) / 2 < 0.8 * sum(result.losses[:2]) / 2

    model = SentenceTransformer(str(result.model_path), device="cpu")
    vectors = model.encode(["how long to boil an egg", "a passage"])
    assert vectors.shape == (2, 32)
    assert model.prompts["query"] == ""

    saved = read_infir_config(result.model_path)
    assert saved["text_format"] == "concat"
    assert saved["objective"] == "multi:P,I"
    assert saved["global_step"] == 8
    assert (result.model_path / INFIR_CONFIG_NAME).is_file()

    log = json.loads((result.model_path / TRAINING_LOG_NAME).read_text())
    assert [entry["step"] for entry in log["steps"]] == list(range(1, 9))
    assert all(entry["rows_per_second"] > 0 and entry["learning_rate"] > 0 for entry in log["steps"])


@pytest.mark.slow
def test_resume_from_checkpoint_continues_the_step_count(inf_rows, tiny_encoder_path, tmp_path):
    out = tmp_path / "model"
    first = TrainConfig(model=str(tiny_encoder_path), max_steps=2, save_steps=2, max_query_length=32)
    assert train(inf_rows, first, out).global_step == 2
    assert (out / CHECKPOINTS_DIR / "checkpoint-2").is_dir()

    resumed = train(inf_rows, first.model_copy(update={"max_steps": 4, "resume": True}), out)

    assert resumed.global_step == 4
    # Only the steps after the checkpoint ran in the resumed process.
    assert [entry["step"] for entry in json.loads(resumed.log_path.read_text())["steps"]] == [3, 4]
    assert read_infir_config(out)["global_step"] == 4


@pytest.mark.slow
def test_no_instructions_run_records_the_baseline(inf_rows, tiny_encoder_path, tmp_path):
    config = TrainConfig(model=str(tiny_encoder_path), max_steps=1, no_instructions=True, max_query_length=32)
    result = train(inf_rows, config, tmp_path / "baseline")
    assert read_infir_config(result.model_path)["no_instructions"] is True
    assert result.losses and result.losses[0] > 0


def _write_rows(path, rows) -> None:
    path.write_text("".join(json.dumps(row.to_dict()) + "\n" for row in rows), encoding="utf-8")


def test_cli_reports_bad_input_with_file_and_line(inf_rows, tmp_path):
    from typer.testing import CliRunner

    from infir.cli import app

    data = tmp_path / "rows.jsonl"
    _write_rows(data, inf_rows[:2])
    with data.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2
    output = " ".join(result.output.split())  # rich wraps long lines
    assert "rows.jsonl, line 3: malformed JSON" in output


@pytest.mark.slow
def test_cli_trains_skipping_invalid_rows(inf_rows, tiny_encoder_path, tmp_path):
    from typer.testing import CliRunner

    from infir.cli import app

    data = tmp_path / "rows.jsonl"
    _write_rows(data, inf_rows)
    with data.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**inf_rows[0].to_dict(), "query_positive": " "}) + "\n")
    out = tmp_path / "m"
    args = ["train", "--data", str(data), "--out", str(out), "--model", str(tiny_encoder_path)]
    result = CliRunner().invoke(
        app, [*args, "--max-steps", "1", "--max-query-length", "32", "--skip-invalid"]
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 invalid row" in result.output
    assert "model saved to" in result.output
    assert (out / "modules.json").is_file()
