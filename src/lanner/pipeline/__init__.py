"""L3: streaming video analytics (sources, mux, inference, tracking, analytics, sinks)."""
