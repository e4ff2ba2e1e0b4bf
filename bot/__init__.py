"""Multilingual customer-service assistant: the code every process shares."""

from bot.redaction import install_log_redaction

# Every process of ours (Rasa server, action server, agent service, commands) imports `bot`:
# from then on no log line carries customers' emails, phones, card numbers or our tokens.
install_log_redaction()
