"""Discord: slash commands and alerts through discord.py."""
