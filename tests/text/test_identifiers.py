"""Identifiers in the lexical terms: each kind whole and in its parts, for a chunk (``index_tokens``) and for a
query (``query_terms``: the same terms, function words left out), the words of ``tokenize`` always kept."""

from __future__ import annotations

import pytest

from rag.index.lexical import query_terms
from rag.text.identifiers import camel_parts, identifier_tokens
from rag.text.lexical import STOPWORDS, index_tokens, tokenize

# (text, terms it must hold besides its words): one case per identifier kind, as documents write them
KINDS = [
    ("Set response_model_exclude_unset=True.", ["response_model_exclude_unset", "response", "model", "unset"]),
    ("It raises asn1_der_decoding errors", ["asn1_der_decoding", "asn1", "der", "decoding"]),
    ("raise an HTTPException here", ["httpexception", "http", "exception"]),
    ("use BackgroundTasks for that", ["backgroundtasks", "background", "tasks"]),
    ("the backgroundTasks parameter", ["backgroundtasks", "background", "tasks"]),
    ("call app.include_router(router)", ["app.include_router", "include_router", "app", "include", "router"]),
    ("from fastapi.security import X", ["fastapi.security", "fastapi", "security"]),
    ("fastapi.security.OAuth2PasswordBearer", ["fastapi.security.oauth2passwordbearer", "fastapi.security"]),
    ("run it with --forwarded-allow-ips='*'", ["--forwarded-allow-ips", "forwardedallowips", "forwarded", "ips"]),
    ("start uvicorn with --reload.", ["--reload", "reload"]),
    ("edit debian/rules first", ["debian/rules", "debian", "rules"]),
    ("look in /usr/share/doc/maint-guide/.", ["usr/share/doc/maint-guide", "usr/share/doc", "maintguide", "doc"]),
    ("added in 0.95.0, see", ["0.95.0", "0.95", "0", "95"]),
    ("needs Python 3.8.", ["3.8", "3", "8", "python"]),
    ("the __init__.py file", ["__init__.py", "__init__", "init", "py"]),
    ("安装fastapi-slim包", ["fastapislim", "fastapi", "slim", "安装"]),
]


@pytest.mark.parametrize(("text", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_a_chunk_holds_each_identifier_whole_and_in_parts(text: str, expected: list[str]) -> None:
    tokens = index_tokens(text)
    assert set(expected) <= set(tokens), tokens
    assert_words_kept(text, tokens)


@pytest.mark.parametrize(("text", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_a_query_searches_each_identifier_whole_and_in_parts(text: str, expected: list[str]) -> None:
    terms = query_terms(text)
    assert {t for t in expected if t not in STOPWORDS} <= set(terms), terms
    assert len(terms) == len(set(terms))


def assert_words_kept(text: str, tokens: list[str]) -> None:
    """``tokenize``'s words are in ``tokens`` in their order (a subsequence): BM25 over the words is unchanged but
    for the added terms."""
    it = iter(tokens)
    assert all(any(t == w for t in it) for w in tokenize(text)), (tokenize(text), tokens)


@pytest.mark.parametrize(
    "text",
    [
        "BM25 ranks documents by term frequency and inverse document frequency.",
        "检索增强生成先检索再生成。",
        "Plain words, a list - and a dash -- here; PDFs and IDs (URLs) stay whole... ok? -1 and _emphasis_.",
        "",
    ],
)
def test_text_without_identifiers_gives_the_words_only(text: str) -> None:
    assert index_tokens(text) == tokenize(text)


def test_query_function_words_stay_out_even_as_parts() -> None:
    terms = query_terms("Is the is_active flag on?")
    assert "is_active" in terms and "active" in terms and "flag" in terms
    assert not set(terms) & {"is", "the", "on"}
    assert query_terms("the") == ["the"]  # nothing else: the function words are what there is


def test_camel_case_parts() -> None:
    assert camel_parts("HTTPException") == ["http", "exception"]
    assert camel_parts("OAuth2PasswordBearer") == ["auth", "password", "bearer"]  # no single letters or digits
    assert camel_parts("mRNA") == ["rna"]
    assert camel_parts("getUserById") == ["get", "user", "by", "id"]
    for word in ("Python", "HTTP", "PDFs", "IDs", "utf8", "sha256"):
        assert camel_parts(word) == [], word


def test_letters_joined_by_hyphens_are_closed_up() -> None:
    """English writes such compounds both ways: the whole term is the closed-up spelling, which meets both."""
    assert identifier_tokens("pro-inflammatory") == ["proinflammatory"]
    assert set(index_tokens("proinflammatory")) <= set(index_tokens("pro-inflammatory"))
    assert identifier_tokens("Server-Sent") == ["serversent"]
    assert identifier_tokens("IL-6") == ["il-6"]  # a digit in it: kept as written
    assert identifier_tokens("--log-level") == ["--log-level", "loglevel"]
    assert "loglevel" in query_terms("the log-level option")


def test_flags_paths_and_ends() -> None:
    assert identifier_tokens("-v") == ["-v"]
    assert identifier_tokens("-1") == []  # a negative number is no flag
    assert identifier_tokens("---") == []
    assert identifier_tokens("main.py.") == ["main.py"]  # the sentence's full stop is not part of it
    assert identifier_tokens("_emphasis_") == []
    assert identifier_tokens("__init__") == ["__init__"]
    long_url = "https://example.com/" + "/".join(["segment"] * 20)
    assert identifier_tokens(long_url) == []  # no whole term for a very long span; its words still count
    assert len(identifier_tokens("a.b.c.d.e.f.g.h.i.j.k.l")) <= 1 + 6


def test_the_words_are_always_kept_whatever_the_text() -> None:
    """Random mixes of letters, capitals, digits, connectors, CJK, spaces and punctuation: ``index_tokens``
    always holds ``tokenize``'s words in their order, and adds nothing to text made of plain lower-case words."""
    import random

    rng = random.Random(7)
    alphabet = "abcxyzABCXYZ0189_.-/:  ,;!?()'\"检索中文éß"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert_words_kept(text, index_tokens(text))
    for _ in range(200):
        text = " ".join("".join(rng.choice("abcxyz019") for _ in range(rng.randint(1, 6))) for _ in range(5))
        assert index_tokens(text) == tokenize(text)
