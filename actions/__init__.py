"""The rasa-sdk action server: thin actions that call into `bot`."""
