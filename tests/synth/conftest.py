"""The `chat_server` fixture: a scripted chat-completions server process on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.synth.chat_server import ChatServer, start_chat_server


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[Callable[..., ChatServer]]:
    """Factory: ``server = chat_server(script=[...] | responder="mod:fn", latency=0.0, ...)``.

    Each call starts one server process (see `start_chat_server` for the arguments); every one is
    stopped at teardown.
    """
    started: list[ChatServer] = []

    def start(**kwargs) -> ChatServer:
        server = start_chat_server(tmp_path / "chat_server", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
