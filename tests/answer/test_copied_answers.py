"""The check of a short-form answer on documentation: values copied from list items, several values at once,
commands longer than a phrase, a question asked in another language than the passages, and an extract that keeps
the list or code its sentence introduces."""

from __future__ import annotations

from rag.answer.grounding import best_sentences, check, following_block
from rag.answer.prompting import answer_form

GZIP = (
    "* `minimum_size` - Do not GZip responses that are smaller than this minimum size in bytes. Defaults to `500`.\n"
    "* `compresslevel` - Used during GZip compression. It is an integer ranging from 1 to 9. Defaults to `9`. Lower "
    "value results in faster compression but larger file sizes."
)
NOTES = "Release 0.112.2: add the missing `compresslevel` parameter to the docs of `GZipMiddleware`. Thanks to many."
CLIENT = (
    "Once we have a FastAPI app with the models, we can use Hey API to generate a TypeScript client.\n\n"
    "```sh\nnpx @hey-api/openapi-ts -i http://localhost:8000/openapi.json -o src/client\n```\n\n"
    "This will generate a TypeScript SDK in `./src/client`."
)
FILES = (
    "For each file f.idl given on the command line, camlidl generates the following files:\n"
    "• A Caml interface file f.mli that defines the Caml view of the IDL file.\n"
    "• A Caml implementation file f.ml that implements the f.mli file.\n"
    "• A C source file f_stubs.c that contains the stub functions.\n"
    "The stub generator is invoked as follows."
)
SECRET = (
    "创建一个用于对 JWT 令牌进行签名的随机密钥。\n\n使用下列命令生成一个安全的随机密钥：\n\n"
    "```console\n$ openssl rand -hex 32\n```\n\n把输出复制到变量 `SECRET_KEY`。"
)


def test_two_values_asked_at_once_are_kept_from_the_list_items_that_hold_them() -> None:
    checked = check("500, 9", "What are the default minimum_size and compresslevel of GZipMiddleware?", [GZIP, NOTES])
    assert checked.method == "generated"
    assert checked.text == "500, 9 [1]"  # the one passage that holds both, not the release note that names one


def test_a_value_the_passages_do_not_hold_is_not_kept() -> None:
    checked = check("500, 7", "What are the default minimum_size and compresslevel of GZipMiddleware?", [GZIP, NOTES])
    assert checked.method == "extractive"
    assert "500, 7" not in checked.text


def test_a_command_copied_from_a_code_block_is_kept_whole() -> None:
    command = "npx @hey-api/openapi-ts -i http://localhost:8000/openapi.json -o src/client"
    checked = check(command, "What command generates a TypeScript client from my FastAPI OpenAPI schema?", [CLIENT])
    assert checked.method == "generated"
    assert checked.text == f"{command} [1]"


def test_a_question_in_another_language_is_judged_by_its_translation() -> None:
    passage = "Once there are at least 3 people that would be willing to help maintain that language, you can go on."
    question = "想申请一种还没有的语言翻译，需要先凑够几个人？"
    translated = "How many people are needed before requesting a new language translation?"
    assert check("3", question, [passage], judged_by=translated).method == "generated"


def test_an_extract_keeps_the_list_its_sentence_introduces() -> None:
    extract = best_sentences("Which files does camlidl generate for an input file f.idl?", [FILES], limit=1)
    assert extract.text.startswith("For each file f.idl given on the command line, camlidl generates")
    assert "f_stubs.c" in extract.text and "f.mli" in extract.text
    assert "invoked as follows" not in extract.text  # the list ends where the prose goes on
    assert extract.cited == [1]


def test_following_block_takes_a_code_fence_whole_and_nothing_after_a_sentence_without_a_colon() -> None:
    block = following_block(SECRET, "使用下列命令生成一个安全的随机密钥：")
    assert block == "```console\n$ openssl rand -hex 32\n```"
    assert following_block(SECRET, "创建一个用于对 JWT 令牌进行签名的随机密钥。") == ""
    assert following_block("Do this: and then that.", "Do this:") == ""


def test_a_long_block_is_cut_at_a_line_and_an_open_fence_closed() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(200))
    block = following_block(f"Write this:\n```python\n{code}\n```", "Write this:")
    assert block.startswith("```python\nline_0 = 0") and block.endswith("\n```")
    assert len(block) < 800 and "line_199" not in block


def test_a_yes_no_question_after_its_condition_is_explained_not_answered_in_a_word() -> None:
    question = "If I declare a path operation with a plain def instead of async def, does it block the server?"
    assert answer_form(question, "en") == "explain"
    assert answer_form("When was it built, and who built it?", "en") == "short"


def test_a_command_answered_as_a_code_block_is_kept_and_its_citation_does_not_break_the_fence() -> None:
    answer = "```sh\nnpx @hey-api/openapi-ts -i http://localhost:8000/openapi.json -o src/client\n```"
    question = "What command generates a TypeScript client from my FastAPI OpenAPI schema?"
    checked = check(answer, question, [CLIENT], "lookup")
    assert checked.method == "generated"
    assert checked.text == f"{answer}\n[1]"  # the closing fence stays alone on its line


def test_a_garbled_line_of_code_is_snapped_to_the_passage_code_in_code_formatting() -> None:
    passage = (
        "When you want dependencies compatible with both HTTP and WebSockets, use `HTTPConnection`.\n\n"
        "```python\nfrom fastapi.requests import HTTPConnection\n```"
    )
    checked = check("```python\nfrom fastapi import HTTPConnection\n```", "Which type works for both?", [passage])
    assert checked.method == "snapped"
    assert checked.text == "`from fastapi.requests import HTTPConnection` [1]"


def test_a_lookup_answered_in_a_sentence_is_kept_as_written_with_its_citation() -> None:
    question = "What are the default minimum_size and compresslevel of GZipMiddleware?"
    assert answer_form(question, "en") == "lookup"
    said = "The default minimum_size of GZipMiddleware is 500 bytes, and the default compresslevel is 9."
    checked = check(said, question, [GZIP, NOTES], "lookup")
    assert checked.method == "generated" and checked.text == f"{said} [1]"


def test_lookups_are_questions_that_name_code_or_ask_for_two_things() -> None:
    assert answer_form("CORSMiddleware 的 allow_methods 和 max_age 默认值分别是什么？", "zh") == "lookup"
    assert answer_form("Which files does camlidl generate for an input file f.idl?", "en") == "lookup"
    assert answer_form("fastapi dev 和 fastapi run 默认分别监听哪个 IP 地址？", "zh") == "lookup"
    assert answer_form("Who founded the company in 1901?", "en") == "short"
    assert answer_form("检索增强生成是哪一年提出的？", "zh") == "short"
