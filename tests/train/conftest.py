"""Training fixtures: a few hand-written InF-IR rows and tiny randomly initialised backbones.

The backbones are built locally (no download): a 2-layer BERT encoder and a 2-layer Llama decoder
with hidden size 32, both reusing the packaged MiniLM tokenizer, so a training step takes
milliseconds and the tests run on a shared 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infir.data.records import INF_FIELDS, InfRecord

# Eight rows on different topics; negatives are minimal edits of the positives, as in InF-IR.
_ROWS = [
    (
        "how long to boil an egg",
        "Give the time for a soft-boiled egg with a runny yolk.",
        "A soft-boiled egg with a runny yolk needs about six minutes in boiling water.",
        "Give the time for a hard-boiled egg with a firm yolk.",
        "how long to fry an egg",
        "A hard-boiled egg with a firm yolk needs ten to twelve minutes in boiling water.",
        "Frying an egg sunny side up takes about three minutes over medium heat.",
    ),
    (
        "capital of australia",
        "Name the city that is the seat of the federal government.",
        "Canberra is the capital of Australia and the seat of its federal government.",
        "Name the largest city by population.",
        "capital of austria",
        "Sydney is the largest city in Australia, with over five million people.",
        "Vienna is the capital of Austria, on the river Danube.",
    ),
    (
        "python list sort",
        "Explain how to sort a list in place without creating a new list.",
        "list.sort() sorts a Python list in place and returns None.",
        "Explain how to get a new sorted list and keep the original unchanged.",
        "python dict sort",
        "sorted(items) returns a new sorted list and leaves the original untouched.",
        "To sort a dict by value use sorted(d.items(), key=lambda kv: kv[1]).",
    ),
    (
        "symptoms of flu",
        "List symptoms that appear in adults within the first two days.",
        "In adults, flu begins suddenly with fever, chills and muscle aches in the first two days.",
        "List symptoms that appear in young children only.",
        "symptoms of measles",
        "Young children with flu often have ear pain, vomiting and diarrhea.",
        "Measles causes a high fever followed by a red blotchy rash spreading from the face.",
    ),
    (
        "best time to plant tomatoes",
        "Answer for gardeners in a temperate climate planting outdoors.",
        "In temperate climates, plant tomatoes outdoors after the last spring frost.",
        "Answer for growers planting tomatoes in a heated greenhouse.",
        "best time to plant garlic",
        "In a heated greenhouse tomatoes can be planted in late winter.",
        "Garlic is planted in autumn, a few weeks before the ground freezes.",
    ),
    (
        "who painted the mona lisa",
        "The answer should mention the artist's full name and the century.",
        "The Mona Lisa was painted by Leonardo da Vinci in the sixteenth century.",
        "The answer should mention the museum where the painting hangs.",
        "who stole the mona lisa",
        "The Mona Lisa hangs in the Louvre museum in Paris.",
        "Vincenzo Peruggia stole the Mona Lisa from the Louvre in 1911.",
    ),
    (
        "speed of sound",
        "Give the value in dry air at room temperature in metres per second.",
        "Sound travels at about 343 metres per second in dry air at 20 degrees Celsius.",
        "Give the value in sea water in metres per second.",
        "speed of light",
        "In sea water sound travels at roughly 1500 metres per second.",
        "Light travels at about 300,000 kilometres per second in a vacuum.",
    ),
    (
        "how to reset a router",
        "Describe a factory reset that erases all settings.",
        "Hold the reset button for thirty seconds to restore the router's factory settings.",
        "Describe a simple restart that keeps all settings.",
        "how to reset a phone",
        "Unplug the router for ten seconds and plug it back in to restart it.",
        "On most phones a factory reset is under Settings, System, Reset options.",
    ),
]


@pytest.fixture
def inf_rows() -> list[InfRecord]:
    """Eight InF-IR rows (SPEC §1) on different topics."""
    return [InfRecord(**dict(zip(INF_FIELDS, row, strict=True))) for row in _ROWS]


def _save_minilm_tokenizer(folder: Path) -> None:
    from transformers import AutoTokenizer

    from infir.models import default_model_path

    AutoTokenizer.from_pretrained(str(default_model_path())).save_pretrained(str(folder))


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) saved as a plain transformers folder."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(folder))
    _save_minilm_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_decoder_path(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama decoder (hidden 32) saved as a plain transformers folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-decoder")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder))
    _save_minilm_tokenizer(folder)
    return folder
