"""The data readers on small files written here: detection, canonical records, malformed rows, errors."""

import gzip
import json
import time

import pytest

from open_autoglm.data.readers import (
    READERS,
    DataFormatError,
    Malformed,
    ReadOptions,
    Record,
    detect_format,
    iter_records,
    read_records,
)
from open_autoglm.data.readers.json_objects import CHUNK_CHARS

SFT = ReadOptions(task="sft")
PRETRAIN = ReadOptions(task="pretrain")


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def jsonl(*objects):
    return "".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects)


def rows(path, options=None, fmt="auto"):
    """Every row, good and bad, in file order."""
    return list(iter_records(path, options, fmt))


def test_every_format_is_registered():
    assert READERS.names() == ["alpaca", "csv", "html", "jsonl", "sharegpt", "text", "tsv", "warc"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.csv", "text,label\nx,1\n", "csv"),
        ("a.tsv", "x\t1\n", "tsv"),
        ("a.txt", "one document\n", "text"),
        ("a.jsonl", jsonl({"text": "x", "label": 1}), "jsonl"),
        ("a.json", jsonl({"sentence": "x", "label": 1}), "jsonl"),  # FewCLUE: JSON Lines named .json
        ("a.json", json.dumps([{"instruction": "q", "input": "", "output": "a"}]), "alpaca"),
        ("a.jsonl", jsonl({"conversations": [{"from": "human", "value": "q"}]}), "sharegpt"),
        ("a.jsonl", jsonl({"messages": [{"role": "user", "content": "q"}]}), "sharegpt"),
        ("SMSSpamCollection", "ham\thello there\nspam\twin now\n", "tsv"),
        ("data", jsonl({"text": "x"}), "jsonl"),
    ],
)
def test_detect_format(tmp_path, name, text, expected):
    assert detect_format(write(tmp_path, name, text)) == expected


def test_detect_format_refuses_to_guess(tmp_path):
    path = write(tmp_path, "train_5500.label", "DESC:manner How did serfdom develop ?\n")
    with pytest.raises(DataFormatError, match=r"train_5500\.label: cannot tell the data format"):
        detect_format(path)
    with pytest.raises(DataFormatError, match="empty"):
        detect_format(write(tmp_path, "empty", "\n\n"))


def test_gz_is_read_through(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl({"text": "好", "label": "pos"}).encode()))
    assert detect_format(path) == "jsonl"
    assert [r.data for r in rows(path)] == [{"text": "好", "label": "pos"}]


def test_jsonl_classification_reports_each_bad_line(tmp_path):
    text = jsonl({"text": "good", "label": 1}, {"text": "no label"})
    text += (
        '{"text": "broken", \n'
        + "[1, 2]\n\n"
        + jsonl({"text": "  ", "label": 0}, {"text": "x", "label": 1.5})
    )
    path = write(tmp_path, "a.jsonl", text)
    got = rows(path)
    assert got[0] == Record({"text": "good", "label": 1}, str(path), 1)
    bad = {(m.line, m.reason) for m in got[1:]}
    assert all(isinstance(m, Malformed) for m in got[1:])
    assert bad == {
        (2, "missing field 'label'"),
        (3, "invalid JSON: Expecting property name enclosed in double quotes (column 19)"),
        (4, "expected a JSON object, got list"),
        (6, "empty field 'text'"),
        (7, "field 'label' must be a string or an integer, got float"),
    }
    assert got[2].raw == '{"text": "broken",'


def test_jsonl_uses_the_configured_fields(tmp_path):
    path = write(tmp_path, "a.json", jsonl({"sentence": "标题", "label": 100, "id": 7}))
    assert rows(path, ReadOptions(text_field="sentence"))[0].data == {"text": "标题", "label": 100}
    assert rows(path, ReadOptions(task="pretrain", text_field="sentence"))[0].data == {"text": "标题"}


def test_jsonl_sft_prompt_response_and_messages(tmp_path):
    user, assistant = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
    path = write(
        tmp_path,
        "a.jsonl",
        jsonl(
            {"prompt": "q", "response": "a", "system": "be brief"},
            {"prompt": "q", "response": "a", "system": ""},
            {"messages": [user, assistant, user, assistant]},
            {"messages": [user, assistant, user]},
            {"messages": [user, {"role": "system", "content": "s"}, assistant]},
            {"prompt": "q"},
        ),
    )
    got = rows(path, SFT, fmt="jsonl")
    assert got[0].data == {"prompt": "q", "response": "a", "system": "be brief"}
    assert got[1].data == {"prompt": "q", "response": "a"}
    assert got[2].data == {"messages": [user, assistant, user, assistant]}
    assert got[3].reason == "field 'messages' must end with an assistant turn"
    assert got[4].reason == "messages[1]: a system turn must come first"
    assert got[5].reason == "missing field 'response'"


def test_json_array_streams_with_start_lines(tmp_path):
    objects = [{"text": f"doc {i}", "label": i % 2} for i in range(3000)]
    objects[1500]["text"] = "x" * (2 * CHUNK_CHARS)  # one value larger than a read chunk
    path = write(tmp_path, "a.json", json.dumps(objects, indent=2))  # 4 lines per object, after "["
    got = rows(path)
    assert len(got) == 3000 and all(isinstance(r, Record) for r in got)
    assert [r.line for r in got[:3]] == [2, 6, 10]
    assert got[2999].line == 2 + 4 * 2999 and got[2999].data == {"text": "doc 2999", "label": 1}
    assert rows(write(tmp_path, "empty.json", " [ ] "), fmt="jsonl") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[\n{"text": "a", "label": 1},\n{"text": "b" "label": 1}\n]',
            r"a\.json:3: invalid JSON array: Expecting ','",
        ),
        ('[\n{"text": "a", "label": 1}\n{"text": "b"}]', r"a\.json:3: invalid JSON array: expected ']'"),
        ('[{"text": "a", "label": 1}] x', r"a\.json:1: extra data after the JSON array"),
        ('[{"text": "a", "label": 1},\n', r"a\.json:2: invalid JSON array"),
    ],
)
def test_broken_json_array_names_the_line(tmp_path, text, message):
    with pytest.raises(DataFormatError, match=message):
        rows(write(tmp_path, "a.json", text), fmt="jsonl")


def test_alpaca(tmp_path):
    path = write(
        tmp_path,
        "a.json",
        json.dumps(
            [
                {"instruction": "Translate", "input": "你好", "output": "Hello", "system": "You translate."},
                {"instruction": "hi", "input": "", "output": "Hello {{name}}"},
                {"instruction": "and?", "output": "more", "history": [["q1", "a1"]]},
                {"instruction": "x", "input": "y"},
                {"instruction": "x", "output": "y", "history": [["only a question"]]},
            ]
        ),
    )
    got = rows(path, SFT)
    assert got[0].data == {"prompt": "Translate\n\n你好", "response": "Hello", "system": "You translate."}
    assert got[1].data == {"prompt": "hi", "response": "Hello {{name}}"}  # placeholders are cleaning's job
    assert got[2].data == {
        "messages": [
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "and?"},
            {"role": "assistant", "content": "more"},
        ]
    }
    assert got[3].reason == "missing field 'output'"
    assert got[4].reason == "history[0] must be a [question, answer] pair of non-empty strings"


def test_conversation_formats_refuse_other_tasks(tmp_path):
    path = write(tmp_path, "a.json", json.dumps([{"instruction": "q", "input": "", "output": "a"}]))
    with pytest.raises(DataFormatError, match=r"a\.json: a alpaca file cannot feed task 'classification'"):
        iter_records(path)


def test_sharegpt(tmp_path):
    turns = [
        {"from": "system", "value": "s"},
        {"from": "human", "value": "q"},
        {"from": "function_call", "value": "call()"},
        {"from": "observation", "value": "42"},
        {"from": "gpt", "value": "a"},
    ]
    path = write(
        tmp_path,
        "a.jsonl",
        jsonl(
            {"conversations": turns},
            {"conversations": turns[1:2] + turns[-1:], "system": "top"},
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
            {"conversations": [{"from": "bot", "value": "a"}]},
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": None}]},
            {"dialogue": []},
        ),
    )
    got = rows(path, SFT)
    assert [t["role"] for t in got[0].data["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    assert got[1].data["messages"][0] == {"role": "system", "content": "top"}
    assert got[2].data["messages"][1] == {"role": "assistant", "content": "a"}
    assert got[3].reason == "conversations[0]: unknown speaker 'from': 'bot'"
    assert got[4].reason == "conversations[1]: the text must be a string, got NoneType"
    assert got[5].reason == "missing field 'conversations' (or 'messages')"


def test_csv_with_header_and_quoted_multiline_field(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"line one\nline ""two""",1\nsolo\n,0\n\nok,0\n')
    got = rows(path)
    assert got[0] == Record({"text": 'line one\nline "two"', "label": "1"}, str(path), 2)
    assert (got[1].line, got[1].reason, got[1].raw) == (4, "expected 2 fields, got 1", "solo")
    assert (got[2].line, got[2].reason) == (5, "empty field 'text'")
    assert got[3] == Record({"text": "ok", "label": "0"}, str(path), 7)


def test_csv_stray_quote_is_one_malformed_row_not_a_crash(tmp_path):
    path = write(tmp_path, "a.csv", 'text,label\n"open,1\nswallowed,0\n')
    got = rows(path, fmt="csv")
    assert [(m.line, m.reason, m.raw) for m in got] == [
        (2, "expected 2 fields, got 1", '"open,1\nswallowed,0')
    ]


def test_csv_header_without_the_text_name_uses_the_other_column(tmp_path):
    path = write(tmp_path, "a.csv", "label,review\n1,很好\n0,\n")
    got = rows(path)
    assert got[0].data == {"text": "很好", "label": "1"}
    assert (got[1].line, got[1].reason) == (3, "empty field 'review'")


def test_csv_header_missing_a_needed_column(tmp_path):
    path = write(tmp_path, "a.csv", "id,text,stars\n1,x,5\n")
    with pytest.raises(DataFormatError, match=r"a\.csv:1: the header has no column 'label'"):
        rows(path)


def test_headerless_files_use_given_columns_or_guess_the_label(tmp_path):
    texts = ["a fine film", "dull and long", "great fun", "not good at all"]
    path = write(tmp_path, "a.csv", "".join(f"{t},{i % 2}\n" for i, t in enumerate(texts)))
    assert rows(path)[1].data == {"text": "dull and long", "label": "1"}
    named = rows(path, ReadOptions(columns=("sentence", "y"), text_field="sentence", label_field="y"))
    assert named[0].data == {"text": "a fine film", "label": "0"}
    same = write(tmp_path, "b.csv", "a,b\nc,d\ne,f\n")
    with pytest.raises(DataFormatError, match="columns=") as err:
        rows(same)
    assert "b.csv" in str(err.value)


def test_tsv_without_quoting_keeps_extra_tabs_in_the_text(tmp_path):
    text = '1\ta "quoted" film\n0\tleft\tand right\nspam\t\n1\tfine\n'
    got = rows(write(tmp_path, "a.tsv", text))
    assert got[0].data == {"text": 'a "quoted" film', "label": "1"}
    assert got[1].data == {"text": "left\tand right", "label": "0"}
    assert (got[2].line, got[2].reason) == (3, "empty field 'text'")
    wide = rows(write(tmp_path, "b.tsv", "text\tlabel\tid\nx\t1\t7\ny\t0\n"))
    assert wide[0].data == {"text": "x", "label": "1"}
    assert (wide[1].line, wide[1].reason) == (3, "expected 3 fields, got 2")


def test_undecodable_line_is_one_malformed_row(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_bytes(b"1\tfine\n" * 3 + "0\t坏\n".encode("gbk") + b"1\tok\n")
    got = rows(path, ReadOptions(encoding="utf-8"))
    assert [type(r).__name__ for r in got] == ["Record"] * 3 + ["Malformed", "Record"]
    assert (got[3].line, got[3].reason) == (4, "undecodable bytes (encoding utf-8)")


def test_gbk_and_bom_files_are_decoded(tmp_path):
    gbk = write(tmp_path, "gbk.csv", "label,review\n1,房间很大\n0,隔音极差\n", encoding="gbk")
    bom = write(tmp_path, "bom.jsonl", "\ufeff" + jsonl({"text": "第一", "label": 1}))
    assert [r.data["text"] for r in rows(gbk)] == ["房间很大", "隔音极差"]
    assert rows(bom)[0].data == {"text": "第一", "label": 1}


def test_text_reader_is_for_pretraining_only(tmp_path):
    path = write(tmp_path, "a.txt", "first document\n\n  \nsecond document\r\n")
    assert [(r.line, r.data) for r in rows(path, PRETRAIN)] == [
        (1, {"text": "first document"}),
        (4, {"text": "second document"}),
    ]
    with pytest.raises(DataFormatError, match=r"a\.txt: a text file cannot feed task 'classification'"):
        iter_records(path)


def test_read_records_refuses_too_many_malformed_rows(tmp_path):
    good = jsonl(*({"text": f"t{i}", "label": 0} for i in range(98)))
    path = write(tmp_path, "a.jsonl", good + '{"text": "x"}\n' + "not json\n")
    with pytest.raises(DataFormatError) as err:
        read_records(path)
    assert "2 of 100 rows are malformed" in str(err.value)
    assert f"{path}:99: missing field 'label'" in str(err.value)
    assert f"{path}:100: invalid JSON" in str(err.value)
    kept, bad = read_records(path, max_bad_ratio=0.05)
    assert (len(kept), [m.line for m in bad]) == (98, [99, 100])


def test_read_records_refuses_a_file_without_good_rows(tmp_path):
    with pytest.raises(DataFormatError, match=r"no good row"):
        read_records(write(tmp_path, "a.jsonl", jsonl({"text": "x"})), max_bad_ratio=1.0)
    with pytest.raises(DataFormatError, match=r"a\.txt: no rows"):
        read_records(write(tmp_path, "a.txt", "\n"), PRETRAIN)


def test_unknown_format_and_bad_options():
    with pytest.raises(DataFormatError, match="unknown data format 'xml'"):
        iter_records("a.xml", fmt="xml")
    with pytest.raises(ValueError, match="unknown task"):
        ReadOptions(task="regression")
    with pytest.raises(ValueError, match="unknown encoding"):
        ReadOptions(encoding="klingon")
    assert ReadOptions(columns=["a", "b"]).columns == ("a", "b")


# Files that cannot be read at all (issue 13, defect 18): a DataFormatError naming the file, never a traceback.


@pytest.mark.parametrize("fmt", ["auto", "jsonl", "csv", "text", "html"])
def test_a_folder_is_not_a_data_file(tmp_path, fmt):
    folder = tmp_path / "train.jsonl"
    folder.mkdir()
    with pytest.raises(DataFormatError, match=f"{folder} is a folder, not a data file"):
        rows(folder, PRETRAIN if fmt in ("text", "html") else None, fmt)


@pytest.mark.parametrize("name", ["train.jsonl.gz", "train.csv.gz", "train.json.gz", "page.html.gz"])
def test_a_plain_file_named_gz_is_named(tmp_path, name):
    path = write(tmp_path, name, jsonl({"text": "a", "label": "x"}))
    with pytest.raises(DataFormatError, match=rf"{path}: not a valid gzip file"):
        rows(path, PRETRAIN if name.startswith("page") else None)


def test_a_truncated_gz_is_named_before_the_first_row(tmp_path):
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl({"text": "a", "label": "x"}).encode())[:-12])
    with pytest.raises(DataFormatError, match=rf"{path}: the gzip data is cut short or corrupt"):
        rows(path)


def test_a_gz_cut_short_midway_is_named_where_reading_finds_it(tmp_path):
    """Past the start the cut shows only when the reader gets there: the rows before it were already given."""
    path = tmp_path / "train.jsonl.gz"
    objects = [{"text": f"review {i} " + f"{i * 7919:x}" * 20, "label": i % 2} for i in range(4000)]
    data = gzip.compress(jsonl(*objects).encode())
    path.write_bytes(data[: len(data) * 3 // 4])
    records = iter_records(path)
    first = next(records)
    assert isinstance(first, Record) and first.line == 1
    with pytest.raises(DataFormatError, match=rf"{path}: the gzip data is cut short or corrupt"):
        list(records)


def json_array_with_an_early_error(path, size):
    """A JSON array of about `size` characters whose first object is broken on line 2."""
    row = json.dumps({"text": "a short review of a hotel room", "label": "pos"})
    path.write_text(
        '[\n{"text": "broken", "label": }\n' + ",\n".join([row] * (size // (len(row) + 2))) + "\n]\n"
    )
    return path


def best_time_to_fail(path, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with pytest.raises(DataFormatError, match=rf"{path}:2: invalid JSON array: Expecting value"):
            rows(path, fmt="jsonl")
        best = min(best, time.perf_counter() - started)
    return best


def test_an_early_error_in_a_json_array_costs_the_same_in_a_big_file(tmp_path):
    """The array reader read the whole rest of the file (copying its buffer each time) before reporting an error
    near the start: 80 MB took 35 s. Now a 4 MB file fails as fast as a 0.4 MB one (it was about 15x slower)."""
    small = json_array_with_an_early_error(tmp_path / "small.json", 400_000)
    big = json_array_with_an_early_error(tmp_path / "big.json", 4_000_000)
    best_time_to_fail(small, repeats=1)  # warm the imports and the file cache
    assert best_time_to_fail(big) < 3 * best_time_to_fail(small)


def test_a_long_value_spanning_many_chunks_is_read_whole(tmp_path, monkeypatch):
    """A value longer than a chunk is read on until it is complete, also with a tiny chunk size."""
    monkeypatch.setattr("open_autoglm.data.readers.json_objects.CHUNK_CHARS", 16)
    long_object = {"text": "long", "label": "x", "parts": [f"part {i}" for i in range(3000)]}
    path = write(tmp_path, "a.json", json.dumps([long_object, {"text": "b", "label": "y"}], indent=2))
    found = rows(path)
    assert [r.data for r in found] == [{"text": "long", "label": "x"}, {"text": "b", "label": "y"}]
    assert [r.line for r in found] == [2, 3008]
