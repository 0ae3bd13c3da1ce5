"""Text helpers shared by every stage: lexical tokens (jieba for CJK, stemming for Latin), language detection and the
one sentence splitter. Depends on nothing else in rag."""
