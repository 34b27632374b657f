"""Slack: slash commands and alerts through slack-bolt."""
