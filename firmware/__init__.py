"""The answering-service switchboard daemon: board state, GPIO, control socket, view."""

__version__ = "0.1.0"
