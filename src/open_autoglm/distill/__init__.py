"""Knowledge distillation as a job: train a smaller student from a teacher, then compare the two."""
