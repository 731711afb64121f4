"""The server's parts on their own: stop-string scanning, the dynamic batcher, prompt rendering, the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from transformers import AutoTokenizer

from open_autoglm.cli import build_parser
from open_autoglm.evaluate.predict import prompt_and_reference
from open_autoglm.serve.batching import DynamicBatcher
from open_autoglm.serve.generation import StopScanner
from open_autoglm.serve.served_model import ServedModel, served_name


def test_stop_scanner_holds_back_a_possible_stop_and_cuts_at_it() -> None:
    scanner = StopScanner(("END",))
    assert scanner.feed("hello E") == "hello"  # " E" might still begin "END"
    assert scanner.feed("N") == " "
    assert scanner.feed("D and more") == "" and scanner.stopped
    assert scanner.feed("later") == "" and scanner.flush() == ""
    plain = StopScanner(())
    assert plain.feed("abc") == "abc" and plain.flush() == ""


def test_batcher_merges_concurrent_submissions_and_keeps_order() -> None:
    sizes: list[int] = []

    def double(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [2 * i for i in items]

    async def main() -> list[list[int]]:
        batcher: DynamicBatcher[int, int] = DynamicBatcher(double, max_batch=8, max_wait_s=0.05)
        try:
            return await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(10)))
        finally:
            await batcher.close()

    results = asyncio.run(main())
    assert results == [[2 * i, 2 * (i + 100)] for i in range(10)]
    assert sum(sizes) == 20 and max(sizes) == 8 and len(sizes) < 20


def test_chat_prompt_is_rendered_as_in_training_without_a_template(tiny_decoder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_decoder))
    served = ServedModel("m", tokenizer, {"objective": "causal_lm"}, None)
    messages = [{"role": "user", "content": "what do cats say"}]
    prompt = served.chat_prompt(messages)
    expected, _ = prompt_and_reference({"prompt": "what do cats say", "response": "x"}, tokenizer)
    assert prompt == expected and prompt.endswith("### Response:\n")


def test_served_name_is_the_run_name_and_the_cli_binds_loopback(tmp_path: Path) -> None:
    assert served_name(tmp_path / "my-run" / "model") == "my-run"
    assert served_name(tmp_path / "exported") == "exported"
    args = build_parser().parse_args(["serve", "--model", str(tmp_path)])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
