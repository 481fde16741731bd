"""Agent assist: the knowledge file and its ranking (``engine``, ``assist_default.toml``) and the stage that suggests
entries to the agent on each customer final (``stage``)."""

from speechsvc.analysis.assist.engine import (
    AssistCall,
    AssistEngine,
    AssistOptions,
    Knowledge,
    KnowledgeError,
    Suggestion,
)

__all__ = ["AssistCall", "AssistEngine", "AssistOptions", "Knowledge", "KnowledgeError", "Suggestion"]
