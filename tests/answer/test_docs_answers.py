"""Real default models on real Markdown: a how-to answer gives the steps with the command copied, cites the right
file and does not repeat itself, in English and in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import RagConfig
from rag.folder_eval import degenerate
from rag.pipeline import RagPipeline

pytestmark = pytest.mark.slow

UPGRADE_EN = """---
title: Acme Server operations
---

# Operations { #operations }

## Upgrading { #upgrading }

/// warning | Back up first

Stop the writers before you upgrade &mdash; the index is rebuilt on start.

///

To upgrade Acme Server to the latest release, install it with pip:

```bash
pip install --upgrade acme-server
```

Then restart the service so the new version is loaded:

```bash
acmectl restart --graceful
```

## Logs

Logs are written to `/var/log/acme/server.log` and rotated every day.
"""

UPGRADE_ZH = """# 运维

## 升级

升级 Acme Server 到最新版本，先用 pip 安装：

```bash
pip install --upgrade acme-server
```

然后重启服务，让新版本生效：

```bash
acmectl restart --graceful
```

## 日志

日志写在 `/var/log/acme/server.log`，每天轮转一次。
"""

OTHER = {
    "install.md": "# Installing\n\nAcme Server needs Python 3.10 or later. Install it: `pip install acme-server`.\n",
    "config.md": "# Configuration\n\nSettings live in `acme.toml`. The `port` key sets the port (default `8080`).\n",
    "anzhuang.md": "# 安装\n\nAcme Server 需要 Python 3.10 或更高版本。用 `pip install acme-server` 安装。\n",
}


@pytest.fixture(scope="module")
def docs_pipeline(tmp_path_factory: pytest.TempPathFactory) -> RagPipeline:
    root = tmp_path_factory.mktemp("docs")
    (root / "en").mkdir()
    (root / "zh").mkdir()
    (root / "en" / "operations.md").write_text(UPGRADE_EN, encoding="utf-8")
    (root / "zh" / "yunwei.md").write_text(UPGRADE_ZH, encoding="utf-8")
    for name, text in OTHER.items():
        (root / ("zh" if name == "anzhuang.md" else "en") / name).write_text(text, encoding="utf-8")
    pipeline = RagPipeline(RagConfig(index=tmp_path_factory.mktemp("index") / "i", quiet=True))
    pipeline.ingest([root])
    yield pipeline
    pipeline.close()


@pytest.mark.parametrize(
    ("question", "source"),
    [
        ("How do I upgrade Acme Server to the latest version?", "operations.md"),
        ("怎么把 Acme Server 升级到最新版本？", "yunwei.md"),
    ],
)
def test_a_how_to_answer_gives_the_command_cites_the_file_and_does_not_loop(
    docs_pipeline: RagPipeline, question: str, source: str
) -> None:
    answer = docs_pipeline.ask(question)
    assert not answer.refused, answer.text
    assert "pip install --upgrade acme-server" in answer.text, answer.text  # the command, copied
    assert any(Path(c.source).name == source for c in answer.citations), answer.citations
    assert degenerate(answer.text) == "", answer.text  # no loop, no markup left
    assert "&mdash;" not in answer.text and "///" not in answer.text
    passage = next(c for c in answer.citations if Path(c.source).name == source)
    assert "```bash" in passage.text  # the model read the passage with its code fence
