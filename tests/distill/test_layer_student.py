"""A student made of fewer of the teacher's layers: the right count, the teacher's own weights, and it runs."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

from open_autoglm.distill.student import drop_layers, kept_layers, layer_list


def test_kept_layers_are_evenly_spaced_with_first_and_last() -> None:
    assert kept_layers(6, 2) == [0, 5]
    assert kept_layers(6, 3) == [0, 2, 5]
    assert kept_layers(12, 6) == [0, 2, 4, 7, 9, 11]
    assert kept_layers(4, 1) == [0]
    with pytest.raises(ValueError, match="the teacher has 4 layers"):
        kept_layers(4, 4)


def _bert() -> torch.nn.Module:
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32
    )
    return BertForSequenceClassification(config).eval()


def _llama() -> torch.nn.Module:
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("build", [_bert, _llama], ids=["bert", "llama"])
def test_student_keeps_the_teachers_layers_and_runs(build) -> None:
    torch.manual_seed(0)
    teacher = build()
    student = drop_layers(teacher, 3)
    _, teacher_layers = layer_list(teacher)
    _, student_layers = layer_list(student)
    assert student.config.num_hidden_layers == 3 and len(student_layers) == 3
    assert len(teacher_layers) == 4 and teacher.config.num_hidden_layers == 4  # the teacher is untouched
    for new, old in enumerate(kept_layers(4, 3)):
        for (name, got), want in zip(
            student_layers[new].state_dict().items(), teacher_layers[old].state_dict().values(), strict=True
        ):
            assert torch.equal(got, want), name
    teacher_rest = {k: v for k, v in teacher.state_dict().items() if ".layer" not in k}
    for key, value in teacher_rest.items():  # embeddings and head come along unchanged
        assert torch.equal(student.state_dict()[key], value), key
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.isfinite(student(input_ids=ids).logits).all()
    if isinstance(student, LlamaForCausalLM):  # the KV cache is indexed by the renumbered layers
        out = student.generate(ids, max_new_tokens=3, do_sample=False)
        assert out.shape == (1, 7)
