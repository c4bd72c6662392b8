"""Logs, metrics, traces and correlation ids: the pipeline's four ways of telling an operator what happened."""
