"""Data sources: prices and news from Yahoo, replay files and news files."""
