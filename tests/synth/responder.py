"""An InF-IR-aware scripted LLM for tests: answers each pipeline prompt the way a good model would.

It lives in a tiny rule world that makes the judge's answers checkable:
- an instruction requires a term: ``Relevant passages must mention the term 'W'.``;
- a passage answers a query when it contains the query's last word;
- I+ asks for the longest word W of P+ that is not in the query; I- asks for ``W + "zz"``;
- Q- replaces the query's last word L by ``L + "q"``;
- a hard negative is the reference passage edited to fit: W -> Wzz (HN1), L -> Lq (HN2);
- the judge checks those rules exactly; an edit is plausible when few words changed.
So a correctly assembled row passes every check, and a mix-up (wrong field sent to a stage)
fails one. Replies are a pure function of the request, so journaled runs can be compared.

Faults, for the pipeline's robustness tests, come from ``INFIR_RESPONDER_FAULTS`` (JSON, read
when the server process starts): ``{"malformed_every": k}`` answers malformed JSON to the first
ask of every k-th prompt (by content hash; re-asks get a good reply); ``"always_malformed":
"<template>"`` never answers that template well; ``"status_429_every"``, ``"status_500_every"``,
``"timeout_every"`` (with ``"timeout_delay"``) fault the *first* arrival of every k-th distinct
request (a retry of the same request then succeeds).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from infir.synth.llm.base import LLMError, Reply

_FAULTS = json.loads(os.environ.get("INFIR_RESPONDER_FAULTS") or "{}")
_SEEN: set[str] = set()
_TEMPLATES = {
    "write search instructions": "instruction",
    "edit search instructions": "poison_instruction",
    "edit search queries": "poison_query",
    "write passages": "hard_negative",
    "strict relevance assessor": "judge_satisfies",
    "check edits": "judge_plausible",
}
_TERM = re.compile(r"the term '(\w+)'")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _field(prompt: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", prompt, re.MULTILINE)
    return match.group(1).strip() if match else ""


def _required_term(instruction: str) -> str:
    match = _TERM.search(instruction)
    return match.group(1).lower() if match else ""


def _instruction_term(query: str, passage: str) -> str:
    query_words = set(_words(query))
    candidates = [w for w in _words(passage) if w.isalpha() and w not in query_words]
    return max(candidates, key=len) if candidates else "passage"


def _replace_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{re.escape(old)}\b", new, text, flags=re.IGNORECASE)


def _satisfies(query: str, instruction: str, passage: str) -> bool:
    words = set(_words(passage))
    return _words(query)[-1] in words and _required_term(instruction) in words


def answer(template: str, prompt: str) -> dict:
    """The good reply (as an object) to one rendered prompt of `template`."""
    query, instruction = _field(prompt, "Query"), _field(prompt, "Instruction")
    if template == "instruction":
        term = _instruction_term(query, _field(prompt, "Passage"))
        return {"instruction": f"Relevant passages must mention the term '{term}'."}
    if template == "poison_instruction":
        term = _required_term(instruction)
        return {"instruction": instruction.replace(f"'{term}'", f"'{term}zz'")}
    if template == "poison_query":
        last = _words(query)[-1]
        return {"query": _replace_word(query, last, last + "q")}
    if template == "hard_negative":
        reference = _field(prompt, "Reference passage")
        term, last = _required_term(instruction), _words(query)[-1]
        text = reference
        if term.endswith("zz") and term not in _words(text):
            text = _replace_word(text, term[:-2], term)
        elif term not in _words(text):
            text = f"{text} {term}"
        if last.endswith("q") and last not in _words(text):
            text = _replace_word(text, last[:-1], last)
        if last not in _words(text):
            text = f"{text} {last}"
        return {"passage": text}
    if template == "judge_satisfies":
        verdict = _satisfies(query, instruction, _field(prompt, "Passage"))
        return {"reason": "rule check", "satisfies": verdict}
    if template == "judge_plausible":
        kind = "query" if "Original query:" in prompt else "instruction"
        original, edited = _field(prompt, f"Original {kind}"), _field(prompt, f"Edited {kind}")
        changed = len(set(_words(original)) ^ set(_words(edited)))
        return {"reason": "word diff", "plausible": 0 < changed <= 4}
    raise ValueError(f"unknown template {template!r}")


def _template_of(messages: list[dict]) -> str:
    system = messages[0]["content"]
    for needle, template in _TEMPLATES.items():
        if needle in system:
            return template
    raise ValueError(f"not a pipeline prompt: {system[:80]!r}")


def _every(faults: dict, name: str, digest: str) -> bool:
    k = int(faults.get(name) or 0)
    return k > 0 and int(digest[:8], 16) % k == 0


def respond(request: dict, faults: dict | None = None) -> str | dict:
    """The chat server's responder: request JSON in, reply text (or a fault entry) out.

    `faults` defaults to ``INFIR_RESPONDER_FAULTS`` (see the module docstring).
    """
    faults = _FAULTS if faults is None else faults
    messages = request["messages"]
    template = _template_of(messages)
    prompt = messages[1]["content"]
    is_reask = len(messages) > 2
    prompt_digest = hashlib.sha256(prompt.encode()).hexdigest()
    request_digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    if request_digest not in _SEEN:
        _SEEN.add(request_digest)
        if _every(faults, "status_429_every", request_digest):
            return {"status": 429, "retry_after": 0.05}
        if _every(faults, "status_500_every", request_digest):
            return {"status": 500}
        if _every(faults, "timeout_every", request_digest):
            return {"delay": float(faults.get("timeout_delay", 2.0))}
    if faults.get("always_malformed") == template:
        return "I am sorry, I cannot answer in JSON."
    if not is_reask and _every(faults, "malformed_every", prompt_digest):
        return '```json\n{"instruction": "unterminated\n```'
    reply = json.dumps(answer(template, prompt))
    # Strong models often fence their JSON; the pipeline must strip that.
    return f"```json\n{reply}\n```" if int(prompt_digest[8:10], 16) % 2 else reply


class ResponderClient:
    """An in-process `LLMClient` over `respond`, for fast unit tests without a server.

    Fault entries become `LLMError` (the HTTP client's retries are S1's business, tested there).
    """

    def __init__(self, model: str = "fake-model", faults: dict | None = None):
        self.model = model
        self.faults = faults or {}
        self.calls: list[dict] = []

    async def complete(self, messages: list[dict], **params) -> Reply:
        request = {"model": self.model, "messages": messages, **params}
        self.calls.append(request)
        reply = respond(request, self.faults)
        if isinstance(reply, dict):
            raise LLMError(f"fault: {reply}")
        return Reply(
            reply, self.model, prompt_tokens=len(str(messages)) // 4, completion_tokens=len(reply) // 4
        )

    async def aclose(self) -> None:
        return None
