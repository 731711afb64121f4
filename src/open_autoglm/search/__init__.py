"""Automatic search over fine-tuning methods and hyperparameters (`autoglm tune`)."""
