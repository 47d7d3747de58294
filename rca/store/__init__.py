"""The window store: recent samples per series in bounded memory, sliced into windows."""
