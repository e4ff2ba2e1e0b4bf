"""Multilingual customer-service assistant: the code every process shares."""
