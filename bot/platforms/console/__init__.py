"""Console: alerts printed to the terminal and as JSON (replay, demo)."""
