"""Chat platform adapters: each converts its payloads to core requests and renders replies."""
