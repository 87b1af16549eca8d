"""Bench self-test (placeholder until the daemon's gpio layer lands)."""


def add_arguments(p):
    p.add_argument("board")


def run_from_args(args):
    raise NotImplementedError
