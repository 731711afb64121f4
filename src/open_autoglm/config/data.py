"""The `data` section: which files, and how `autoglm data prepare` cleans, scrubs, filters, deduplicates and splits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from open_autoglm.config.base import StrictModel

PiiType = Literal["email", "phone", "id", "card", "ip"]
AugmentOp = Literal["synonym", "swap", "delete", "insert"]
PII_TYPES: list[PiiType] = ["email", "phone", "id", "card", "ip"]
AUGMENT_OPS: list[AugmentOp] = ["synonym", "swap", "delete", "insert"]


class SourceConfig(StrictModel):
    """One training file of a mix."""

    path: Path = Field(description="a training file in any supported format")
    weight: float = Field(
        1.0, gt=0, description="multiplies this file's rows in train: 0.5 keeps a seeded half, 2 repeats each"
    )


class CleanConfig(StrictModel):
    enabled: bool = Field(True, description="run the cleaning steps below")
    html: bool = Field(
        True, description="text that looks like HTML becomes its text (scripts/styles dropped)"
    )
    nfkc: bool = Field(True, description="Unicode NFKC (full-width letters and digits become ASCII)")
    whitespace: bool = Field(True, description="runs of spaces/tabs become one space; ends trimmed")
    control_chars: bool = Field(True, description="drop control and zero-width characters")
    lowercase: bool = Field(False, description="lower-case (for uncased encoders)")
    extra: list[str] = Field(
        default_factory=list,
        description="cleaners from plugins (entry points open_autoglm.cleaners), in order",
    )


class PiiConfig(StrictModel):
    enabled: bool = Field(True, description="replace personal data in every text field")
    types: list[PiiType] = Field(
        default_factory=lambda: list(PII_TYPES),
        description="replaced by [EMAIL] [PHONE] [ID] [CARD] [IP]",
    )


class FilterConfig(StrictModel):
    enabled: bool = Field(True, description="remove rows by the length and quality checks below")
    min_chars: int = Field(1, ge=0, description="shorter texts are removed (0 keeps empty ones)")
    max_chars: PositiveInt | None = Field(None, description="longer texts are removed")
    min_tokens: PositiveInt | None = Field(None, description="counted with the model's tokenizer")
    max_tokens: PositiveInt | None = Field(None, description="counted with the model's tokenizer")
    quality_min_chars: int = Field(
        200, ge=0, description="low-information checks below only judge texts at least this long"
    )
    max_repeated_line_ratio: float | None = Field(
        0.3, ge=0, le=1, description="share of characters in lines that repeat an earlier line"
    )
    max_top_ngram_ratio: float | None = Field(
        0.2, ge=0, le=1, description="share of characters covered by the most frequent word 2-gram"
    )
    max_symbol_ratio: float | None = Field(
        0.3, ge=0, le=1, description="share of characters that are neither letters, digits nor spaces"
    )
    max_digit_ratio: float | None = Field(0.5, ge=0, le=1, description="share of characters that are digits")
    languages: list[str] | None = Field(
        None, description="keep only these languages (ISO 639-1, e.g. [zh, en]); mixed zh/en counts as both"
    )


class DedupConfig(StrictModel):
    exact: bool = Field(True, description="same text after normalisation")
    near: bool = Field(True, description="MinHash + LSH over character n-grams")
    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity that makes a near-duplicate")
    ngram: PositiveInt = Field(5, description="characters per shingle")
    num_perm: PositiveInt = Field(
        128, description="signature words (each packs 4 one-byte MinHash minima: 512 compared at 128)"
    )
    across_splits: bool = Field(True, description="drop validation/test rows with a twin in train")
    conflicting_labels: Literal["keep_first", "drop"] = Field(
        "keep_first", description="duplicates with different labels: keep the first, or drop them all"
    )


class AugmentConfig(StrictModel):
    enabled: bool = Field(False, description="add edited copies of the rows of small classes (EDA)")
    classes: list[str] | None = Field(
        None, description="labels to multiply; None: every class but the largest"
    )
    factor: float = Field(2.0, ge=1, description="a chosen class ends with about factor x its rows")
    operations: list[AugmentOp] = Field(
        default_factory=lambda: list(AUGMENT_OPS), description="EDA edits to draw from"
    )
    alpha: float = Field(0.1, gt=0, le=0.5, description="share of words each operation changes")


class DataConfig(StrictModel):
    train: Path | list[SourceConfig] | None = Field(
        None, description="training file in any supported format, or a list of {path, weight}"
    )
    validation: Path | None = Field(None, description="validation file; else split from train by val_ratio")
    test: Path | None = Field(None, description="test file; else split from train by test_ratio")
    format: str = Field(
        "auto",
        description="auto (by name and content), or a reader: jsonl, alpaca, sharegpt, csv, tsv, text, html, warc, "
        "or one a plugin registers",
    )
    text_field: str = Field("text", description="classification/pretrain input field or column")
    label_field: str = Field("label", description="classification label field or column")
    columns: list[str] | None = Field(None, description="column names of a headerless CSV/TSV")
    text_prefix: str = Field("", description='prepended to every input text (e.g. "query: " for e5 models)')
    max_length: PositiveInt = Field(128, description="tokens per example (longer ones are truncated)")
    val_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of train held out for validation")
    test_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="share of train held out for test")
    max_rows: PositiveInt | None = Field(
        None, description="use a seeded sample of N training rows (stratified for classification)"
    )
    max_bad_ratio: float = Field(
        0.01, ge=0.0, le=1.0, description="stop when more rows than this are malformed (quarantined)"
    )
    workers: PositiveInt | None = Field(
        None, description="processes for cleaning; None: the cores, at most 4"
    )
    clean: CleanConfig = Field(default_factory=CleanConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)

    @field_validator("train", mode="before")
    @classmethod
    def _sources(cls, value: object) -> object:
        if isinstance(value, list):  # a bare path in the list is a source of weight 1
            return [{"path": v} if isinstance(v, str | Path) else v for v in value]
        return value

    @model_validator(mode="after")
    def _ratios_leave_training_rows(self) -> DataConfig:
        if self.val_ratio + self.test_ratio >= 1.0:
            raise ValueError(
                "data.val_ratio + data.test_ratio must be below 1 (no rows would be left to train on)"
            )
        return self

    @property
    def sources(self) -> list[SourceConfig]:
        """The training files with their weights (one of weight 1 for a single path)."""
        if self.train is None:
            return []
        if isinstance(self.train, list):
            return list(self.train)
        return [SourceConfig(path=self.train)]
