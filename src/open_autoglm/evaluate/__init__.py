"""Evaluation (`autoglm eval`): metrics, speed, bootstrap intervals and the regression gate."""
