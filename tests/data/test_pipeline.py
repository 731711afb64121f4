"""The whole pipeline on crafted files: every row accounted for, splits, cross-split dedup, weights, reuse."""

from __future__ import annotations

import gzip
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import load_run_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from open_autoglm.config import validate_config
from open_autoglm.data import pipeline
from open_autoglm.data.prepared import fingerprint
from open_autoglm.data.readers import DataFormatError
from open_autoglm.data.request import DataRequest


def make_config(tmp_path: Path, **data: Any) -> Any:
    raw = {
        "name": "run",
        "output_dir": str(tmp_path / "runs"),
        "quiet": True,
        "task": data.pop("task", "classification"),
        "data": {"val_ratio": 0.2, "test_ratio": 0.2, **data},
    }
    return validate_config(raw, "test")


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    )
    return path


EN_WORDS = [
    "room",
    "staff",
    "breakfast",
    "view",
    "bed",
    "noisy",
    "clean",
    "quiet",
    "lobby",
    "pool",
    "price",
    "station",
    "kind",
    "rude",
    "towel",
    "shower",
    "garden",
    "street",
]
ZH_WORDS = list("房间服务早餐安静干净位置价格前台热情隔音床铺卫生设施交通方便窗户空调")


def reviews(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Distinct English and Chinese texts (random words, so no two are near-duplicates) with two labels."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 4 in (0, 1) else "neg"
        if i % 2:
            text = " ".join(rng.choice(EN_WORDS) for _ in range(12)) + f" {i}"
        else:
            text = "".join(rng.choice(ZH_WORDS) for _ in range(16)) + f"{i}"
        rows.append({"text": text, "label": label})
    return rows


def read_out(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / "runs" / "run" / "data" / name
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


def report_of(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "runs" / "run" / "data" / "data_report.json").read_text(encoding="utf-8"))


def assert_accounted(report: dict[str, Any]) -> None:
    assert report["rows_in"] == report["rows_kept"] + sum(report["removed"].values()) + report["quarantined"]


def test_every_kind_of_bad_line_is_quarantined_with_file_line_and_reason(tmp_path: Path) -> None:
    rows: list[Any] = reviews(60)
    rows[3] = '{"text": "broken json", "label": '
    rows[7] = {"label": "pos"}  # missing text
    rows[11] = {"text": "a label that is a list", "label": ["pos"]}
    rows[15] = {"text": "", "label": "neg"}  # empty
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with open(path, "ab") as handle:
        handle.write(b'{"text": "bad bytes \xff\xfe here", "label": "pos"}\n')
    config = make_config(tmp_path, train=str(path), max_bad_ratio=0.2)
    loaded = load_run_data(config)
    report = loaded.report
    assert_accounted(report)
    assert report["rows_in"] == 61 and report["quarantined"] == 5
    bad = read_out(tmp_path, "quarantine.jsonl")
    assert [(b["line"], b["file"]) for b in bad] == [
        (4, str(path)),
        (8, str(path)),
        (12, str(path)),
        (16, str(path)),
        (61, str(path)),
    ]
    assert "undecodable" in bad[-1]["reason"] and "missing field 'text'" in bad[1]["reason"]
    assert sum(len(rows) for rows in loaded.splits.values()) == report["rows_kept"]


def test_too_many_malformed_rows_stop_the_run_naming_the_file(tmp_path: Path) -> None:
    rows: list[Any] = reviews(20) + ["not json"] * 5
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataFormatError, match=r"(?s)5 of 25 rows are malformed.*bad\.jsonl:21"):
        load_run_data(make_config(tmp_path, train=str(path)))


def test_splits_are_stratified_seeded_and_reproducible(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", reviews(200))
    first = load_run_data(make_config(tmp_path / "a", train=str(path)))
    second = load_run_data(make_config(tmp_path / "b", train=str(path)))
    assert first.splits == second.splits
    sizes = {split: len(rows) for split, rows in first.splits.items()}
    assert sizes == {"train": 120, "validation": 40, "test": 40}
    for rows in first.splits.values():
        assert Counter(r["label"] for r in rows)["pos"] == len(rows) // 2
    config = make_config(tmp_path / "c", train=str(path))
    config.train.seed = 7
    assert load_run_data(config).splits["test"] != first.splits["test"]


def test_duplicates_exact_near_and_conflicting_labels(tmp_path: Path) -> None:
    rows = reviews(40)
    rows.append(
        {"text": rows[1]["text"].upper() + "!!", "label": rows[1]["label"]}
    )  # exact after normalising
    rows.append({"text": rows[3]["text"], "label": "pos" if rows[3]["label"] == "neg" else "neg"})  # conflict
    long_text = (
        "The hotel was close to the station, the breakfast was generous and the staff spoke English. " * 3
    )
    rows.append({"text": long_text, "label": "pos"})
    rows.append({"text": long_text.replace("generous", "plentiful", 1), "label": "pos"})  # near twin
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    report = load_run_data(make_config(tmp_path, train=str(path))).report
    assert_accounted(report)
    assert report["removed"]["exact_duplicate"] == 2 and report["removed"]["near_duplicate"] == 1
    assert report["duplicates"]["conflicting_labels"] == 1
    removed = {r["line"]: r for r in read_out(tmp_path, "removed.jsonl")}
    assert removed[44]["of"] == f"{path}:43" and removed[41]["of"] == f"{path}:2"


def test_conflicting_labels_can_drop_both_rows(tmp_path: Path) -> None:
    rows = reviews(40)
    rows.append({"text": rows[3]["text"], "label": "pos" if rows[3]["label"] == "neg" else "neg"})
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = make_config(tmp_path, train=str(path), dedup={"conflicting_labels": "drop"})
    loaded = load_run_data(config)
    assert loaded.report["removed"]["conflicting_labels"] == 2
    assert all(r["text"] != rows[3]["text"] for split in loaded.splits.values() for r in split)
    assert_accounted(loaded.report)


def test_validation_rows_with_a_twin_in_train_are_removed(tmp_path: Path) -> None:
    rows = reviews(60)
    train = write_jsonl(tmp_path / "train.jsonl", rows[:50])
    validation = write_jsonl(tmp_path / "dev.jsonl", rows[45:60])  # 5 rows also in train
    config = make_config(tmp_path, train=str(train), validation=str(validation), test_ratio=0.0)
    loaded = load_run_data(config)
    assert loaded.report["removed"] == {"duplicate_across_splits": 5}
    assert len(loaded.splits["validation"]) == 10
    train_texts = {r["text"] for r in loaded.splits["train"]}
    assert not train_texts & {r["text"] for r in loaded.splits["validation"]}


def test_cleaning_and_scrubbing_reach_the_output_and_are_counted(tmp_path: Path) -> None:
    rows = reviews(30) + [
        {"text": "<p>Great stay &amp; lovely view</p><script>track()</script>", "label": "pos"},
        {"text": "联系我：13800138000 或 zhang.san@example.com，房费１２００元", "label": "neg"},
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    loaded = load_run_data(make_config(tmp_path, train=str(path), val_ratio=0.1, test_ratio=0.1))
    texts = {r["text"] for split in loaded.splits.values() for r in split}
    assert "Great stay & lovely view" in texts
    assert (
        "联系我：[PHONE] 或 [EMAIL]，房费1200元" in texts
    )  # NFKC: full-width digits, not Chinese punctuation
    assert loaded.report["pii"] == {"email": 1, "phone": 1}


def test_gzip_latin1_and_mixed_sources_with_weights(tmp_path: Path) -> None:
    english = tmp_path / "en.tsv.gz"
    with gzip.open(english, "wb") as handle:
        handle.write("".join(f"pos\tcaf\xe9 number {i} was fine\n" for i in range(40)).encode("latin-1"))
    chinese = write_jsonl(tmp_path / "zh.jsonl", reviews(80)[::2])
    config = make_config(
        tmp_path,
        train=[{"path": str(english), "weight": 2.0}, {"path": str(chinese), "weight": 0.5}],
        columns=["label", "text"],
        val_ratio=0.1,
        test_ratio=0.1,
    )
    loaded = load_run_data(config)
    report = loaded.report
    assert_accounted(report)
    assert report["encodings"][str(english)] == "latin-1"
    train = loaded.splits["train"]
    assert any("café" in r["text"] for r in train)
    english_rows = sum("café" in r["text"] for r in train)
    assert english_rows % 2 == 0 and report["repeated_by_weight"] == english_rows // 2
    assert 0 < report["removed"]["mix_weight"] < 40


def test_prepared_data_is_reused_until_input_or_settings_change(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", reviews(50))
    config = make_config(tmp_path, train=str(path))
    load_run_data(config)
    train_file = tmp_path / "runs" / "run" / "data" / "train.jsonl"
    stamp = train_file.stat().st_mtime_ns
    load_run_data(config)
    assert train_file.stat().st_mtime_ns == stamp  # reused
    changed = make_config(tmp_path, train=str(path), clean={"lowercase": True})
    assert fingerprint(DataRequest.of(changed)) != fingerprint(DataRequest.of(config))
    load_run_data(changed)
    assert train_file.stat().st_mtime_ns != stamp
    write_jsonl(path, reviews(51))
    assert fingerprint(DataRequest.of(changed)) != report_of(tmp_path)["fingerprint"]


def test_inputs_are_hashed_once_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run asks for the fingerprint twice (the resume check, then the data): the bytes are read once,
    and an edit of the same size is still seen (the modification time changed)."""
    import builtins

    path = write_jsonl(tmp_path / "train.jsonl", reviews(50))
    request = DataRequest.of(make_config(tmp_path, train=str(path)))
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    first = fingerprint(request)
    assert fingerprint(request) == first and opened.count(str(path)) == 1
    edited = path.read_text(encoding="utf-8").replace("a", "b", 1)  # same size, other bytes
    path.write_text(edited, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fingerprint(request) != first and opened.count(str(path)) == 2


def test_a_prepared_folder_can_be_the_training_input(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", reviews(50))
    prepared = load_run_data(make_config(tmp_path / "prep", train=str(path)))
    reused = load_run_data(make_config(tmp_path, train=str(tmp_path / "prep" / "runs" / "run" / "data")))
    assert reused.splits == prepared.splits


def test_worker_processes_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", reviews(300) + reviews(20))
    serial = load_run_data(make_config(tmp_path / "serial", train=str(path)))
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "BATCH_ROWS", 64)
    parallel = load_run_data(make_config(tmp_path / "parallel", train=str(path), workers=2))
    assert parallel.splits == serial.splits
    assert parallel.report["removed"] == serial.report["removed"] == {"exact_duplicate": 20}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kinds=st.lists(
        st.sampled_from(["good", "dup", "bad_json", "no_text", "empty", "html_only", "long"]),
        min_size=12,
        max_size=60,
    ),
)
def test_accounting_identity_holds_for_any_mix(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[str]
) -> None:
    tmp_path = tmp_path_factory.mktemp("mix")
    rows: list[Any] = []
    for i, kind in enumerate(kinds):
        rows.append(
            {
                "good": {"text": f"distinct sentence {i} about topic {i * 31}", "label": str(i % 2)},
                "dup": {"text": "the same sentence every time", "label": "0"},
                "bad_json": '{"text": ',
                "no_text": {"label": "1"},
                "empty": {"text": "  ", "label": "1"},
                "html_only": {"text": "<div><script>x()</script></div>", "label": "0"},
                "long": {"text": "word " * 50 + str(i), "label": "1"},
            }[kind]
        )
    rows += reviews(10)  # enough good rows for validation and test
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = make_config(tmp_path, train=str(path), max_bad_ratio=1.0, filter={"max_chars": 200})
    try:
        report = load_run_data(config).report
    except ValueError as err:  # too few rows left to split is a clear error, not a lost row
        assert "rows" in str(err)
        return
    assert_accounted(report)
    assert report["rows_in"] == len(rows)


def test_augmentation_multiplies_the_small_class_in_train_only(tmp_path: Path) -> None:
    rows = [r for r in reviews(200) if r["label"] == "neg"][:90] + [
        r for r in reviews(200) if r["label"] == "pos"
    ][:30]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = make_config(tmp_path, train=str(path), augment={"enabled": True, "factor": 2.0})
    loaded = load_run_data(config)
    report = loaded.report
    assert_accounted(report)
    before = Counter(r["label"] for r in rows)
    train = Counter(r["label"] for r in loaded.splits["train"])
    originals = {r["text"] for r in rows}
    new = [r for r in loaded.splits["train"] if r["text"] not in originals]
    assert len(new) == report["augmented"] > 0 and {r["label"] for r in new} == {"pos"}
    assert report["labels"]["train"] == dict(train)
    assert train["pos"] >= 1.8 * before["pos"] * 0.6  # pos rows of the training split (60%), about doubled
    for split in ("validation", "test"):
        assert all(r["text"] in originals for r in loaded.splits[split])


def test_token_length_filter_uses_the_models_tokenizer(tmp_path: Path, tiny_encoder: Path) -> None:
    rows = reviews(60) + [{"text": "room " * 40, "label": "pos"}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    config = make_config(tmp_path, train=str(path), filter={"max_tokens": 30})
    config.model.name = str(tiny_encoder)
    report = load_run_data(config).report
    assert report["removed"]["too_many_tokens"] >= 1
    assert_accounted(report)


def _data_files(folder: Path) -> dict[str, bytes]:
    """Every file of a data folder (data_report.json less its timings, which differ from run to run)."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    report = json.loads(files.pop("data_report.json"))
    report.pop("seconds"), report.pop("rows_per_second")
    return files | {"data_report.json": json.dumps(report).encode()}


def test_a_torn_or_edited_output_is_prepared_again_not_trusted(tmp_path: Path) -> None:
    from open_autoglm.data.prepared import prepare_or_reuse

    path = write_jsonl(tmp_path / "train.jsonl", reviews(60))
    config = make_config(tmp_path, train=str(path))
    out = config.run_dir / "data"
    prepare_or_reuse(DataRequest.of(config), out)
    whole = _data_files(out)
    assert set(report_of(tmp_path)["outputs"]) == {
        "train.jsonl",
        "validation.jsonl",
        "test.jsonl",
        "quarantine.jsonl",
        "removed.jsonl",
    }
    train = out / "train.jsonl"
    train.write_bytes(whole["train.jsonl"][:-40])  # what a write cut off by a full disk used to leave
    assert (
        prepare_or_reuse(DataRequest.of(config), out)[1] is False
    )  # the inputs are unchanged, the outputs are not: redone
    assert _data_files(out) == whole
    (out / "test.jsonl").unlink()
    assert prepare_or_reuse(DataRequest.of(config), out)[1] is False
    assert _data_files(out) == whole
    assert prepare_or_reuse(DataRequest.of(config), out)[1] is True


def test_a_failed_prepare_leaves_the_earlier_outputs_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from open_autoglm.data.prepared import prepare_or_reuse

    path = write_jsonl(tmp_path / "train.jsonl", reviews(60))
    config = make_config(tmp_path, train=str(path))
    out = config.run_dir / "data"
    prepare_or_reuse(DataRequest.of(config), out)
    whole = _data_files(out)
    calls = 0

    def fail(*args: Any) -> None:
        nonlocal calls
        calls += 1
        raise OSError(28, "No space left on device")

    write_jsonl(path, reviews(70))  # other inputs: every output would change
    monkeypatch.setattr(pipeline, "_augment_train", fail)
    changed = make_config(tmp_path, train=str(path), augment={"enabled": True})
    with pytest.raises(OSError, match="No space"):
        prepare_or_reuse(DataRequest.of(changed), out)
    assert calls == 1  # it failed after the new splits were in place, before their data report
    assert (out / "train.jsonl").read_bytes() != whole["train.jsonl"]
    assert _data_files(out)["data_report.json"] == whole["data_report.json"]
    assert not list(out.glob(".*.tmp"))
    write_jsonl(path, reviews(60))  # back to the inputs the old report describes: its fingerprint matches,
    assert (
        prepare_or_reuse(DataRequest.of(config), out)[1] is False
    )  # but the splits on disk are not the ones it recorded
    assert _data_files(out) == whole


def test_a_damaged_prepared_folder_names_the_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", reviews(50))
    load_run_data(make_config(tmp_path / "prep", train=str(path)))
    folder = tmp_path / "prep" / "runs" / "run" / "data"
    with open(folder / "validation.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"text": "cut off')
    with pytest.raises(ValueError, match=r"validation\.jsonl is not the file data prepare wrote"):
        load_run_data(make_config(tmp_path, train=str(folder)))
    (folder / "data_report.json").unlink()  # an older folder: nothing to check the files against
    with pytest.raises(ValueError, match=r"validation\.jsonl:\d+: not valid JSON"):
        load_run_data(make_config(tmp_path, train=str(folder)))
