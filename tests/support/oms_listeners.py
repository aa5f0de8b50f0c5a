"""OMS listeners the tests subscribe to see what the OMS decided."""

from __future__ import annotations

from typing import Any


class RejectTexts:
    """The text of every REJECTED report, by ClOrdID."""

    def __init__(self) -> None:
        self.texts: dict[str, str | None] = {}

    def on_order(self, row: dict[str, Any]) -> None:
        pass

    def on_execution(self, report: Any) -> None:
        if report.exec_type == "REJECTED":
            self.texts[report.cl_ord_id] = report.text
