"""What ``rag ask`` and ``rag chat`` print: answers with their sources, streamed or not, and the chat loop.

Talks only to the pipeline (``ask`` / ``ask_stream``). Output goes to ``out`` (stdout), notes about the
answer's grounding to ``err`` (stderr), so a piped answer stays clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict
from typing import IO, Any, Protocol

from rag.filters import Filters
from rag.types import Answer, DoneEvent, PassagesEvent, StreamEvent, TokenEvent

EXIT_WORDS = frozenset({"exit", "quit", ":q", "退出"})
MAX_HISTORY = 6  # turns kept for follow-up rewriting


class _Asker(Protocol):
    def ask(
        self,
        question: str,
        k: int | None = None,
        history: list[tuple[str, str]] | None = None,
        *,
        filters: Filters | None = None,
    ) -> Answer: ...

    def ask_stream(
        self,
        question: str,
        k: int | None = None,
        history: list[tuple[str, str]] | None = None,
        *,
        filters: Filters | None = None,
    ) -> Iterable[StreamEvent]: ...


def print_sources(answer: Answer, out: IO[str]) -> None:
    if answer.citations:
        print(file=out)
        for c in answer.citations:
            print(f"[{c.number}] {c.source} ({c.location}, chars {c.start}-{c.end})", file=out)


def print_notes(answer: Answer, err: IO[str]) -> None:
    """Warnings about what the grounding found: removed citations, unsupported sentences, a replaced answer."""
    if answer.invalid_citations:
        numbers = ", ".join(f"[{n}]" for n in answer.invalid_citations)
        print(f"note: removed citation(s) {numbers}: no such passage", file=err)
    if answer.unsupported:
        replaced = answer.grounding == "extractive" and bool(answer.generator)
        what = "the model's answer was not grounded in the passages and was replaced" if replaced else "unsupported"
        for sentence in answer.unsupported:
            print(f"note: {what}: {sentence!r}", file=err)


def ask_once(
    pipeline: _Asker,
    question: str,
    *,
    stream: bool = False,
    as_json: bool = False,
    history: list[tuple[str, str]] | None = None,
    filters: Filters | None = None,
    json_indent: int | None = 2,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> Answer:
    """Answer one question and print it (JSON, or text with sources); returns the Answer."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not stream:
        answer = pipeline.ask(question, history=history, filters=filters)
        if as_json:
            print(json.dumps(asdict(answer), ensure_ascii=False, indent=json_indent, default=str), file=out)
            return answer
        print(answer.text, file=out)
        print_sources(answer, out)
        print_notes(answer, err)
        return answer
    return _print_stream(pipeline.ask_stream(question, history=history, filters=filters), as_json, out, err)


def _print_stream(events: Iterable[StreamEvent], as_json: bool, out: IO[str], err: IO[str]) -> Answer:
    streamed: list[str] = []
    final: Answer | None = None
    for event in events:
        if as_json:  # one JSON object per line: passages, token..., done
            print(json.dumps(_event_dict(event), ensure_ascii=False, default=str), file=out, flush=True)
        elif isinstance(event, TokenEvent):
            streamed.append(event.text)
            print(event.text, end="", file=out, flush=True)
        if isinstance(event, DoneEvent):
            final = event.answer
    if final is None:
        raise AssertionError("the answer stream ended without a done event")
    if not as_json:
        print(file=out)
        if " ".join("".join(streamed).split()) != " ".join(final.text.split()):
            print(f"\nChecked against the passages, the answer is:\n{final.text}", file=out)
        print_sources(final, out)
        print_notes(final, err)
    return final


def _event_dict(event: StreamEvent) -> dict[str, Any]:
    if isinstance(event, PassagesEvent):
        return {"kind": event.kind, "passages": [asdict(c) for c in event.passages]}
    if isinstance(event, TokenEvent):
        return {"kind": event.kind, "text": event.text}
    return {"kind": event.kind, "answer": asdict(event.answer)}


def chat(
    pipeline: _Asker,
    lines: Iterable[str],
    *,
    stream: bool = False,
    as_json: bool = False,
    interactive: bool = False,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Answer each line of ``lines`` as a turn of one conversation, until they end or a line says exit.
    With ``as_json`` each answer (or, streamed, each event) is one line of JSON. Returns the number of
    questions answered."""
    out = out or sys.stdout
    err = err or sys.stderr
    history: list[tuple[str, str]] = []
    asked = 0
    if interactive:
        print("Ask about your documents; follow-up questions are understood. 'exit' or Ctrl-D to quit.", file=err)
        print("> ", end="", file=err, flush=True)
    for line in lines:
        question = line.strip()
        if question.lower() in EXIT_WORDS:
            break
        if question:
            answer = ask_once(
                pipeline, question, stream=stream, as_json=as_json, history=history, json_indent=None, out=out, err=err
            )
            asked += 1
            history = [*history, (question, "" if answer.refused else answer.text)][-MAX_HISTORY:]
            if not as_json:
                print(file=out, flush=True)
        if interactive:
            print("> ", end="", file=err, flush=True)
    return asked
