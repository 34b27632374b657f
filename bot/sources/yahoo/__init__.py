"""Yahoo Finance: batched quotes, streaming, pre/post prices and news."""
