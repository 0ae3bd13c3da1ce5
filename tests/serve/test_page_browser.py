"""The web page in a real headless browser (Debian's Chromium driven by Playwright) against a live server on
127.0.0.1: ask and watch the answer stream, click a citation and check the marked span against the file, follow
up (the history reaches the server), upload by drag and drop and follow the job, delete a document, the API key
asked once per browser session, and document text holding HTML that must stay text. Screenshots go to tmp_path.

Fast tests run on the fakes (HashEmbedder, EchoGenerator); the last test uses the real default models."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_browser import CHROMIUM_ARGS, chromium_or_skip, live_server

from rag.answer.generators.base import GenerationRequest
from rag.config import RagConfig
from rag.pipeline import RagPipeline
from rag.serve.app import ServerSettings, create_app
from rag.testing import EchoGenerator, HashEmbedder

pytestmark = pytest.mark.browser

QUESTION = "When was the Transformer architecture introduced?"
KEY = "page-key-123"
TIMEOUT_MS = 15_000
TOKEN_DELAY_S = 0.03

# The payload would set these if any of it ran; the page's title is "rag".
XSS = (
    "Security note about pwned pages: <script>window.__pwned = 'script'; document.title = 'pwned';</script> "
    "and <img src=x onerror=\"window.__pwned = 'img'; document.title = 'pwned'\"> stay plain text.\n\n"
    "The rest of the pwned note is harmless.\n"
)


class SlowEcho(EchoGenerator):
    """The echo generator, one word every few milliseconds: slow enough to see the answer grow."""

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        for piece in super().stream(request):
            time.sleep(TOKEN_DELAY_S)
            yield piece


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(url)``: a new browser session (context) on the page; page errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_(url: str, context: Any = None) -> Any:
        if context is None:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def pipeline(tmp_path: Path, corpus_dir: Path) -> Iterator[RagPipeline]:
    p = RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True), embedder=HashEmbedder(), generator=SlowEcho())
    p.ingest([corpus_dir])
    yield p
    p.close()


def ask(page: Any, question: str, turns_before: int) -> Any:
    """Type ``question``, press Enter, wait until its answer is finished; returns that turn's element."""
    page.fill("#question", question)
    page.press("#question", "Enter")
    turn = page.locator("#conversation > li.turn").nth(turns_before)
    turn.locator(".answer-meta").wait_for()  # written when the answer is done (or failed)
    page.wait_for_function("() => !document.querySelector('.turn.streaming')")
    return turn


def record_answer_growth(page: Any) -> None:
    """Keep every text the answer shows while it streams (window.__seen)."""
    page.evaluate(
        """() => {
            window.__seen = [];
            new MutationObserver(() => {
                const turn = document.querySelector('#conversation > li.turn.streaming');
                if (turn) window.__seen.push(turn.querySelector('.answer-text').textContent);
            }).observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true});
        }"""
    )


def same_words(a: str, b: str) -> bool:
    return a.split() == b.split()


def test_ask_streams_the_answer_and_a_citation_opens_its_passage(
    pipeline: RagPipeline, open_page: Callable[..., Any], corpus_dir: Path, tmp_path: Path
) -> None:
    expected = pipeline.ask(QUESTION)
    cited = expected.citations[0]
    with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
        page = open_page(url)
        record_answer_growth(page)
        turn = ask(page, QUESTION, 0)

        seen = [s for s in page.evaluate("window.__seen") if s.strip()]
        growth = list(dict.fromkeys(seen))
        assert len(growth) >= 3, f"the answer did not stream: {growth}"
        assert all(b.startswith(a.rstrip()) for a, b in itertools.pairwise(growth))
        assert same_words(turn.locator(".answer-text").text_content(), expected.text)

        # every passage of the answer is listed; the cited one is marked as cited
        sources = page.locator("#sources > li.source")
        assert sources.count() == len(expected.passages)
        link = turn.locator("a.cite").first
        assert link.text_content() == f"[{cited.number}]"
        link.click()

        item = page.locator(f"#source-{cited.number}")
        assert "open" in (item.get_attribute("class") or "") and "cited" in (item.get_attribute("class") or "")
        assert item.locator(".source-file").text_content() == Path(cited.source).name
        where = item.locator(".passage-where").text_content()
        assert cited.source in where and cited.location in where and f"chars {cited.start}–{cited.end}" in where
        assert item.locator(".passage-text").text_content() == cited.text

        # the marked span is where the page says it is in the file, and it holds the answer's claim
        mark = item.locator("mark")
        start, end = int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end"))
        assert cited.start <= start < end <= cited.end
        source_text = (corpus_dir / Path(cited.source).name).read_text(encoding="utf-8")
        assert source_text[start:end] == mark.text_content()
        claim = expected.text.replace(f"[{cited.number}]", "").strip()
        assert claim in mark.text_content()
        assert "whole" not in (mark.get_attribute("class") or "")  # a sentence, not the whole passage

        page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)
        assert (tmp_path / "ask.png").stat().st_size > 10_000

        # a follow-up sends the conversation so far, and the server rewrites the question with it
        sent: list[dict[str, Any]] = []
        page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/ask") else None)
        follow_up = ask(page, "What did it replace?", 1)
        assert sent and sent[-1]["history"] == [{"question": QUESTION, "answer": expected.text}]
        assert sent[-1]["stream"] is True
        assert "Searched for: What did it replace? (" in follow_up.locator(".answer-meta").text_content()
        # the sources panel follows the newest turn; clicking the first answer shows its passages again
        assert "What did it replace?" in page.locator("#sources-for").text_content()
        page.locator("#conversation > li.turn").first.locator(".answer-text").click()
        assert QUESTION in page.locator("#sources-for").text_content()

        # a new conversation forgets the history
        page.click("#new-button")
        assert page.locator("#conversation > li").count() == 0
        ask(page, QUESTION, 0)
        assert sent[-1]["history"] == []


def test_the_claim_and_its_sentence_are_found_in_english_and_chinese(
    pipeline: RagPipeline, open_page: Callable[..., Any]
) -> None:
    """The page's own functions (sources.js, answer.js), run in the browser on texts we know the answer for."""
    passage_en = 'The Transformer was introduced in 2017 in the paper "Attention". It removed recurrence; it is fast.'
    passage_zh = (
        "检索增强生成（RAG）由 Lewis 等人在 2020 年提出。它把检索和生成结合起来。模型先检索相关段落，再回答问题。"
    )
    cases = [
        # (answer, where its marker starts, passage, the sentence expected to be marked or None)
        (
            "It was introduced in 2017. [1]",
            "[1]",
            passage_en,
            'The Transformer was introduced in 2017 in the paper "Attention".',
        ),
        ("Attention only [2]. It removed recurrence [1][2].", "[1]", passage_en, "It removed recurrence;"),
        ("检索增强生成是 2020 年提出的。[1]", "[1]", passage_zh, "检索增强生成（RAG）由 Lewis 等人在 2020 年提出。"),
        ("模型会先检索段落再回答[1]。", "[1]", passage_zh, "模型先检索相关段落，再回答问题。"),
        ("The weather is nice today. [1]", "[1]", passage_en, None),
    ]
    with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
        page = open_page(url)
        for answer, marker, passage, expected in cases:
            marked = page.evaluate(
                """async ([answer, at, passage]) => {
                    const {claimBefore} = await import('/web/answer.js');
                    const {bestSentence} = await import('/web/sources.js');
                    const span = bestSentence(passage, claimBefore(answer, at));
                    return span && passage.slice(span[0], span[1]);
                }""",
                [answer, answer.index(marker), passage],
            )
            assert marked == expected, (answer, marked)


def drop_files(page: Any, selector: str, files: dict[str, str]) -> None:
    """Drop ``files`` (name -> text) on ``selector`` as a user dragging them from the desktop would."""
    page.evaluate(
        """([selector, files]) => {
            const data = new DataTransfer();
            for (const [name, text] of Object.entries(files))
                data.items.add(new File([text], name, {type: 'text/plain'}));
            const zone = document.querySelector(selector);
            for (const type of ['dragenter', 'dragover', 'drop'])
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        [selector, files],
    )


def info_field(page: Any, field: str) -> Any:
    """The value the index panel shows for ``field`` of GET /info."""
    return page.locator(f'#info dd[data-field="{field}"]')


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect(locator)


def test_upload_by_drag_and_drop_follows_the_job_and_delete_removes_the_document(
    pipeline: RagPipeline, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    before = pipeline.info().documents
    with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
        page = open_page(url)
        page.click("#tab-docs")
        assert page.locator("#documents-body tr").count() == before
        expect(info_field(page, "documents")).to_have_text(str(before))

        drop_files(page, "#dropzone", {"llama-notes.md": "# Llamas\n\nLlamas hum when they are curious.\n"})
        job = page.locator("#jobs > li").first
        job.locator(".job-status", has_text="done").wait_for()
        assert "llama-notes.md" in job.locator(".job-files").text_content()
        assert "1 added" in job.locator(".job-detail").text_content()
        row = page.locator("#documents-body tr", has_text="llama-notes.md")
        row.wait_for()
        assert row.locator(".tag").text_content() == "uploaded"
        expect(info_field(page, "documents")).to_have_text(str(before + 1))
        uploaded = [d.path for d in pipeline.documents() if d.path.endswith("llama-notes.md")]
        assert len(uploaded) == 1 and Path(uploaded[0]).is_file()

        # a file type the ingest cannot read: the server's reason, shown as the job's failure
        drop_files(page, "#dropzone", {"tool.exe": "MZ"})
        failed = page.locator("#jobs > li").first
        failed.locator(".job-status", has_text="failed").wait_for()
        assert "unsupported file type" in failed.locator(".job-detail").text_content()

        page.screenshot(path=str(tmp_path / "documents.png"), full_page=True)

        # delete asks first; dismissing keeps the document
        page.once("dialog", lambda d: d.dismiss())
        row.locator("button.delete").click()
        assert page.locator("#documents-body tr", has_text="llama-notes.md").count() == 1
        page.once("dialog", lambda d: d.accept())
        row.locator("button.delete").click()
        page.locator("#documents-body tr", has_text="llama-notes.md").wait_for(state="detached")
        expect(info_field(page, "documents")).to_have_text(str(before))
        assert [d.path for d in pipeline.documents() if d.path.endswith("llama-notes.md")] == []
        assert not Path(uploaded[0]).exists()  # the uploaded file went with it


def test_a_fresh_server_says_there_is_no_index_until_the_first_upload(
    tmp_path: Path, open_page: Callable[..., Any]
) -> None:
    empty = RagPipeline(RagConfig(index=tmp_path / "new", quiet=True), embedder=HashEmbedder(), generator=SlowEcho())
    try:
        with live_server(create_app(empty, ServerSettings(warm_up=False))) as url:
            page = open_page(url)
            page.locator("#summary", has_text="no index yet").wait_for()
            turn = ask(page, QUESTION, 0)
            assert "no index" in turn.locator(".answer-meta .error").text_content()  # the server's reason
            page.click("#tab-docs")
            assert page.locator("#docs-empty").is_visible()
            drop_files(page, "#dropzone", {"first.txt": "The first document of a new index."})
            page.locator("#jobs > li .job-status", has_text="done").wait_for()
            page.locator("#summary", has_text="1 document ·").wait_for()
            assert page.locator("#docs-empty").is_hidden()
            assert page.locator("#documents-body tr").count() == 1
    finally:
        empty.close()


def test_document_text_holding_html_is_shown_as_text_and_never_runs(
    pipeline: RagPipeline, open_page: Callable[..., Any], tmp_path: Path
) -> None:
    evil = tmp_path / "pwned-note.txt"
    evil.write_text(XSS, encoding="utf-8")
    with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
        page = open_page(url)
        page.evaluate(
            """() => {
                window.__violations = [];
                document.addEventListener(
                    'securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
            }"""
        )
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.click("#tab-docs")
        page.set_input_files("#file-input", str(evil))  # "choose files"
        page.locator("#jobs > li .job-status", has_text="done").wait_for()
        page.locator("#documents-body tr", has_text="pwned-note.txt").wait_for()

        page.click("#tab-ask")
        turn = ask(page, "What does the security note say about pwned pages?", 0)
        answer = turn.locator(".answer-text").text_content()
        assert "<script>window.__pwned" in answer  # the echo generator repeats the passage: shown literally
        turn.locator("a.cite").first.click()
        passage = page.locator("#sources .source.open .passage-text")
        assert passage.text_content() == XSS.strip()
        assert "<img src=x onerror=" in passage.inner_text()  # what the reader sees

        assert page.evaluate("window.__pwned") is None
        assert page.title() == "rag"
        assert page.locator("#conversation img, #sources img, #documents img").count() == 0
        assert page.locator("script").count() == 1  # only the page's own module
        assert page.evaluate("window.__violations") == []  # nothing even tried to run
        assert dialogs == []
        page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)


def test_the_feedback_buttons_under_a_recorded_answer_reach_the_index(
    tmp_path: Path, corpus_dir: Path, open_page: Callable[..., Any]
) -> None:
    from rag.index.questions import QuestionLog

    config = RagConfig(index=tmp_path / "rec", quiet=True, record_questions=True)
    with RagPipeline(config, embedder=HashEmbedder(), generator=EchoGenerator()) as recording:
        recording.ingest([corpus_dir])
        with live_server(create_app(recording, ServerSettings(warm_up=False))) as url:
            page = open_page(url)
            turn = ask(page, QUESTION, 0)
            helpful, unhelpful = turn.locator(".feedback-button").nth(0), turn.locator(".feedback-button").nth(1)
            assert (helpful.text_content(), unhelpful.text_content()) == ("Helpful", "Not helpful")
            unhelpful.click()
            turn.locator(".feedback-status", has_text="Thanks").wait_for()
            assert unhelpful.get_attribute("aria-pressed") == "true"
            assert helpful.get_attribute("aria-pressed") == "false"
            (only,) = QuestionLog(recording.index_path).all()
            assert only.question == QUESTION and only.helpful is False
            helpful.click()  # changing one's mind: the latest feedback counts
            page.wait_for_function(
                "() => document.querySelector('.feedback-button').getAttribute('aria-pressed') === 'true'"
            )
            assert QuestionLog(recording.index_path).all()[0].helpful is True


def test_an_answer_that_was_not_recorded_has_no_feedback_buttons(
    pipeline: RagPipeline, open_page: Callable[..., Any]
) -> None:
    with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
        turn = ask(open_page(url), QUESTION, 0)
        assert turn.locator(".answer-text").text_content().strip()
        assert turn.locator(".feedback-button").count() == 0


def test_the_api_key_is_asked_once_and_kept_for_the_browser_session(
    pipeline: RagPipeline, open_page: Callable[..., Any], browser: Any
) -> None:
    app = create_app(pipeline, ServerSettings(api_key=KEY, warm_up=False))
    documents = pipeline.info().documents
    with live_server(app) as url:
        page = open_page(url)  # the page itself loads without the key
        dialog = page.locator("#key-dialog")
        dialog.wait_for(state="visible")
        assert page.locator("#key-error").is_hidden()  # first time: no complaint, just the question

        page.fill("#key-input", "wrong-key")
        page.click("#key-submit")
        page.locator("#key-error", has_text="invalid API key").wait_for()
        assert dialog.is_visible()

        authorizations: list[str | None] = []
        page.on(
            "request", lambda r: None if "/web/" in r.url else authorizations.append(r.headers.get("authorization"))
        )
        page.fill("#key-input", KEY)
        page.click("#key-submit")
        dialog.wait_for(state="hidden")
        expect(page.locator("#summary")).to_contain_text(f"{documents} documents ·")
        assert page.evaluate("sessionStorage.getItem('rag.apiKey')") == KEY

        turn = ask(page, QUESTION, 0)
        assert turn.locator("a.cite").count() >= 1
        assert authorizations and set(authorizations) == {f"Bearer {KEY}"}

        # a reload in the same tab keeps the key: no second question
        page.reload()
        expect(page.locator("#summary")).to_contain_text(f"{documents} documents ·")
        assert dialog.is_hidden()

        # a new browser session asks again
        other = open_page(url)
        other.locator("#key-dialog").wait_for(state="visible")


@pytest.mark.slow
def test_the_page_with_the_real_default_models(open_page: Callable[..., Any], tmp_path: Path, corpus_dir: Path) -> None:
    pipeline = RagPipeline(RagConfig(index=tmp_path / "idx", quiet=True))
    try:
        pipeline.ingest([corpus_dir])
        with live_server(create_app(pipeline, ServerSettings(warm_up=False))) as url:
            page = open_page(url)
            page.set_default_timeout(240_000)  # the first answer loads the generator
            turn = ask(page, QUESTION, 0)
            answer = turn.locator(".answer-text").text_content()
            assert "2017" in answer
            link = turn.locator("a.cite").first
            number = int(link.get_attribute("data-n"))
            link.click()
            item = page.locator(f"#source-{number}")
            assert item.locator(".source-file").text_content() == "transformer-architecture.md"
            mark = item.locator("mark")
            start, end = int(mark.get_attribute("data-start")), int(mark.get_attribute("data-end"))
            text = (corpus_dir / "transformer-architecture.md").read_text(encoding="utf-8")
            assert text[start:end] == mark.text_content()
            assert "2017" in mark.text_content()  # the sentence the answer's date comes from
            page.screenshot(path=str(tmp_path / "real.png"), full_page=True)
    finally:
        pipeline.close()
