"""Telegram: commands, buttons and alerts through python-telegram-bot."""
