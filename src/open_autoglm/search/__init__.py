"""Automatic search over fine-tuning methods and hyperparameters (`autoglm tune`)."""

import warnings

import optuna

# Heartbeats, TPE's `group` and the retry callback have been "experimental" since Optuna 2.x; the warning
# tells our users nothing they can act on.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# We run Optuna's ask/tell loop and send the heartbeats ourselves (search/trial.py).
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
