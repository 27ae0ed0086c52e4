"""The quality stage between the backends and the output pipeline: checks on every take
(``checks.py``) and retries with known seeds (``stage.py``). See docs/quality.md."""

from ttsframe.core.speech.quality.checks import BuiltinChecks, CheckResult, QualityCheck, Take
from ttsframe.core.speech.quality.stage import (
    PartReview,
    QualityStage,
    ReplyWatch,
    quality_header,
    quality_summary,
    retry_seed,
)

__all__ = ["BuiltinChecks", "CheckResult", "PartReview", "QualityCheck", "QualityStage",
           "ReplyWatch", "Take", "quality_header", "quality_summary", "retry_seed"]
