"""Knowledge distillation: its parts, which every training run with `distill.teacher` uses (loss, teacher,
student from the teacher's layers), and the `autoglm distill` job that trains a student and compares the two."""
