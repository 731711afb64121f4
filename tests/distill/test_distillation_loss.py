"""The distillation loss against a hand computation, the alpha schedule, and the trainer's mixing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from open_autoglm.config.sections import ModelConfig
from open_autoglm.distill.loss import alpha_at, mix_losses, soft_loss
from open_autoglm.distill.teacher import check_compatible
from open_autoglm.models import load_model, load_tokenizer
from open_autoglm.train.distillation import DistillationTrainer

STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
TEACHER = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]


def _hand_kl(student: list[float], teacher: list[float], temperature: float) -> float:
    """KL(p_teacher ‖ p_student) of softmax(logits / T), written out."""

    def softmax(logits: list[float]) -> list[float]:
        exps = [math.exp(v / temperature) for v in logits]
        return [e / sum(exps) for e in exps]

    p_s, p_t = softmax(student), softmax(teacher)
    return sum(t * (math.log(t) - math.log(s)) for s, t in zip(p_s, p_t, strict=True))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_classification_soft_loss_is_the_mean_kl_times_t_squared(temperature: float) -> None:
    loss = soft_loss(torch.tensor(STUDENT), torch.tensor(TEACHER), temperature)
    hand = sum(_hand_kl(s, t, temperature) for s, t in zip(STUDENT, TEACHER, strict=True)) / 2
    assert float(loss) == pytest.approx(hand * temperature**2, rel=1e-5)


def test_causal_soft_loss_counts_only_shifted_unmasked_positions() -> None:
    student = [[0.1, 0.2, 0.3], [1.0, 0.0, -1.0], [2.0, 2.0, 0.0], [0.0, 0.0, 5.0]]  # (L=4, V=3)
    teacher = [[0.3, 0.2, 0.1], [0.0, 0.0, 0.0], [-1.0, 2.0, 1.0], [9.0, 9.0, 9.0]]
    labels = torch.tensor([[-100, 1, -100, 2]])  # position t predicts label t+1: positions 0 and 2 count
    loss = soft_loss(torch.tensor([student]), torch.tensor([teacher]), 2.0, labels, shift=True)
    hand = (_hand_kl(student[0], teacher[0], 2.0) + _hand_kl(student[2], teacher[2], 2.0)) / 2
    assert float(loss) == pytest.approx(hand * 4, rel=1e-5)
    # With num_items (gradient accumulation) the sum is divided by it instead of the local count.
    summed = soft_loss(torch.tensor([student]), torch.tensor([teacher]), 2.0, labels, True, num_items=4)
    assert float(summed) == pytest.approx(hand * 4 * 2 / 4, rel=1e-5)


def test_equal_logits_give_no_soft_loss_and_mixing_weighs_both() -> None:
    logits = torch.tensor(STUDENT)
    assert float(soft_loss(logits, logits.clone(), 3.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(mix_losses(torch.tensor(2.0), torch.tensor(10.0), 0.25)) == pytest.approx(4.0)


def test_alpha_schedule_moves_linearly_to_alpha_end() -> None:
    assert [alpha_at(s, 5, 0.9, 0.1) for s in range(5)] == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1])
    assert alpha_at(9, 5, 0.9, 0.1) == pytest.approx(0.1)  # past the end it stays there
    assert alpha_at(3, 5, 0.6, None) == 0.6
    assert alpha_at(0, 1, 0.6, 0.0) == 0.6


def test_trainer_mixes_the_soft_loss_and_evaluates_on_the_hard_one(
    tiny_decoder: Path, tmp_path: Path
) -> None:
    from transformers import TrainingArguments

    student, _ = load_model(str(tiny_decoder), ModelConfig(), "causal_lm")
    teacher, _ = load_model(str(tiny_decoder), ModelConfig(), "causal_lm")  # the same weights: soft loss 0
    trainer = DistillationTrainer(
        model=student,
        args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
        teacher=teacher,
        alpha=0.5,
        alpha_end=None,
        temperature=2.0,
        token_level=True,
        shift=True,
    )
    ids = torch.tensor([[1, 5, 6, 7, 8, 2]])
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([[-100, -100, 6, 7, 8, 2]]),
    }
    with torch.no_grad():
        hard = float(student(**inputs).loss)
    student.train()
    assert float(trainer.compute_loss(student, dict(inputs))) == pytest.approx(0.5 * hard, rel=1e-4)
    student.eval()
    assert float(trainer.compute_loss(student, dict(inputs))) == pytest.approx(hard, rel=1e-4)


def test_a_teacher_with_other_labels_or_another_vocabulary_is_refused(
    tiny_encoder: Path, tiny_decoder: Path
) -> None:
    tokenizer = load_tokenizer(str(tiny_encoder), ModelConfig())
    teacher, _ = load_model(str(tiny_encoder), ModelConfig(), "seq_cls", ["neg", "pos"])
    student, _ = load_model(str(tiny_encoder), ModelConfig(), "seq_cls", ["pos", "neg"])
    with pytest.raises(ValueError, match="teacher T predicts labels .* student S trains on"):
        check_compatible(teacher, tokenizer, student, tokenizer, ["pos", "neg"], ("T", "S"))
    check_compatible(teacher, tokenizer, teacher, tokenizer, ["neg", "pos"], ("T", "S"))  # the same: fine

    decoder_tokenizer = load_tokenizer(str(tiny_decoder), ModelConfig())
    decoder, _ = load_model(str(tiny_decoder), ModelConfig(), "causal_lm")
    with pytest.raises(ValueError, match="teacher T and student S have different vocabularies"):
        check_compatible(decoder, decoder_tokenizer, student, tokenizer, None, ("T", "S"))
