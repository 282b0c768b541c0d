"""Evaluation: metrics, bag replay evaluation, reports."""
