"""Quality inspection: the operator's rules (``rules``, ``qa_default.toml``), the engine that applies them to a
call live or afterwards (``engine``, with its operators in ``ops``), and the stage that runs it on every call
(``stage``)."""

from speechsvc.analysis.qa.engine import QaCall, QaEngine, QaOutcome, QaReport, qa_aggregates
from speechsvc.analysis.qa.rules import QaRules, QaRulesError

__all__ = ["QaCall", "QaEngine", "QaOutcome", "QaReport", "QaRules", "QaRulesError", "qa_aggregates"]
