"""The tokenizer inside a GGUF file, and the Ollama Modelfile that serves it with the same chat template.

llama.cpp reads a vocabulary from `tokenizer.ggml.*` keys: model `gpt2` for a byte-level BPE (its merges, and the
pre-tokenizer's name, which picks llama.cpp's split regex) and model `llama` for a SentencePiece-style one (byte
fallback, "▁" for spaces; tokens carry scores). The gguf package's `SpecialVocab` writes the merges, the special
token ids and the chat template from the model folder. Written here by hand, as llama.cpp's convert_hf_to_gguf.py
does (that script is not in the pip package): the token list with its types and scores, the pre-tokenizer's name,
whether BOS/EOS are added, and the chat template translated to Ollama's Go template.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import gguf
from transformers import PreTrainedTokenizerBase

from open_autoglm.tasks.sft import DEFAULT_CHAT_TEMPLATE

logger = logging.getLogger(__name__)
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
# Stand-ins a template copies unchanged, to find the text it puts around each message.
_SYSTEM, _USER, _REPLY, _USER2 = "SYSTEM7q1x", "USER7q1x", "REPLY7q1x", "NEXT7q1x"


class GgufRefused(ValueError):
    """The model (its architecture or its tokenizer) has no GGUF form that we write and check."""


def add_tokenizer(
    writer: gguf.GGUFWriter, tokenizer: PreTrainedTokenizerBase, folder: Path, n_vocab: int
) -> None:
    """Write the vocabulary of `tokenizer` (saved in `folder`) for an embedding matrix of `n_vocab` rows."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())  # type: ignore[attr-defined]
    model = spec.get("model") or {}
    sentencepiece = model.get("type") == "BPE" and bool(model.get("byte_fallback"))
    if model.get("type") != "BPE" or not (sentencepiece or _byte_level(spec)):
        raise GgufRefused(
            f"{folder / 'tokenizer.json'}: a {model.get('type')} tokenizer; GGUF holds a byte-level BPE (gpt2) or "
            "a SentencePiece-style BPE with byte fallback (llama)"
        )
    tokens, types = _tokens_and_types(tokenizer, n_vocab, sentencepiece, folder)
    writer.add_tokenizer_model("llama" if sentencepiece else "gpt2")
    if sentencepiece:
        writer.add_add_space_prefix(_adds_space_prefix(spec))
        writer.add_token_scores(_merge_scores(tokens, model.get("merges") or []))
    else:
        writer.add_tokenizer_pre(_pre_tokenizer_name(spec, folder))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=n_vocab)
    # What the tokenizer does, not what its config says (a post-processor may add BOS with no flag set).
    ids = tokenizer("a")["input_ids"]
    special.add_special_token = {
        "bos": tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id is not None and ids[-1] == tokenizer.eos_token_id,
    }
    special.add_to_gguf(writer, quiet=True)


def _byte_level(spec: dict[str, Any]) -> bool:
    return (spec.get("decoder") or {}).get("type") == "ByteLevel"


def _tokens_and_types(
    tokenizer: PreTrainedTokenizerBase, n_vocab: int, sentencepiece: bool, folder: Path
) -> tuple[list[str], list[gguf.TokenType]]:
    """Every id's token and llama.cpp token type; ids the tokenizer does not use (an embedding padded to a round
    size) become unused [PAD<id>] tokens, as convert_hf_to_gguf.py writes them."""
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    if max(by_id) >= n_vocab:
        raise GgufRefused(
            f"{folder}: the tokenizer has token id {max(by_id)}, the model's embedding only {n_vocab} rows"
        )
    added = tokenizer.added_tokens_decoder  # type: ignore[attr-defined]
    tokens, types = [], []
    for i in range(n_vocab):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            if sentencepiece and _BYTE_TOKEN.fullmatch(token):
                types.append(gguf.TokenType.BYTE)
            elif i == tokenizer.unk_token_id:
                types.append(gguf.TokenType.UNKNOWN)
            else:
                types.append(gguf.TokenType.NORMAL)
    return tokens, types


def _merge_scores(tokens: list[str], merges: list[Any]) -> list[float]:
    """llama.cpp's SentencePiece tokenizer joins the pair whose result scores highest: a token made by a merge
    scores minus that merge's rank (the earliest merge wins, as in BPE); the rest score 0."""
    rank: dict[str, int] = {}
    for r, merge in enumerate(merges):
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        rank.setdefault(left + right, r)
    return [-float(rank[t]) if t in rank else 0.0 for t in tokens]


def _adds_space_prefix(spec: dict[str, Any]) -> bool:
    """Whether text gets a leading "▁": a Metaspace pre-tokenizer that prepends, or a normalizer that does."""
    pre, norm = spec.get("pre_tokenizer") or {}, spec.get("normalizer") or {}
    steps = [*(pre.get("pretokenizers") or [pre]), *(norm.get("normalizers") or [norm])]
    return any(
        (s.get("type") == "Metaspace" and s.get("prepend_scheme", "always") != "never")
        or (s.get("type") == "Prepend" and s.get("prepend") == "▁")
        for s in steps
    )


def _pre_tokenizer_name(spec: dict[str, Any], folder: Path) -> str:
    """llama.cpp's name for how a byte-level BPE splits text before merging (tokenizer.ggml.pre)."""
    pre = spec.get("pre_tokenizer") or {}
    steps: list[dict[str, Any]] = pre.get("pretokenizers") or [pre]
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if (
        kinds == ["Digits", "ByteLevel"]
        and steps[0].get("individual_digits")
        and steps[1].get("use_regex", True)
    ):
        return "smollm"  # one token per digit, then GPT-2's split
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        # transformers keeps llama.cpp's names for the split regexes its GGUF reader knows: the one table of them
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

        regex = (steps[0].get("pattern") or {}).get("Regex")
        for name, split in GGUF_PRE_TOKENIZER_SPLITS.items():
            if split == regex:
                return name
    raise GgufRefused(
        f"{folder / 'tokenizer.json'}: pre-tokenizer {kinds} has no llama.cpp name that we know; GGUF supports "
        "GPT-2's split, digits then GPT-2's split (smollm) and the Llama 3 / Qwen2 split regexes"
    )


def modelfile(tokenizer: PreTrainedTokenizerBase, gguf_name: str) -> str:
    """An Ollama Modelfile for `gguf_name` that formats chats as the model's chat template does and stops at its
    end-of-turn token. A template whose layout cannot be read off (say one that folds the system prompt into the
    first user turn) is replaced by the generic Instruction/Response layout, with a warning."""
    template = getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
    try:
        layout = _chat_layout(tokenizer, template)
    except ValueError as err:
        logger.warning("the Modelfile uses the generic Instruction/Response template: %s", err)
        layout = _chat_layout(tokenizer, DEFAULT_CHAT_TEMPLATE)
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{_go_template(layout)}"""']
    if layout["default_system"]:
        lines.append(f'SYSTEM """{layout["default_system"]}"""')
    stop = _first_special(layout["end_of_turn"], tokenizer) or tokenizer.eos_token
    if stop:
        lines.append(f"PARAMETER stop {json.dumps(stop)}")
    return "\n".join(lines) + "\n"


def _chat_layout(tokenizer: PreTrainedTokenizerBase, template: str) -> dict[str, str]:
    """The text a template puts around each message, read off renders of stand-in chats."""

    def render(messages: list[tuple[str, str]], generation: bool = False) -> str:
        chat = [{"role": role, "content": content} for role, content in messages]
        try:
            return str(
                tokenizer.apply_chat_template(
                    chat, chat_template=template, tokenize=False, add_generation_prompt=generation
                )
            )
        except (
            Exception
        ) as err:  # a template may raise on any chat it does not take (jinja's raise_exception)
            raise ValueError(
                f"the chat template does not render a {[r for r, _ in messages]} chat: {err}"
            ) from err

    user = render([("user", _USER)])
    head, user_suffix = _split(user, _USER)
    assistant_prefix = _after(render([("user", _USER)], generation=True), user)
    exchange = render([("user", _USER), ("assistant", _REPLY)])
    end_of_turn = _after(exchange, user + assistant_prefix + _REPLY)
    user_prefix = _split(
        _after(render([("user", _USER), ("assistant", _REPLY), ("user", _USER2)]), exchange), _USER2
    )[0]
    system_head, rest = _split(render([("system", _SYSTEM), ("user", _USER)]), _SYSTEM)
    system_suffix = _before(_split(rest, _USER)[0], user_prefix)
    lead = _before(head, user_prefix)
    default_system = ""
    if system_head.startswith(lead):  # no system prompt unless given: the lead (a BOS, say) comes first
        system_prefix = system_head[len(lead) :]
    elif lead.startswith(system_head) and lead.endswith(system_suffix):  # a system prompt by default
        default_system = lead[len(system_head) : len(lead) - len(system_suffix)]
        lead, system_prefix = "", system_head
    else:
        raise ValueError("the chat template's system prompt is not a block of its own")
    return {
        "lead": lead,
        "system_prefix": system_prefix,
        "system_suffix": system_suffix,
        "default_system": default_system,
        "user_prefix": user_prefix,
        "user_suffix": user_suffix,
        "assistant_prefix": assistant_prefix,
        "end_of_turn": end_of_turn,
    }


def _go_template(layout: dict[str, str]) -> str:
    """Ollama's template language (Go's text/template) over the chat's messages, one line: a `{{-` would trim the
    newlines that belong to the layout."""
    for text in layout.values():
        if "{{" in text or '"""' in text:
            raise ValueError(f"the chat template's text {text!r} cannot go inside an Ollama template")
    return (
        f"{layout['lead']}{{{{ if .System }}}}{layout['system_prefix']}{{{{ .System }}}}{layout['system_suffix']}"
        "{{ end }}{{ range .Messages }}"
        f'{{{{ if eq .Role "user" }}}}{layout["user_prefix"]}{{{{ .Content }}}}{layout["user_suffix"]}'
        f'{{{{ else if eq .Role "assistant" }}}}{layout["assistant_prefix"]}{{{{ .Content }}}}'
        f"{layout['end_of_turn']}{{{{ end }}}}{{{{ end }}}}{layout['assistant_prefix']}"
    )


def _first_special(text: str, tokenizer: PreTrainedTokenizerBase) -> str | None:
    specials = [t for t in [*tokenizer.all_special_tokens, *tokenizer.get_added_vocab()] if t and t in text]
    return min(specials, key=text.index) if specials else None


def _split(text: str, marker: str) -> tuple[str, str]:
    if text.count(marker) != 1:
        raise ValueError(f"the chat template does not copy a message once: {text!r}")
    before, after = text.split(marker)
    return before, after


def _after(text: str, start: str) -> str:
    if not text.startswith(start):
        raise ValueError(f"the chat template renders a longer chat as a different text: {text!r}")
    return text[len(start) :]


def _before(text: str, end: str) -> str:
    if not text.endswith(end):
        raise ValueError(f"the chat template puts different text before a user message: {text!r}")
    return text[: len(text) - len(end)]
